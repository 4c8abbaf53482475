/**
 * Logs into one searchable store on the router (VictoriaLogs), with retention and forwarding for a fleet:
 * - Talos' service logs (machine.logging) and kernel messages (KmsgLogConfig) as JSON lines over TCP to the
 *   collector on 127.0.0.1 — host-side documents of the machine configuration;
 * - the firewall's drop records: the ruleset logs to an NFLOG group instead of the kernel log (a
 *   RulesetContribution), ulogd2 turns each packet into a JSON record (addresses, ports, interfaces, the rule's
 *   prefix) and sends it to the collector as one datagram;
 * - every pod's log files (/var/log/pods, CRI format);
 * - the IDS's events when the IDS stack runs: Suricata's EVE records (alerts, flows, DNS, TLS, HTTP, SSH,
 *   anomalies, inline drops; each with its community ID) one datagram each on a unix socket the collector binds in
 *   a host directory both pods mount — no file to rotate, and a collector that is down costs only the records
 *   Suricata sends meanwhile, never its speed — and, with Zeek, Zeek's JSON log files (followed like the pods');
 * - syslog-ng, the collector, parses each JSON line, tags its source and posts batches of JSON lines to the store
 *   and, when the site forwards, to the central store.
 * Pure; `syslog-ng --syntax-only` and a real pipeline in a namespace check the output.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { durationSeconds } from "../site/duration";
import { OBSERVABILITY_LOCAL_PORTS as LOCAL, OBSERVABILITY_PORTS } from "../site/schema-observability";
import type { HostContribution } from "../talos-node/documents";
import type { RulesetContribution } from "../dataplane/ruleset/common";
import { hostPort } from "./targets";
import { EVENT_SOCKET, ROUTER_IDS_PATHS } from "../ids-stack/suricata";

/** The NFLOG group the ruleset's drop logs go to (ulogd2 reads it). */
export const DROP_LOG_GROUP = 2;
export const SYSLOG_NG_CONFIG = "/etc/syslog-ng/conf/syslog-ng.conf";
export const ULOGD_CONFIG = "/etc/ulogd/ulogd.conf";
export const LOGS_DATA = "/victoria-logs-data";
/**
 * A file of the collector's Secret defining `forward_password` (the central store's basic-auth password), which
 * the configuration includes: the password is never in the ConfigMap.
 */
export const LOG_FORWARD_SECRET_CONF = "/etc/syslog-ng/secrets/forward.conf";

/** The Secret's file defining the forwarding password for the collector. */
export function forwardPasswordConf(password: string): string {
  return `@define forward_password "${password.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"\n`;
}
const ULOGD_PLUGINS = "/usr/lib/x86_64-linux-gnu/ulogd";
/** Where Zeek writes its logs on the host (one directory per link: ids-stack/zeek.ts). */
export const ZEEK_LOGS = `${ROUTER_IDS_PATHS.logs}/zeek`;

/** The IDS's sources when its stack runs: Suricata's EVE socket, and Zeek's log files when Zeek runs. */
export function idsLogSources(site: Site): { suricata: boolean; zeek: boolean } {
  return { suricata: site.ids.enabled, zeek: site.ids.enabled && site.ids.zeek.enabled };
}

/** The collector's IDS sources, parsers and tags (syslog-ng lines). */
function idsSources(site: Site): { lines: string[]; logs: string[] } {
  const on = idsLogSources(site);
  const lines: string[] = [];
  const logs: string[] = [];
  if (on.suricata) {
    lines.push(
      // One EVE record per datagram; bursts wait in the socket's buffer (the kernel caps it at net.core.rmem_max).
      `source s_ids { unix-dgram("${ROUTER_IDS_PATHS.events}/${EVENT_SOCKET}" perm(0666) flags(no-parse) log-msg-size(65536) so-rcvbuf(4194304)); };`,
      'rewrite r_ids { set("ids" value(".r.source")); set("suricata" value(".r.sensor")); set("${.r.event_type}" value(".r.msg")); set("${.r.alert.signature}" value(".r.msg") condition("${.r.event_type}" eq "alert")); };',
    );
    logs.push("log { source(s_ids); parser(p_json); rewrite(r_ids); DEST };");
  }
  if (on.zeek) {
    lines.push(
      `source s_zeek { wildcard-file(base-dir("${ZEEK_LOGS}") filename-pattern("*.log") recursive(yes) flags(no-parse) follow-freq(1) log-msg-size(65536)); };`,
      'rewrite r_zeek { set("ids" value(".r.source")); set("zeek" value(".r.sensor")); set("${FILE_NAME}" value(".r.file")); };',
    );
    logs.push("log { source(s_zeek); parser(p_json); rewrite(r_zeek); DEST };");
  }
  return { lines, logs };
}

/** Talos sends its service logs and kernel messages to the collector (machine configuration). */
export function loggingHost(): HostContribution {
  return {
    layer: "observability",
    documents: [
      {
        apiVersion: "v1alpha1",
        kind: "KmsgLogConfig",
        name: "router-logs",
        url: `tcp://127.0.0.1:${LOCAL.kernelLogs}/`,
      },
    ],
    logging: { destinations: [{ endpoint: `tcp://127.0.0.1:${LOCAL.talosLogs}/`, format: "json_lines" }] },
  };
}

/** Drop logs go to the NFLOG group ulogd2 reads instead of the kernel log. */
export function loggingRuleset(): RulesetContribution {
  return { by: "observability: drop logs to NFLOG for the log store", logGroup: DROP_LOG_GROUP };
}

/** ulogd.conf: NFLOG group → one JSON record per dropped packet → the collector. */
export function renderUlogd(site: Site): string {
  const plugins = ["inppkt_NFLOG", "filter_IFINDEX", "filter_IP2STR", "raw2packet_BASE", "output_JSON"];
  return [
    `# ulogd2 of site ${site.site.name}: firewall drop records (NFLOG group ${DROP_LOG_GROUP}) as JSON (rendered)`,
    "[global]",
    'logfile="stdout"',
    "loglevel=5",
    ...plugins.map((p) => `plugin="${ULOGD_PLUGINS}/ulogd_${p}.so"`),
    "stack=drops:NFLOG,base:BASE,ifindex:IFINDEX,ip2str:IP2STR,json:JSON",
    "",
    "[drops]",
    `group=${DROP_LOG_GROUP}`,
    "",
    "[json]",
    // UDP on loopback: ulogd 2.0.8 refuses to start when a TCP collector is not listening yet (its JSON output
    // connects at start, ulogd_output_JSON.c json_init_socket), so the container would crash-loop until syslog-ng
    // is up; a datagram socket connects at once and a lost collector costs only the records sent while it is gone.
    'mode="udp"',
    'host="127.0.0.1"',
    `port="${LOCAL.firewallLogs}"`,
    "sync=1",
    "",
  ].join("\n");
}

/**
 * The store's ingestion URL: stream per source (and IDS sensor); the message is Talos' msg, a drop's rule prefix,
 * a pod line, or what the collector sets for an IDS record (an alert's signature, else its event type). Records
 * without `time` (the IDS's) are stamped when they arrive.
 */
function ingestUrl(base: string): string {
  return `${base}?_stream_fields=source,sensor&_msg_field=msg,oob.prefix,message&_time_field=time`;
}

function httpDestination(name: string, url: string, auth?: { username: string }): string[] {
  return [
    `destination ${name} {`,
    `  http(url("${ingestUrl(url)}") method("POST")`,
    '    headers("Content-Type: application/stream+json")',
    ...(auth ? [`    user("${auth.username}") password("\`forward_password\`")`] : []),
    '    body("$(format-json --key .r.* --rekey .r.* --shift 3)")',
    "    batch-lines(200) batch-timeout(1000) timeout(10)",
    // A store that is down must not take the router's memory: buffer on disk, bounded.
    '    disk-buffer(reliable(no) disk-buf-size(67108864) dir("/var/lib/syslog-ng")));',
    "};",
  ];
}

/** syslog-ng.conf of the collector. */
export function renderSyslogNg(site: Site, plan: SitePlan): string {
  const fwd = site.observability.logs.forward;
  const store = `http://${hostPort(plan.managementAddress, OBSERVABILITY_PORTS.logs)}/insert/jsonline`;
  const net = (name: string, port: number, transport: "tcp" | "udp") =>
    `source ${name} { network(ip("127.0.0.1") port(${port}) transport("${transport}") flags(no-parse) log-msg-size(65536)); };`;
  const ids = idsSources(site);
  const lines = [
    "@version: 3.38",
    `# syslog-ng of site ${site.site.name}: the log collector (rendered)`,
    ...(fwd?.username ? [`@include "${LOG_FORWARD_SECRET_CONF}"`] : []),
    "options { keep-hostname(yes); stats-freq(0); create-dirs(yes); };",
    net("s_talos", LOCAL.talosLogs, "tcp"),
    net("s_kernel", LOCAL.kernelLogs, "tcp"),
    net("s_firewall", LOCAL.firewallLogs, "udp"),
    // Every container's log file: <namespace>_<pod>_<uid>/<container>/<n>.log, CRI lines "<time> <stream> <P|F> <text>".
    'source s_pods { wildcard-file(base-dir("/var/log/pods") filename-pattern("*.log") recursive(yes) flags(no-parse) follow-freq(1)); };',
    'parser p_json { json-parser(prefix(".r.")); };',
    'parser p_cri { csv-parser(columns(".r.time", ".r.stream", ".r.partial", ".r.message") delimiters(" ") flags(greedy)); };',
    ...["talos", "kernel", "firewall"].map((s) => `rewrite r_${s} { set("${s}" value(".r.source")); };`),
    'rewrite r_pods { set("pods" value(".r.source")); set("${FILE_NAME}" value(".r.file")); };',
    ...ids.lines,
    ...httpDestination("d_store", store),
    ...(fwd ? httpDestination("d_forward", fwd.url, fwd.username ? { username: fwd.username } : undefined) : []),
  ];
  const dest = `destination(d_store);${fwd ? " destination(d_forward);" : ""}`;
  for (const s of ["talos", "kernel", "firewall"])
    lines.push(`log { source(s_${s}); parser(p_json); rewrite(r_${s}); ${dest} };`);
  lines.push(`log { source(s_pods); parser(p_cri); rewrite(r_pods); ${dest} };`);
  lines.push(...ids.logs.map((l) => l.replace("DEST", dest)), "");
  return lines.join("\n");
}

/** VictoriaLogs' command line. */
export function logStoreArgs(site: Site, plan: SitePlan): string[] {
  return [
    `-storageDataPath=${LOGS_DATA}`,
    `-retentionPeriod=${Math.ceil(durationSeconds(site.observability.logs.retention) / 3600)}h`,
    `-httpListenAddr=${hostPort(plan.managementAddress, OBSERVABILITY_PORTS.logs)}`,
    // Keep the store under its memory limit (the default is 60% of the box's memory).
    "-memory.allowedPercent=50",
  ];
}
