/**
 * Suricata's configuration files, from the site and its IDS plan: suricata.yaml (rule variables, AF_PACKET on the
 * watched links, NFQUEUE for the inline pairs, EVE JSON with the community ID, CPU placement), the site's local
 * rules, the disable list and the threshold file, and suricata-update's configuration (sources, where it writes,
 * how it tests). Pure and deterministic; the paths are parameters so the offline tests run the same files.
 *
 * One Suricata process runs one capture method, so the IDS (AF_PACKET) and the IPS (NFQUEUE) are two processes
 * reading this one file: `--af-packet` and `-q N…`, each with its own log directory and command socket.
 */
import { stringify } from "yaml";
import type { Site } from "../site/schema";
import type { IdsPlan } from "./plan";

/** Where the files and sockets live (on the router: inside the IDS pod; in tests: a temporary directory). */
export interface IdsPaths {
  /** The rendered configuration (suricata.yaml, local.rules, threshold.config, update.yaml …). */
  config: string;
  /** The rules suricata-update writes (suricata.rules), kept across restarts. */
  rules: string;
  /** Suricata's own data (suricata-update's cache and state). */
  data: string;
  /** EVE logs (one subdirectory per process). */
  logs: string;
  /** Command sockets (suricatasc: rule reloads). */
  run: string;
  /** The alert stream to the block agent (shared by Suricata and the agent only). */
  alerts: string;
  /** Suricata's classification.config and reference.config (from the package). */
  share: string;
  /**
   * The log collector's directory (a host path both pods mount), where it binds the EVE socket (EVENT_SOCKET);
   * the router's when not given.
   */
  events?: string;
  /** The metrics agent's sockets, one per Suricata process (Suricata's and the agent's only); the router's when not given. */
  metrics?: string;
}

export const ROUTER_IDS_PATHS: Required<IdsPaths> = {
  config: "/etc/router-ids",
  // Host state under the router's state directory (policies/resource/host-paths.ts), where it survives pod
  // restarts and Talos upgrades.
  rules: "/var/lib/router/ids/rules",
  data: "/var/lib/router/ids/data",
  logs: "/var/lib/router/ids/logs",
  run: "/run/router-ids",
  alerts: "/run/router-ids-alerts",
  share: "/etc/suricata",
  events: "/var/lib/router/ids-events",
  metrics: "/run/router-ids-metrics",
};

/** The log collector's EVE socket, in IdsPaths.events. */
export const EVENT_SOCKET = "eve.sock";

/** The cluster id of the AF_PACKET fanout group of a link (one group per link). */
const CLUSTER_BASE = 90;

/** Address groups the usual rule sets (ET Open among them) expect, all in terms of HOME_NET. */
const SERVER_GROUPS = [
  "AIM_SERVERS",
  "DC_SERVERS",
  "DNP3_CLIENT",
  "DNP3_SERVER",
  "DNS_SERVERS",
  "ENIP_CLIENT",
  "ENIP_SERVER",
  "HTTP_SERVERS",
  "MODBUS_CLIENT",
  "MODBUS_SERVER",
  "SMTP_SERVERS",
  "SQL_SERVERS",
  "TELNET_SERVERS",
];

const PORT_GROUPS: Record<string, string> = {
  DNP3_PORTS: "20000",
  FILE_DATA_PORTS: "[$HTTP_PORTS,110,143]",
  FTP_PORTS: "21",
  GENEVE_PORTS: "6081",
  HTTP_PORTS: "80",
  MODBUS_PORTS: "502",
  ORACLE_PORTS: "1521",
  SHELLCODE_PORTS: "!80",
  SSH_PORTS: "22",
  TEREDO_PORTS: "3544",
  VXLAN_PORTS: "4789",
};

function vars(ids: IdsPlan): Record<string, unknown> {
  const groups: Record<string, string> = { HOME_NET: `[${ids.homeNet.join(",")}]`, EXTERNAL_NET: "!$HOME_NET" };
  for (const g of SERVER_GROUPS) groups[g] = "$HOME_NET";
  return { "address-groups": groups, "port-groups": PORT_GROUPS };
}

/** Where `suricata -T` of a rule update writes its (empty) logs. */
export function testLogDir(paths: IdsPaths): string {
  return `${paths.data}/test-log`;
}

/** The block agent's socket, where Suricata writes alerts one datagram each. */
export function alertSocket(paths: IdsPaths): string {
  return `${paths.alerts}/alerts.sock`;
}

/** EVE records the log store gets: what happened on the wire, not the counters (those are metrics). */
const STORE_TYPES = ["dns", "tls", "http", "ssh", "flow"];
/**
 * Records Suricata 7 lets one output alone carry ("only one 'anomaly' logger can be enabled", likewise `drop`):
 * the log store's when the site ships events, the local file's otherwise.
 */
const SINGLE_TYPES = ["anomaly", "drop"];

/** The index of the metrics output in `outputs` (a process names its own socket with `--set`). */
export const METRICS_OUTPUT = 3;

/** The metrics agent's socket of one Suricata process (`ids` or `ips`). */
export function metricsSocket(paths: IdsPaths, run: string): string {
  return `${paths.metrics ?? ROUTER_IDS_PATHS.metrics}/${run}.sock`;
}

/**
 * `ship`: with the site's observability stack, EVE also goes to the log collector's socket (one datagram per
 * record: nothing on disk to rotate, and a collector that is down costs the records Suricata sends meanwhile,
 * never Suricata's speed) and alerts and stats go to the metrics agent; without it, neither output exists.
 */
function outputs(paths: IdsPaths, blocking: boolean, ship: boolean): unknown[] {
  const dgram = (filename: string, types: unknown[]) => ({
    "eve-log": { enabled: true, filetype: "unix_dgram", filename, "community-id": true, types },
  });
  const shipped = ship
    ? [
        dgram(`${paths.events ?? ROUTER_IDS_PATHS.events}/${EVENT_SOCKET}`, [
          { alert: { "tagged-packets": false, metadata: true } },
          ...SINGLE_TYPES,
          ...STORE_TYPES,
        ]),
        dgram(metricsSocket(paths, "ids"), [
          { alert: { "tagged-packets": false } },
          { stats: { totals: true, threads: false } },
        ]),
      ]
    : [];
  return [
    {
      "eve-log": {
        enabled: true,
        filetype: "regular",
        filename: "eve.json",
        "community-id": true,
        "community-id-seed": 0,
        types: [
          { alert: { "tagged-packets": false, metadata: true } },
          ...(ship ? [] : SINGLE_TYPES),
          "dns",
          "tls",
          "http",
          "ssh",
          "files",
          "flow",
          { stats: { totals: true, threads: false } },
        ],
      },
    },
    {
      // Alerts only, to the block agent: a datagram per alert, never blocking Suricata (a missing reader drops them).
      "eve-log": {
        enabled: blocking,
        filetype: "unix_dgram",
        filename: alertSocket(paths),
        "community-id": true,
        types: [{ alert: { "tagged-packets": false } }],
      },
    },
    ...shipped,
  ];
}

function afPacket(site: Site, ids: IdsPlan): unknown[] {
  return ids.links.map((link, i) => ({
    interface: link,
    threads: site.ids.cpu.threadsPerLink,
    "cluster-id": CLUSTER_BASE + i,
    // Both directions of a flow land in one thread, so its stream and app-layer state is whole.
    "cluster-type": "cluster_flow",
    defrag: true,
    "use-mmap": true,
    "tpacket-v3": true,
    "ring-size": 4096,
    "block-size": 1048576,
  }));
}

function threading(site: Site): Record<string, unknown> {
  const { workerCpus, managementCpus } = site.ids.cpu;
  const pinned = workerCpus.length > 0 || managementCpus.length > 0;
  return {
    "set-cpu-affinity": pinned,
    "cpu-affinity": [
      { "management-cpu-set": { cpu: managementCpus.length ? managementCpus : ["all"] } },
      { "worker-cpu-set": { cpu: workerCpus.length ? workerCpus : ["all"], mode: "exclusive" } },
    ],
  };
}

/** suricata.yaml. */
export function renderSuricataYaml(site: Site, ids: IdsPlan, paths: IdsPaths = ROUTER_IDS_PATHS): string {
  const doc = {
    vars: vars(ids),
    "default-log-dir": paths.logs,
    "default-rule-path": paths.rules,
    "rule-files": ["suricata.rules"],
    "classification-file": `${paths.share}/classification.config`,
    "reference-config-file": `${paths.share}/reference.config`,
    "threshold-file": `${paths.config}/threshold.config`,
    stats: { enabled: true, interval: 10 },
    outputs: outputs(paths, ids.blockSeverity !== undefined, ids.ship),
    "af-packet": afPacket(site, ids),
    // accept: packets go on after the verdict. No fail-open: with it the kernel accepts a packet uninspected when
    // the queue or Suricata's socket is full and counts nothing (net/netfilter/nfnetlink_queue.c,
    // __nfqnl_enqueue_packet); without it that packet is dropped and counted (queue_dropped, queue_user_dropped:
    // the metrics agent's router_ids_queue_dropped_total, alert IdsQueueDrops). A stopped Suricata is the rule's
    // bypass flag's case: traffic flows uninspected, seen as router_ids_queue_listening 0 (IdsInlineBypassed).
    nfq: { mode: "accept", "fail-open": false },
    "app-layer": {
      protocols: {
        tls: { enabled: true, "detection-ports": { dp: 443 }, "ja3-fingerprints": true },
        http: { enabled: true },
        dns: { tcp: { enabled: true }, udp: { enabled: true } },
        ssh: { enabled: true },
      },
    },
    stream: {
      memcap: "64mb",
      "checksum-validation": true,
      inline: "auto",
      reassembly: { memcap: "256mb", depth: "1mb" },
    },
    "flow-timeouts": { default: { new: 30, established: 300, closed: 0 } },
    detect: { profile: "medium", "sgh-mpm-context": "auto", "inspection-recursion-limit": 3000 },
    "mpm-algo": "auto",
    "spm-algo": "auto",
    threading: threading(site),
    "unix-command": { enabled: true },
    logging: { "default-log-level": "notice", outputs: [{ console: { enabled: true, type: "json" } }] },
  };
  return `%YAML 1.1\n---\n${stringify(doc, { sortMapEntries: false, lineWidth: 0 })}`;
}

/** The site's own rules, one per line, in the site's order. */
export function renderLocalRules(site: Site): string {
  return [`# local rules of site ${site.site.name} (router:ids.rules.local)`, ...site.ids.rules.local, ""].join("\n");
}

/**
 * Suricata's own event rules that suricata-update always merges (its load_dist_rules) for protocols whose parsers
 * Suricata 7 leaves off unless configured: their rules do not load, and `suricata -T` would fail every update.
 */
const DIST_RULES_OFF = ["dnp3-events.rules", "modbus-events.rules"];

/** suricata-update's disable.conf: one sid per line (generator 1). */
export function renderDisableConf(site: Site): string {
  return [
    "# event rules of protocols whose parsers are off",
    ...DIST_RULES_OFF.map((f) => `group:${f}`),
    "# signatures switched off by router:ids.rules.disable",
    ...[...site.ids.rules.disable].sort((a, b) => a - b).map((sid) => `1:${sid}`),
    "",
  ].join("\n");
}

/** threshold.config: suppressions and rate limits, in the site's order. */
export function renderThresholds(site: Site): string {
  const lines = site.ids.rules.thresholds.map((t) =>
    t.type === "suppress"
      ? `suppress gen_id 1, sig_id ${t.sid}, track ${t.track}, ip ${t.ip}`
      : `threshold gen_id 1, sig_id ${t.sid}, type ${t.type}, track ${t.track}, count ${t.count}, seconds ${t.seconds}`,
  );
  return ["# router:ids.rules.thresholds", ...lines, ""].join("\n");
}

/**
 * suricata-update's configuration: the site's sources, its local rules and disable list merged into
 * rules/suricata.rules, and the result tested with `suricata -T` before it replaces the previous file (a failed
 * test restores the last good rules).
 */
export function renderUpdateYaml(site: Site, paths: IdsPaths = ROUTER_IDS_PATHS): string {
  const doc = {
    "disable-conf": `${paths.config}/disable.conf`,
    "data-directory": paths.data,
    "suricata-conf": `${paths.config}/suricata.yaml`,
    // suricata-update passes the merged file in OUTPUT_FILENAME (main.py, test_suricata)
    // its outputs go to a directory of the updater's own (ruleUpdateCommand creates it)
    "test-command": `suricata -T -c ${paths.config}/suricata.yaml -S "$OUTPUT_FILENAME" -l ${testLogDir(paths)}`,
    "reload-command": `suricatasc -c reload-rules ${paths.run}/ids.socket && suricatasc -c reload-rules ${paths.run}/ips.socket`,
    "ignore-files": ["*deleted.rules"],
    "local-files": [`${paths.config}/local.rules`],
    sources: site.ids.rules.sources.map((s) => s.url),
  };
  return stringify(doc, { sortMapEntries: false, lineWidth: 0 });
}

/** Every Suricata file by name (ConfigMap keys, and the artifacts under ids/). */
export function suricataFiles(site: Site, ids: IdsPlan, paths: IdsPaths = ROUTER_IDS_PATHS): Map<string, string> {
  return new Map([
    ["suricata.yaml", renderSuricataYaml(site, ids, paths)],
    ["local.rules", renderLocalRules(site)],
    ["disable.conf", renderDisableConf(site)],
    ["threshold.config", renderThresholds(site)],
    ["update.yaml", renderUpdateYaml(site, paths)],
  ]);
}
