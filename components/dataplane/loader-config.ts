/**
 * The data-plane loader's configuration (router-dataplane, our Talos system extension): which links carry the
 * XDP guard and the tc accounting/QoS programs, which features are on, where the tables come from. Rendered as
 * the INI file the loader reads (format: ebpf/README.md) plus the small table files it names. Pure.
 */
import { createHash } from "node:crypto";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { familyOf } from "../site/ip";
import { MANAGEMENT_TCP_PORTS } from "../site/policy";
import { BLOCK_PROTECT_FILE, loaderBlock } from "../ids-stack/block";
import { ROUTING_POD_ROUTE_PROTOCOLS } from "../network-services/bird";

/** Name of the extension service (Talos runs it as `ext-router-dataplane`). */
export const EXTENSION_NAME = "router-dataplane";
/** Where Talos mounts our configuration files inside the service's container. */
export const CONFIG_DIR = "/usr/local/etc/router-dataplane";
export const CONFIG_PATH = `${CONFIG_DIR}/dataplane.conf`;
export const TABLE_DIR = `${CONFIG_DIR}/tables`;
/** The nftables ruleset the loader applies. */
export const RULESET_PATH = `${CONFIG_DIR}/router.nft`;
/** Host state of the loader (feed cache), bind-mounted from the node's /var. */
export const STATE_DIR = "/var/lib/router-dataplane";
export const PIN_ROOT = "/sys/fs/bpf/router-dataplane";

export interface LoaderFiles {
  /** Absolute path in the service's container → content. The first entry is the loader configuration. */
  files: Map<string, string>;
  /** The configuration's `[global] generation`: what the loader's /health reports once it has committed it. */
  generation: string;
}

/**
 * The identity of a rendering of the extension's files: SHA-256 (hex) over, for each file in mount order, its
 * path, a NUL byte, its content and a NUL byte — with the configuration's own `generation` line left out (it
 * cannot contain its own digest). Any change to the configuration, a table or the ruleset changes it.
 */
export function loaderGeneration(files: ReadonlyMap<string, string>): string {
  const h = createHash("sha256");
  for (const [path, content] of files) {
    const text = path === CONFIG_PATH ? content.replace(/^generation = .*\n/m, "") : content;
    h.update(path).update("\0").update(text).update("\0");
  }
  return h.digest("hex");
}

function list(prefixes: readonly string[], what: string): string {
  const v4 = prefixes.filter((p) => familyOf(p) === 4);
  const v6 = prefixes.filter((p) => familyOf(p) === 6);
  return [
    `# ${what}: ${prefixes.length} prefixes (rendered from the site; do not edit on the node)`,
    ...v4,
    ...v6,
    "",
  ].join("\n");
}

/** Renders the loader configuration and the table files it references. */
export function renderLoaderConfig(site: Site, plan: SitePlan, opts: { nftRuleset?: string } = {}): LoaderFiles {
  const dp = site.dataplane;
  const files = new Map<string, string>();
  const tables = new Map<string, string>();
  const lines: string[] = [
    `# router-dataplane configuration of site ${site.site.name} (${plan.fqdn})`,
    "# Rendered by the site's Pulumi program; Talos mounts it read-only. Format: ebpf/README.md.",
    "",
    "[global]",
    `pin_root = ${PIN_ROOT}`,
    // Metrics on the management address only: never reachable from the WAN, even before nftables loads.
    `metrics_address = ${plan.managementAddress}`,
    `metrics_port = ${dp.metricsPort}`,
    `state_dir = ${STATE_DIR}`,
  ];
  if (opts.nftRuleset !== undefined) lines.push(`nft_ruleset = ${RULESET_PATH}`);
  lines.push(...failClosedKeys(site, plan));
  // Without OSPF the bird pod is gone, and with it whatever would remove its routes (and FRR's before it): the
  // loader does. With OSPF, BIRD owns them and the key is left out. Adding OSPF never has the loader sweep a running
  // BIRD's routes: the bird DaemonSet is created only after the machine configuration without the key is applied and
  // its generation confirmed by the loader (network-services depends on the node's hostConfigured).
  if (!site.routing.ospf) lines.push(`stale_route_protocols = ${ROUTING_POD_ROUTE_PROTOCOLS.join(", ")}`);
  lines.push("");

  if (dp.enabled)
    for (const w of plan.wans) lines.push(`[interface ${w.name}]`, "role = wan", `xdp_mode = ${dp.xdpMode}`, "");
  for (const s of plan.segments) {
    lines.push(`[interface ${s.link}]`, "role = segment", `segment = ${s.name}`, `segment_id = ${s.vlan}`);
    const qos = site.segments.find((x) => x.name === s.name)?.qos;
    if (qos) {
      lines.push(`qos_default_priority = ${qos.defaultPriority}`);
      for (const [dscp, prio] of Object.entries(qos.dscpPriority).sort(([a], [b]) => Number(a) - Number(b)))
        lines.push(`qos_dscp_priority = ${dscp}:${prio}`);
      if (qos.rewriteDscp !== undefined) lines.push(`qos_rewrite_dscp = ${qos.rewriteDscp}`);
      lines.push(`qos_trust_pcp = ${qos.trustPcp}`);
    }
    lines.push("");
  }

  const geoFeeds = dp.feeds.filter((f) => f.kind === "geo");
  lines.push(
    "[features]",
    `bogons_ipv4 = ${dp.bogons.ipv4}`,
    `bogons_ipv6 = ${dp.bogons.ipv6}`,
    `blocklist = ${dp.blocklist.length > 0 || dp.feeds.some((f) => f.kind === "block")}`,
    `geoip = ${dp.blockCountries.length > 0 && geoFeeds.length > 0}`,
    "ratelimit = true",
    "",
  );
  if (dp.bogons.extra.length) {
    tables.set("bogons-extra.txt", list(dp.bogons.extra, "extra bogon prefixes"));
    lines.push("[bogons]", `extra = ${TABLE_DIR}/bogons-extra.txt`, "");
  }

  const tableLines: string[] = [];
  if (dp.allowlist.length) {
    tables.set("allow.txt", list(dp.allowlist, "allowlist"));
    tableLines.push(`allow = ${TABLE_DIR}/allow.txt`);
  }
  if (dp.blocklist.length) {
    tables.set("block.txt", list(dp.blocklist, "blocklist"));
    tableLines.push(`block = ${TABLE_DIR}/block.txt`);
  }
  if (dp.blockCountries.length) tableLines.push(`block_countries = ${[...dp.blockCountries].sort().join(",")}`);
  if (tableLines.length) lines.push("[tables]", ...tableLines, "");

  const r = dp.rateLimits;
  lines.push(
    "[ratelimit]",
    `syn_rate = ${r.syn.rate}`,
    `syn_burst = ${r.syn.burst}`,
    `icmp_rate = ${r.icmp.rate}`,
    `icmp_burst = ${r.icmp.burst}`,
    `udp_rate = ${r.udp.rate}`,
    `udp_burst = ${r.udp.burst}`,
    `slots = ${r.slots}`,
    "",
  );
  // Multi-WAN: the loader probes each uplink through its own routing table, keeps that table's default route in
  // step with the main table, steers new connections away from an unhealthy uplink, and routes replies by mark.
  for (const w of plan.wans)
    lines.push(
      `[wan ${w.name}]`,
      `priority = ${w.priority}`,
      `mark = 0x${w.mark.toString(16)}`,
      `table = ${w.table}`,
      ...w.probe.targets.map((t) => `probe = ${t}`),
      `probe_interval = ${w.probe.interval}`,
      `probe_timeout = ${w.probe.timeout}`,
      `down_after = ${w.probe.failures}`,
      `up_after = ${w.probe.successes}`,
      "",
    );
  for (const f of [...dp.feeds].sort((a, b) => a.name.localeCompare(b.name)))
    lines.push(`[feed ${f.name}]`, `url = ${f.url}`, `kind = ${f.kind}`, `refresh = ${f.refresh}`, "");
  // IDS alerts that block their source at the guard (components/ids-stack/block.ts): the agent's socket and uid, and
  // what is never blocked besides what the loader reads live (gateways, resolvers, probe targets, its addresses).
  const block = loaderBlock(site, plan);
  if (block) {
    tables.set(BLOCK_PROTECT_FILE, list(block.protect, "sources an IDS alert never blocks"));
    lines.push(
      "[dynamic_block]",
      `socket = ${block.socket}`,
      `agent_uid = ${block.agentUid}`,
      `duration = ${block.seconds}s`,
      `max_entries = ${block.maxEntries}`,
      `protect = ${TABLE_DIR}/${BLOCK_PROTECT_FILE}`,
      "",
    );
  }

  files.set(CONFIG_PATH, lines.join("\n"));
  for (const [name, content] of [...tables].sort(([a], [b]) => a.localeCompare(b)))
    files.set(`${TABLE_DIR}/${name}`, content);
  if (opts.nftRuleset !== undefined) files.set(RULESET_PATH, opts.nftRuleset);
  // The loader reports the generation of the configuration it has committed (/health), so the apply can tell
  // that this rendering is the one running.
  const generation = loaderGeneration(files);
  const config = files.get(CONFIG_PATH)!.replace(/^\[global\]\n(?:.+\n)*/m, (g) => `${g}generation = ${generation}\n`);
  files.set(CONFIG_PATH, config);
  return { files, generation };
}

/**
 * The keys of a fail-closed start: the loader switches forwarding on only once its ruleset is in (a no-op while the
 * machine configuration keeps it on and the forward gate, gate.ts, holds routed traffic back instead; it matters
 * where the machine boots with forwarding off); should the ruleset be refused, its built-in fallback accepts
 * management (Talos API, trustd, Kubernetes API, the loader's metrics and health) only from the management zones'
 * links.
 */
function failClosedKeys(site: Site, plan: SitePlan): string[] {
  // WAN links are never management links (the site rules refuse them in a management zone; the loader too)
  const wans = new Set(plan.wans.map((w) => w.name));
  const mgmt = plan.zones.filter((z) => z.management).flatMap((z) => z.links.filter((l) => !wans.has(l)));
  const ports = [...new Set([...MANAGEMENT_TCP_PORTS, site.dataplane.metricsPort])].sort((a, b) => a - b);
  return [
    "enable_forwarding = true",
    ...(mgmt.length ? [`management_links = ${[...new Set(mgmt)].sort().join(", ")}`] : []),
    `management_ports = ${ports.join(", ")}`,
  ];
}
