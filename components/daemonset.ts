/**
 * One host-network daemon of the router as a Kubernetes DaemonSet (DESIGN decision 7): in the router-system
 * namespace, from an image pinned by digest, with explicit capabilities instead of privileged mode, a
 * read-only root, resource requests and limits, liveness and readiness probes, its configuration from an
 * immutable ConfigMap of its own named by its content (a change is a new ConfigMap, so the pod rolls exactly when
 * its own configuration changes and the previous one stays for a rollback to the previous DaemonSet revision), and
 * its state on host paths that survive restarts and Talos upgrades. Every layer that runs daemons on the node
 * builds them here. Pure.
 */
import { createHash } from "node:crypto";
// Types only (erased at run time): the objects are checked field by field against the Kubernetes API types.
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { ISecret } from "kubernetes-models/v1/Secret";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import { ROUTER_NAMESPACE } from "./talos-node/machine-config";

export type Named<T> = T & { metadata: { name: string; namespace?: string } };

export const LABELS = { "app.kubernetes.io/part-of": "router", "app.kubernetes.io/managed-by": "pulumi" };
/** Label naming the daemon a configuration belongs to (a rollout gate finds and prunes them by it). */
export const DAEMON_LABEL = "router.edge/daemon";

/** A volume of a daemon and where it is mounted. */
export interface DaemonVolume {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  /** A host directory (created when missing), a Secret (its keys as files, mode 0400), or memory. */
  source: { hostPath: string } | { secret: string; items: string[] } | { memory: string };
}

export interface HostDaemon {
  name: string;
  /** Keys of the configuration the daemon reads (its own ConfigMap holds exactly these, mounted at configDir). */
  configKeys: string[];
  configDir: string;
  command: string[];
  capabilities: string[];
  /** User the daemon runs as (0 when it needs to be root for its capabilities). */
  user?: number;
  resources: { cpu: string; memory: string; cpuLimit: string; memoryLimit: string };
  liveness: string[];
  readiness?: string[];
  /** Volumes beyond the configuration and /tmp, in mount order. */
  volumes: DaemonVolume[];
  env?: Record<string, string>;
  /** A first step run as root with only these capabilities before the daemon (e.g. owning its state). */
  init?: { command: string[]; capabilities: string[] };
  /**
   * A second container beside the daemon, from the same image, sharing the daemon's volumes (e.g. its control
   * socket in the run directory) plus volumes of its own that the daemon does not mount.
   */
  sidecar?: {
    name: string;
    command: string[];
    capabilities: string[];
    resources: HostDaemon["resources"];
    /** Mounted by the sidecar only. */
    volumes: DaemonVolume[];
  };
}

function hash(parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex").slice(0, 16);
}

/** The name of a daemon's ConfigMap: the daemon's name and a digest of its configuration. */
export function configMapName(d: { name: string; configKeys: string[] }, configs: Map<string, string>): string {
  return `${d.name}-${hash(d.configKeys.map((k) => `${k}=${configs.get(k) ?? ""}`))}`;
}

/** A daemon's configuration as its immutable ConfigMap, labelled with the daemon's name. */
export function daemonConfigMap(
  d: { name: string; configKeys: string[] },
  configs: Map<string, string>,
): Named<IConfigMap> {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: configMapName(d, configs),
      namespace: ROUTER_NAMESPACE,
      labels: { ...LABELS, [DAEMON_LABEL]: d.name },
    },
    immutable: true,
    data: Object.fromEntries(d.configKeys.map((k) => [k, configs.get(k) ?? ""])),
  };
}

/** A Secret of the daemons around its data (the values are the component's Pulumi secret outputs). */
export function daemonSecret(name: string, data: unknown): Named<ISecret> {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace: ROUTER_NAMESPACE, labels: LABELS },
    type: "Opaque",
    stringData: data as Record<string, string>,
  };
}

function volume(v: DaemonVolume): IVolume {
  const s = v.source;
  if ("hostPath" in s) return { name: v.name, hostPath: { path: s.hostPath, type: "DirectoryOrCreate" } };
  if ("secret" in s)
    return {
      name: v.name,
      secret: { secretName: s.secret, defaultMode: 0o400, items: s.items.map((k) => ({ key: k, path: k })) },
    };
  return { name: v.name, emptyDir: { medium: "Memory", sizeLimit: s.memory } };
}

interface Probes {
  livenessProbe: IContainer["livenessProbe"];
  readinessProbe: IContainer["readinessProbe"];
}

function container(
  d: HostDaemon,
  run: {
    name: string;
    command: string[];
    capabilities: string[];
    user: number;
    probes?: Probes;
    resources?: HostDaemon["resources"];
  },
  image: unknown,
  mounts: IVolumeMount[],
): IContainer {
  return {
    name: run.name,
    // The digest-pinned reference is an output the component passes through; the API type says string.
    image: image as string,
    imagePullPolicy: "IfNotPresent",
    command: run.command,
    ...(d.env ? { env: Object.entries(d.env).map(([k, value]) => ({ name: k, value })) } : {}),
    securityContext: {
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsUser: run.user,
      ...(run.user === 0 ? { runAsNonRoot: false } : { runAsGroup: run.user, runAsNonRoot: true }),
      capabilities: { drop: ["ALL"], add: run.capabilities },
      seccompProfile: { type: "RuntimeDefault" },
    },
    resources: {
      requests: { cpu: (run.resources ?? d.resources).cpu, memory: (run.resources ?? d.resources).memory },
      limits: { cpu: (run.resources ?? d.resources).cpuLimit, memory: (run.resources ?? d.resources).memoryLimit },
    },
    ...(run.probes ?? {}),
    volumeMounts: mounts,
  };
}

/** The daemon's DaemonSet; `configs` holds its configuration (its ConfigMap is named from it). */
export function hostDaemonSet(d: HostDaemon, image: unknown, configs: Map<string, string>): Named<IDaemonSet> {
  const all: DaemonVolume[] = [...d.volumes, { name: "tmp", mountPath: "/tmp", source: { memory: "16Mi" } }];
  const volumes: IVolume[] = [
    {
      name: "config",
      configMap: { name: configMapName(d, configs), items: d.configKeys.map((k) => ({ key: k, path: k })) },
    },
    ...all.map(volume),
    ...(d.sidecar?.volumes ?? []).map(volume),
  ];
  const mount = (v: DaemonVolume): IVolumeMount => ({
    name: v.name,
    mountPath: v.mountPath,
    ...(v.readOnly ? { readOnly: true } : {}),
  });
  const mounts: IVolumeMount[] = [{ name: "config", mountPath: d.configDir, readOnly: true }, ...all.map(mount)];
  const labels = { ...LABELS, "app.kubernetes.io/name": d.name };
  const probe = (cmd: string[], period: number) => ({
    exec: { command: cmd },
    initialDelaySeconds: 5,
    periodSeconds: period,
    timeoutSeconds: 3,
    failureThreshold: 3,
  });
  const main = container(
    d,
    {
      name: d.name,
      command: d.command,
      capabilities: d.capabilities,
      user: d.user ?? 0,
      probes: { livenessProbe: probe(d.liveness, 20), readinessProbe: probe(d.readiness ?? d.liveness, 10) },
    },
    image,
    mounts,
  );
  // The init step prepares the volumes: it mounts them writable, whatever the daemon itself may only read.
  const initMounts = mounts.map(({ readOnly: _ro, ...m }) => (m.name === "config" ? { ...m, readOnly: true } : m));
  const init = d.init && container(d, { name: `${d.name}-init`, ...d.init, user: 0 }, image, initMounts);
  const sidecar =
    d.sidecar &&
    container({ ...d, env: undefined }, { ...d.sidecar, user: 0 }, image, [
      // its own volumes before /tmp, in the daemon's order: a host path is never mounted under a /tmp of its own
      ...mounts.filter((m) => m.mountPath !== "/tmp"),
      ...d.sidecar.volumes.map(mount),
      ...mounts.filter((m) => m.mountPath === "/tmp"),
    ]);
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: d.name, namespace: ROUTER_NAMESPACE, labels },
    spec: {
      selector: { matchLabels: { "app.kubernetes.io/name": d.name } },
      // One router: replace in place (a surge would fight over the same ports).
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      template: {
        // A config change rolls the pod (its ConfigMap's name changes); nothing else does.
        metadata: { labels },
        spec: {
          hostNetwork: true,
          dnsPolicy: "ClusterFirstWithHostNet",
          priorityClassName: "system-node-critical",
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 10,
          tolerations: [{ operator: "Exists" }],
          ...(init ? { initContainers: [init] } : {}),
          containers: sidecar ? [main, sidecar] : [main],
          volumes,
        },
      },
    },
  };
}
