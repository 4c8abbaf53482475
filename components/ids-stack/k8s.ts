/**
 * The IDS stack's Kubernetes objects: one immutable ConfigMap named by its content, and one host-network
 * DaemonSet in the router's namespace — Suricata in IDS mode (AF_PACKET) on the watched links, Suricata inline
 * (NFQUEUE) when the site has inline pairs, and the rule updater. Only the capabilities each needs: capture and
 * queues need NET_ADMIN and NET_RAW, thread pinning SYS_NICE, the packet rings IPC_LOCK; the updater, which
 * fetches from the internet, runs as nobody with none (DESIGN decision 16). Rules and Suricata's data live on host
 * paths that survive pod restarts and Talos upgrades. Pure: plain objects.
 */
import { createHash } from "node:crypto";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IVolume } from "kubernetes-models/v1/Volume";
import { ROUTER_NAMESPACE } from "../talos-node/machine-config";
import type { IdsPlan } from "./plan";
import { ROUTER_IDS_PATHS as P } from "./suricata";

type Named<T> = T & { metadata: { name: string; namespace?: string } };
export type IdsObject = Named<IDaemonSet> | Named<IConfigMap>;

const LABELS = { "app.kubernetes.io/part-of": "router", "app.kubernetes.io/managed-by": "pulumi" };
export const IDS_DAEMONSET = "router-ids";
const NOBODY = 65_534;

function suricata(name: string, image: string, mode: string[], caps: string[]): IContainer {
  return {
    name,
    image,
    command: ["suricata", "-c", `${P.config}/suricata.yaml`, ...mode],
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: caps },
    },
    resources: { requests: { cpu: "250m", memory: "512Mi" }, limits: { memory: "2Gi" } },
    volumeMounts: [
      { name: "config", mountPath: P.config, readOnly: true },
      { name: "rules", mountPath: P.rules, readOnly: true },
      { name: "logs", mountPath: P.logs },
      { name: "run", mountPath: P.run },
    ],
  };
}

function updater(image: string, ids: IdsPlan): IContainer {
  // A failed test (suricata -T) leaves the last good rules in place; the loop tries again next interval.
  const loop = [
    "while :; do",
    `suricata-update -c ${P.config}/update.yaml -o ${P.rules} --no-reload && suricatasc -c reload-rules ${P.run}/ids.socket;`,
    `sleep ${ids.updateSeconds};`,
    "done",
  ].join(" ");
  return {
    name: "rules-update",
    image,
    command: ["/bin/sh", "-c", loop],
    securityContext: {
      runAsUser: NOBODY,
      runAsGroup: NOBODY,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    },
    resources: { requests: { cpu: "50m", memory: "256Mi" }, limits: { memory: "1Gi" } },
    volumeMounts: [
      { name: "config", mountPath: P.config, readOnly: true },
      { name: "rules", mountPath: P.rules },
      { name: "data", mountPath: P.data },
      { name: "run", mountPath: P.run },
      { name: "tmp", mountPath: "/tmp" },
    ],
  };
}

/** The ConfigMap and the DaemonSet; files are the stack's Suricata files by name. */
export function renderIdsObjects(ids: IdsPlan, files: Map<string, string>, image: string): IdsObject[] {
  const data = Object.fromEntries([...files].sort(([a], [b]) => a.localeCompare(b)));
  const cmName = `${IDS_DAEMONSET}-${createHash("sha256").update(JSON.stringify(data)).digest("hex").slice(0, 16)}`;
  const labels = { ...LABELS, "app.kubernetes.io/name": IDS_DAEMONSET };
  const [first, last] = ids.queues;
  const queues = Array.from({ length: last - first + 1 }, (_, i) => ["-q", String(first + i)]).flat();
  const containers = [
    suricata(
      "suricata-ids",
      image,
      ["--af-packet", "-l", `${P.logs}/ids`, `--unix-socket=${P.run}/ids.socket`],
      ["NET_ADMIN", "NET_RAW", "SYS_NICE", "IPC_LOCK"],
    ),
    ...(ids.pairs.length
      ? [
          suricata(
            "suricata-ips",
            image,
            [...queues, "-l", `${P.logs}/ips`, `--unix-socket=${P.run}/ips.socket`],
            ["NET_ADMIN", "SYS_NICE", "IPC_LOCK"],
          ),
        ]
      : []),
    updater(image, ids),
  ];
  const host = (name: string, path: string): IVolume => ({ name, hostPath: { path, type: "DirectoryOrCreate" } });
  return [
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: cmName,
        namespace: ROUTER_NAMESPACE,
        labels: { ...LABELS, "router.edge/daemon": IDS_DAEMONSET },
      },
      immutable: true,
      data,
    },
    {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: IDS_DAEMONSET, namespace: ROUTER_NAMESPACE, labels },
      spec: {
        selector: { matchLabels: { "app.kubernetes.io/name": IDS_DAEMONSET } },
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels },
          spec: {
            hostNetwork: true,
            dnsPolicy: "ClusterFirstWithHostNet",
            priorityClassName: "system-node-critical",
            tolerations: [{ operator: "Exists" }],
            containers,
            volumes: [
              { name: "config", configMap: { name: cmName } },
              host("rules", P.rules),
              host("data", P.data),
              host("logs", P.logs),
              { name: "run", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
              { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
            ],
          },
        },
      },
    },
  ];
}
