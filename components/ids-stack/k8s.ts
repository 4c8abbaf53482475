/**
 * The IDS stack's Kubernetes objects: one immutable ConfigMap named by its content, and one host-network
 * DaemonSet in the router's namespace — Suricata in IDS mode (AF_PACKET) on the watched links, Suricata inline
 * (NFQUEUE) when the site has inline pairs, and the rule updater. Only the capabilities each needs: capture and
 * queues need NET_ADMIN and NET_RAW, thread pinning SYS_NICE, the packet rings IPC_LOCK; the updater, which
 * fetches from the internet, runs as nobody with none (DESIGN decision 16); an init container with CHOWN alone
 * hands it the rules and data directories. Rules and Suricata's data live on host
 * paths that survive pod restarts and Talos upgrades. Pure: plain objects.
 */
import { createHash } from "node:crypto";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IVolume } from "kubernetes-models/v1/Volume";
import { ROUTER_NAMESPACE } from "../talos-node/machine-config";
import type { IdsPlan } from "./plan";
import { TEXTFILE_DIR } from "../observability-stack/k8s";
import {
  ROUTER_IDS_PATHS as P,
  METRICS_OUTPUT,
  alertSocket,
  metricsSocket,
  testLogDir,
  type IdsPaths,
} from "./suricata";
import { zeekContainers } from "./zeek";
import { BLOCK_AGENT_UID, BLOCK_SOCKET, BLOCK_SOCKET_DIR } from "./block";

type Named<T> = T & { metadata: { name: string; namespace?: string } };
export type IdsObject = Named<IDaemonSet> | Named<IConfigMap>;

const LABELS = { "app.kubernetes.io/part-of": "router", "app.kubernetes.io/managed-by": "pulumi" };
export const IDS_DAEMONSET = "router-ids";
const NOBODY = 65_534;

/**
 * One Suricata process: `run` is its name among the processes (its log directory, command socket and metrics
 * socket), `mode` its capture arguments; `ship`: its events go to the log collector and the metrics agent.
 */
function suricata(name: string, image: string, run: string, mode: string[], caps: string[], ship: boolean): IContainer {
  const metrics = ship ? ["--set", `outputs.${METRICS_OUTPUT}.eve-log.filename=${metricsSocket(P, run)}`] : [];
  return {
    name,
    image,
    command: [
      "suricata",
      "-c",
      `${P.config}/suricata.yaml`,
      ...mode,
      "-l",
      `${P.logs}/${run}`,
      ...commandSocket(run),
      ...metrics,
    ],
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: caps },
    },
    resources: { requests: { cpu: "250m", memory: "512Mi" }, limits: { memory: "2Gi" } },
    volumeMounts: [
      { name: "config", mountPath: P.config, readOnly: true },
      { name: "rules", mountPath: P.rules, readOnly: true },
      // Suricata refuses a missing -l directory; the kubelet makes a subPath's directory when it is missing
      { name: "logs", mountPath: `${P.logs}/${run}`, subPath: run },
      { name: "run", mountPath: P.run },
      { name: "alerts", mountPath: P.alerts },
      ...(ship
        ? [
            // read-only: connecting to the collector's socket needs no write access to its file system
            { name: "events", mountPath: P.events, readOnly: true },
            { name: "metrics", mountPath: P.metrics },
          ]
        : []),
    ],
  };
}

/**
 * The metrics agent (images/ids/router-ids-metrics): counts the alerts and reads the stats each Suricata process
 * writes to its socket, for the node exporter's textfile collector; with inline pairs, also the kernel's table of
 * the inline queues (whether Suricata listens on each — without it the bypass flag passes their packets
 * uninspected — and what the kernel dropped there), which the host network's /proc shows to anyone. Root without
 * capabilities: the textfile directory is root's (the node exporter's other writers run as root too); it mounts
 * nothing else.
 */
function metricsAgent(image: string, ids: IdsPlan, runs: string[]): IContainer {
  const [first, last] = ids.queues;
  return {
    name: "metrics",
    image,
    command: [
      "router-ids-metrics",
      ...runs.flatMap((r) => ["--socket", `${r}=${metricsSocket(P, r)}`]),
      ...["--out", `${TEXTFILE_DIR}/ids.prom`, "--interval", "10"],
      ...(ids.pairs.length ? ["--nfqueue", `${first}-${last}`] : []),
    ],
    securityContext: ROOT_NO_CAPS,
    resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "64Mi" } },
    volumeMounts: [
      { name: "metrics", mountPath: P.metrics },
      { name: "textfile", mountPath: TEXTFILE_DIR },
    ],
  };
}

/**
 * Where a Suricata process takes commands (suricatasc). Set as a configuration value: `--unix-socket` is a run
 * mode of its own, which Suricata refuses beside `--af-packet` or `-q` ("more than one run mode").
 */
function commandSocket(name: string): string[] {
  return ["--set", `unix-command.filename=${P.run}/${name}.socket`];
}

/**
 * The block agent: reads the alerts Suricata writes to its socket and names the sources of severe ones to the
 * loader (block.ts). It parses what Suricata made of hostile traffic, so it runs as its own uid — the one the
 * loader takes requests from — with no capabilities, and mounts nothing but the two sockets' directories.
 */
function blockAgent(image: string, severity: number): IContainer {
  return {
    name: "block-agent",
    image,
    command: [
      "router-ids-block",
      ...["--alerts", alertSocket(P), "--loader", BLOCK_SOCKET, "--severity", String(severity)],
    ],
    securityContext: {
      runAsUser: BLOCK_AGENT_UID,
      runAsGroup: BLOCK_AGENT_UID,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    },
    resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } },
    volumeMounts: [
      { name: "alerts", mountPath: P.alerts },
      // read-only: connecting to a Unix socket needs no write access to its file system (Linux inode_permission
      // refuses writes on a read-only mount to regular files, directories and links only)
      { name: "block", mountPath: BLOCK_SOCKET_DIR, readOnly: true },
    ],
  };
}

/**
 * One rule update, as a shell command: suricata-update merges the sources into a staging directory and tests the
 * result there (`suricata -T`, update.yaml's test-command); only a tested file replaces the live rules, by
 * rename. A failed update leaves the live rules as they were and drops the staged file, so the next run tests
 * again rather than finding "no changes". A source that cannot be fetched fails the update (`--fail`): without it
 * suricata-update leaves that source out and writes — and tests fine — a file with the other sources' rules only,
 * which would replace the last good rules with far fewer on any network error. Exit status 0 when the live rules
 * are the tested result.
 */
export function ruleUpdateCommand(paths: IdsPaths): string {
  const stage = `${paths.data}/staging`;
  const next = `${paths.rules}/.suricata.rules.new`;
  return [
    `mkdir -p ${stage} ${testLogDir(paths)} &&`,
    `if suricata-update -c ${paths.config}/update.yaml -o ${stage} --no-reload --fail;`,
    `then cp -f ${stage}/suricata.rules ${next} && mv -f ${next} ${paths.rules}/suricata.rules;`,
    `else rm -f ${stage}/suricata.rules; false; fi`,
  ].join(" ");
}

/**
 * The rules-dirs init container's script; arguments: the rules, data and configuration directories. A first start
 * (no live rules yet) seeds the live rules with the site's local rules (checked by `suricata -T` before they
 * ship, check.ts), so Suricata inspects with them from its first packet rather than with no rules until the first
 * fetch succeeds (the uplink may not be up yet); the first good update replaces them with the merged set, which
 * holds them too. Then the host directories (created by the kubelet as root) become the updater's (nobody's).
 * Without DAC_OVERRIDE root writes only into a directory it owns: the rules directory is taken back first (CHOWN
 * is all the container has), so a later start that finds no live rules (deleted by hand) seeds them too.
 */
export const RULE_DIRS_SCRIPT = [
  'chown 0:0 "$1"',
  'if [ ! -e "$1/suricata.rules" ]; then',
  `  cp "$3/local.rules" "$1/suricata.rules" && chown ${NOBODY}:${NOBODY} "$1/suricata.rules" &&`,
  '    echo "no live rules: starting with the site\'s local rules until the first update" ||',
  '    echo "no live rules and the local rules could not be put in place: Suricata starts without rules until the first update" >&2',
  "fi",
  // not recursive: what the updater made inside is its own already, and root without DAC_READ_SEARCH cannot
  // walk its private directories (suricata-update's cache): a recursive chown failed every restart
  `chown ${NOBODY}:${NOBODY} "$1" "$2"`,
].join("\n");

/** Seeds the live rules on a first start and hands the host directories to the updater (RULE_DIRS_SCRIPT). */
function ruleDirs(image: string): IContainer {
  return {
    name: "rules-dirs",
    image,
    command: ["/bin/sh", "-c", RULE_DIRS_SCRIPT, "rules-dirs", P.rules, P.data, P.config],
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: ["CHOWN"] },
    },
    volumeMounts: [
      { name: "rules", mountPath: P.rules },
      { name: "data", mountPath: P.data },
      { name: "config", mountPath: P.config, readOnly: true },
    ],
  };
}

/** Root (the files it handles are root's or Suricata's) with no capability and a read-only root. */
const ROOT_NO_CAPS = {
  runAsUser: 0,
  runAsNonRoot: false,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
};

/** The first wait after a failed rule update (seconds); it doubles after each failure, up to the interval. */
export const RULE_RETRY_SECONDS = 60;

/**
 * The updater's loop, as a shell command: an update (ruleUpdateCommand) and, when it succeeds, a reload of every
 * Suricata process, then the site's interval. A failed update keeps the last good rules and is retried sooner —
 * after `retry` seconds, doubling up to the interval — so a router whose first fetch fails (its uplink not up yet
 * at first boot) does not run a whole interval, a day by default, on its local rules alone.
 */
export function ruleUpdateLoop(
  paths: IdsPaths,
  ids: Pick<IdsPlan, "pairs" | "updateSeconds">,
  retry = RULE_RETRY_SECONDS,
): string {
  const reload = ["ids", ...(ids.pairs.length ? ["ips"] : [])]
    .map((m) => `suricatasc -c reload-rules ${paths.run}/${m}.socket`)
    .join(" && ");
  const first = Math.min(retry, ids.updateSeconds);
  return [
    `retry=${first}; while :; do`,
    `if ${ruleUpdateCommand(paths)} && ${reload};`,
    `then retry=${first}; sleep ${ids.updateSeconds};`,
    `else echo "rule update failed: the last good rules stay; next try in $retry s" >&2; sleep $retry;`,
    `retry=$((retry * 2)); [ $retry -gt ${ids.updateSeconds} ] && retry=${ids.updateSeconds}; fi;`,
    "done",
  ].join(" ");
}

/** How large a Suricata process's eve.json grows before it is rotated (bytes). */
export const EVE_MAX_BYTES = 64 * 1024 * 1024;
/** How often the rotation checks the files' sizes (seconds). */
export const EVE_CHECK_SECONDS = 10;

/**
 * The EVE file rotation's loop, as a shell command. Suricata 7 rotates only by time and never deletes, so each
 * process's `eve.json` (in its log subdirectory, `runs`) is moved to `eve.json.1` once it is larger than
 * `maxBytes` (replacing the previous one), and the process reopens its files (`suricatasc -c
 * reopen-log-files`; until then it keeps writing to the moved file, so nothing is lost). A process whose reopen
 * failed (restarting at that moment) is asked again on the next round (eve.json missing beside eve.json.1). On
 * disk: at most two files per process, each up to `maxBytes` plus what it writes in `every` seconds.
 */
export function eveRotateLoop(
  paths: IdsPaths,
  runs: string[],
  maxBytes = EVE_MAX_BYTES,
  every: number = EVE_CHECK_SECONDS,
): string {
  const one = (run: string) => {
    const f = `${paths.logs}/${run}/eve.json`;
    return [
      `if [ "$(stat -c %s ${f} 2>/dev/null || echo 0)" -gt ${maxBytes} ]; then mv -f ${f} ${f}.1; fi;`,
      `if [ ! -e ${f} ] && [ -e ${f}.1 ]; then`,
      `suricatasc -c reopen-log-files ${paths.run}/${run}.socket >/dev/null ||`,
      `echo "${run}: Suricata did not reopen its EVE file; it writes to ${f}.1 until it does" >&2; fi;`,
    ].join(" ");
  };
  return ["while :; do", ...runs.map(one), `sleep ${every};`, "done"].join(" ");
}

/** The EVE file rotation (eveRotateLoop): root like Suricata, whose files it moves, with no capability. */
function eveRotate(image: string, runs: string[]): IContainer {
  return {
    name: "eve-rotate",
    image,
    command: ["/bin/sh", "-c", eveRotateLoop(P, runs)],
    securityContext: ROOT_NO_CAPS,
    resources: { requests: { cpu: "5m", memory: "16Mi" }, limits: { memory: "64Mi" } },
    volumeMounts: [
      { name: "logs", mountPath: P.logs },
      { name: "run", mountPath: P.run },
    ],
  };
}

function updater(image: string, ids: IdsPlan): IContainer {
  const loop = ruleUpdateLoop(P, ids);
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
  const runs = ["ids", ...(ids.pairs.length ? ["ips"] : [])];
  const containers = [
    suricata("suricata-ids", image, "ids", ["--af-packet"], ["NET_ADMIN", "NET_RAW", "SYS_NICE", "IPC_LOCK"], ids.ship),
    ...(ids.pairs.length
      ? [suricata("suricata-ips", image, "ips", queues, ["NET_ADMIN", "SYS_NICE", "IPC_LOCK"], ids.ship)]
      : []),
    ...(ids.ship ? [metricsAgent(image, ids, runs)] : []),
    updater(image, ids),
    eveRotate(image, runs),
    ...(ids.blockSeverity !== undefined ? [blockAgent(image, ids.blockSeverity)] : []),
    ...zeekContainers(ids, P),
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
            // Nothing of the IDS talks to the Kubernetes API: no token of the namespace's default account
            automountServiceAccountToken: false,
            tolerations: [{ operator: "Exists" }],
            initContainers: [ruleDirs(image)],
            containers,
            volumes: [
              { name: "config", configMap: { name: cmName } },
              host("rules", P.rules),
              host("data", P.data),
              host("logs", P.logs),
              { name: "run", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
              { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
              { name: "alerts", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
              ...(ids.blockSeverity !== undefined ? [host("block", BLOCK_SOCKET_DIR)] : []),
              ...(ids.ship
                ? [
                    host("events", P.events),
                    host("textfile", TEXTFILE_DIR),
                    { name: "metrics", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
                  ]
                : []),
            ],
          },
        },
      },
    },
  ];
}
