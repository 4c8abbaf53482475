/**
 * Kubernetes objects of the shared network services (DESIGN decision 7): each daemon runs on the host network in
 * the router-system namespace, from our services image pinned by digest, with explicit capabilities instead of
 * privileged mode, resource requests and limits, liveness and readiness probes, and its state on host paths that
 * survive pod restarts and Talos upgrades (/var is preserved across upgrades). Pure: plain objects.
 */
import { createHash } from "node:crypto";
// Types only (erased at run time): the objects are checked field by field against the Kubernetes API types, so a
// misspelt field fails the type check instead of being silently ignored by the API server.
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import { ROUTER_NAMESPACE } from "../talos-node/machine-config";
import {
  KEA_RUN_DIR,
  KEA_STATE_DIR,
  renderAvahi,
  renderChrony,
  renderFrr,
  renderKea4,
  renderKea6,
  renderRadvd,
  usesDhcpv6,
} from "./config";

type Named<T> = T & { metadata: { name: string; namespace?: string } };
export type K8sObject = Named<IDaemonSet> | Named<IConfigMap> | Named<INamespace>;

/** Config files by ConfigMap key (also the artifact names under services/). */
export function serviceConfigs(site: Site, plan: SitePlan, model: PolicyModel): Map<string, string> {
  const files = new Map<string, string>();
  files.set("kea-dhcp4.json", renderKea4(site, plan, model));
  files.set("kea-dhcp6.json", renderKea6(site, plan));
  const radvd = renderRadvd(site, plan);
  if (radvd) files.set("radvd.conf", radvd);
  files.set("chrony.conf", renderChrony(site, plan, model));
  for (const g of site.mdns.reflect) files.set(`avahi-daemon.${g.name}.conf`, renderAvahi(site, plan, g.name));
  const frr = renderFrr(site, plan);
  if (frr) {
    files.set("frr.conf", frr);
    files.set("frr-daemons", ["zebra=yes", "ospfd=yes", "staticd=yes", "vtysh_enable=yes", ""].join("\n"));
  }
  return files;
}

const LABELS = { "app.kubernetes.io/part-of": "router", "app.kubernetes.io/managed-by": "pulumi" };
/** Label naming the daemon a configuration belongs to (the rollout gate finds and prunes them by it). */
export const DAEMON_LABEL = "router.edge/daemon";
const CONFIG_DIR = "/etc/router";
/** Host directory for the services' state (leases, drift). */
export const HOST_STATE_DIR = "/var/lib/router";

interface Daemon {
  name: string;
  /** Config keys the daemon reads (its pods roll when they change). */
  configKeys: string[];
  command: string[];
  capabilities: string[];
  resources: { cpu: string; memory: string; cpuLimit: string; memoryLimit: string };
  liveness: string[];
  readiness?: string[];
  state?: { host: string; mount: string };
  run?: string;
  env?: Record<string, string>;
}

function sh(script: string): string[] {
  return ["/bin/sh", "-c", script];
}

function daemons(site: Site, plan: SitePlan, configs: Map<string, string>): Daemon[] {
  const keaProbe = (sock: string) =>
    sh(`printf '{"command": "status-get"}' | socat -t 2 - UNIX-CONNECT:${sock} | grep -q '"result": 0'`);
  const list: Daemon[] = [
    {
      name: "kea-dhcp4",
      configKeys: ["kea-dhcp4.json"],
      command: ["kea-dhcp4", "-c", `${CONFIG_DIR}/kea-dhcp4.json`],
      // The raw (AF_PACKET) socket that answers clients without an address, and the UDP socket on port 67 it
      // opens beside it; Kea changes no link, route or address.
      capabilities: ["NET_BIND_SERVICE", "NET_RAW"],
      resources: { cpu: "50m", memory: "64Mi", cpuLimit: "500m", memoryLimit: "256Mi" },
      liveness: keaProbe(`${KEA_RUN_DIR}/kea4-ctrl-socket`),
      state: { host: `${HOST_STATE_DIR}/kea`, mount: KEA_STATE_DIR },
      run: KEA_RUN_DIR,
      env: { KEA_PIDFILE_DIR: KEA_RUN_DIR, KEA_LOCKFILE_DIR: KEA_RUN_DIR },
    },
    {
      name: "chrony",
      configKeys: ["chrony.conf"],
      // -x: Talos owns the system clock; chronyd only serves it.
      command: ["chronyd", "-d", "-x", "-f", `${CONFIG_DIR}/chrony.conf`],
      capabilities: ["NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN"],
      resources: { cpu: "10m", memory: "16Mi", cpuLimit: "100m", memoryLimit: "64Mi" },
      liveness: sh('kill -0 "$(cat /run/chrony/chronyd.pid)"'),
      state: { host: `${HOST_STATE_DIR}/chrony`, mount: "/var/lib/chrony" },
      run: "/run/chrony",
    },
  ];
  if (configs.has("radvd.conf"))
    list.push({
      name: "radvd",
      configKeys: ["radvd.conf"],
      command: [
        "radvd",
        "--nodaemon",
        "--config",
        `${CONFIG_DIR}/radvd.conf`,
        "--logmethod",
        "stderr",
        "--pidfile",
        "/run/radvd/radvd.pid",
      ],
      // The raw ICMPv6 socket for advertisements and solicitations; radvd only reads the links' settings.
      capabilities: ["NET_RAW"],
      resources: { cpu: "10m", memory: "16Mi", cpuLimit: "100m", memoryLimit: "64Mi" },
      liveness: sh('kill -0 "$(cat /run/radvd/radvd.pid)"'),
      run: "/run/radvd",
    });
  if (usesDhcpv6(site, plan))
    list.push({
      name: "kea-dhcp6",
      configKeys: ["kea-dhcp6.json"],
      command: ["kea-dhcp6", "-c", `${CONFIG_DIR}/kea-dhcp6.json`],
      // DHCPv6 is plain UDP on port 547 (multicast membership needs no capability); no raw socket.
      capabilities: ["NET_BIND_SERVICE"],
      resources: { cpu: "50m", memory: "64Mi", cpuLimit: "500m", memoryLimit: "256Mi" },
      liveness: keaProbe(`${KEA_RUN_DIR}/kea6-ctrl-socket`),
      state: { host: `${HOST_STATE_DIR}/kea`, mount: KEA_STATE_DIR },
      run: KEA_RUN_DIR,
      env: { KEA_PIDFILE_DIR: KEA_RUN_DIR, KEA_LOCKFILE_DIR: KEA_RUN_DIR },
    });
  for (const g of site.mdns.reflect)
    list.push({
      name: `avahi-${g.name}`,
      configKeys: [`avahi-daemon.${g.name}.conf`],
      command: [
        "avahi-daemon",
        "--no-drop-root",
        "--no-chroot",
        "--no-rlimits",
        "-f",
        `${CONFIG_DIR}/avahi-daemon.${g.name}.conf`,
      ],
      // avahi-daemon gives its runtime directory (the run emptyDir, made by root) to the avahi user and refuses
      // to start when it cannot: "Failed to create runtime directory". Multicast sockets need nothing.
      capabilities: ["CHOWN"],
      resources: { cpu: "10m", memory: "16Mi", cpuLimit: "200m", memoryLimit: "64Mi" },
      liveness: ["avahi-daemon", "--check"],
      run: "/run/avahi-daemon",
    });
  if (configs.has("frr.conf"))
    list.push({
      name: "frr",
      configKeys: ["frr.conf", "frr-daemons"],
      command: ["/usr/local/bin/frr-start", `${CONFIG_DIR}/frr.conf`],
      // FRR's own privilege list, not our choice: zebra (zebra/main.c) and ospfd (ospfd/ospf_main.c) put
      // NET_ADMIN, NET_RAW, SYS_ADMIN (and ospfd NET_BIND_SERVICE) in their permitted set at start
      // (lib/privs.c zprivs_caps_init) and exit with "initial cap_set_proc failed" when one is missing. Measured
      // with Debian's FRR 8.4; test/network/frr-privileges.test.ts fails once a release no longer asks for it.
      capabilities: ["NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW", "SYS_ADMIN"],
      resources: { cpu: "50m", memory: "64Mi", cpuLimit: "1", memoryLimit: "256Mi" },
      liveness: ["vtysh", "-c", "show version"],
      readiness: ["vtysh", "-c", "show ip ospf"],
      run: "/var/run/frr",
    });
  return list;
}

function hash(parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex").slice(0, 16);
}

/**
 * A daemon's configuration as an immutable ConfigMap named by its content: a change is a new ConfigMap, so the
 * previous one stays for a rollback to the previous DaemonSet revision (which names it), and the pods roll exactly
 * when their own configuration changes.
 */
export function configMapName(d: { name: string; configKeys: string[] }, configs: Map<string, string>): string {
  return `${d.name}-${hash(d.configKeys.map((k) => `${k}=${configs.get(k) ?? ""}`))}`;
}

function daemonConfigMap(d: Daemon, configs: Map<string, string>): Named<IConfigMap> {
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

function daemonSet(d: Daemon, image: unknown, configs: Map<string, string>): Named<IDaemonSet> {
  const volumes: IVolume[] = [
    {
      name: "config",
      configMap: { name: configMapName(d, configs), items: d.configKeys.map((k) => ({ key: k, path: k })) },
    },
  ];
  const mounts: IVolumeMount[] = [{ name: "config", mountPath: CONFIG_DIR, readOnly: true }];
  if (d.state) {
    volumes.push({ name: "state", hostPath: { path: d.state.host, type: "DirectoryOrCreate" } });
    mounts.push({ name: "state", mountPath: d.state.mount });
  }
  if (d.run) {
    volumes.push({ name: "run", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } });
    mounts.push({ name: "run", mountPath: d.run });
  }
  volumes.push({ name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } });
  mounts.push({ name: "tmp", mountPath: "/tmp" });
  const labels = { ...LABELS, "app.kubernetes.io/name": d.name };
  const probe = (cmd: string[], period: number) => ({
    exec: { command: cmd },
    initialDelaySeconds: 5,
    periodSeconds: period,
    timeoutSeconds: 3,
    failureThreshold: 3,
  });
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
          containers: [
            {
              name: d.name,
              // The digest-pinned reference is an output the component passes through; the API type says string.
              image: image as string,
              imagePullPolicy: "IfNotPresent",
              command: d.command,
              ...(d.env ? { env: Object.entries(d.env).map(([name, value]) => ({ name, value })) } : {}),
              securityContext: {
                privileged: false,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsUser: 0,
                runAsNonRoot: false,
                capabilities: { drop: ["ALL"], add: d.capabilities },
                seccompProfile: { type: "RuntimeDefault" },
              },
              resources: {
                requests: { cpu: d.resources.cpu, memory: d.resources.memory },
                limits: { cpu: d.resources.cpuLimit, memory: d.resources.memoryLimit },
              },
              livenessProbe: probe(d.liveness, 20),
              readinessProbe: probe(d.readiness ?? d.liveness, 10),
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  };
}

/** The DaemonSets' names, in the order the rollout gate checks them. */
export function daemonNames(site: Site, plan: SitePlan, model: PolicyModel): string[] {
  return daemons(site, plan, serviceConfigs(site, plan, model)).map((d) => d.name);
}

/**
 * Every object of the network services, namespace first. `image` is placed as given (the component passes the
 * digest-pinned reference, which is only known once the image is pushed).
 */
export function renderServiceObjects(site: Site, plan: SitePlan, model: PolicyModel, image: unknown): K8sObject[] {
  const configs = serviceConfigs(site, plan, model);
  const namespace: Named<INamespace> = {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: ROUTER_NAMESPACE,
      labels: {
        ...LABELS,
        // Host-network daemons with capabilities: exempt from baseline pod security in this namespace only.
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/audit": "privileged",
        "pod-security.kubernetes.io/warn": "privileged",
      },
    },
  };
  const list = daemons(site, plan, configs);
  return [namespace, ...list.map((d) => daemonConfigMap(d, configs)), ...list.map((d) => daemonSet(d, image, configs))];
}
