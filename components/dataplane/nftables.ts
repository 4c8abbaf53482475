/**
 * The router's nftables ruleset: one `table inet router` (DESIGN decision 4) holding the stateful zone firewall
 * for routed traffic, the router's own input filter, anti-spoofing, NAT44/NAT66/prefix translation, port
 * forwards with hairpin NAT, and the connection marks that send replies back out the WAN a connection came in
 * on. The extension's loader applies it atomically, replacing only this table. Pure and deterministic.
 *
 * Per-packet cost does not grow with the rule count: established traffic is accepted first; a new connection
 * is dispatched through two verdict maps (in-link → source zone, out-link → zone pair) to a chain holding only
 * that pair's rules; rules match addresses and ports through sets, and a long list of rules is reached by
 * destination port, so a new connection walks only the rules that can match its port (port-dispatch.ts).
 */
import type { Site } from "../site/schema";
import { OUTBOUND_BIT, WAN_MARK_MASK, type SitePlan } from "../site/plan";
import { contains, mergePrefixes } from "../site/ip";
import { familyOf } from "../site/ip";
import type { CompiledRule, PolicyModel, Verdict } from "../site/policy";
import { MANAGEMENT_TCP_PORTS, evaluate, servicePorts } from "../site/policy";
import { MIN_DISPATCH_RULES, mergePorts, portDispatch, ruleFamilies } from "./port-dispatch";

const TAB = "\t";

/**
 * Connection-mark bit of connections a port forward let in. The forward chain accepts exactly those — not every
 * DNATed connection (IPv6 prefix translation DNATs all inbound traffic, which the zone policy must still judge).
 */
export const PORT_FORWARD_BIT = 0x04;
const FWD = `0x${PORT_FORWARD_BIT.toString(16)}`;
/** The kernel's limit for a log prefix is 127 bytes; names can be long, so prefixes are cut. */
const LOG_PREFIX_MAX = 120;

function logPrefix(text: string): string {
  const body = text.length > LOG_PREFIX_MAX - 2 ? `${text.slice(0, LOG_PREFIX_MAX - 3)}~` : text;
  return JSON.stringify(`${body}: `);
}

/** nft identifier of a zone (chain names). */
function ident(zone: string): string {
  return zone.replace(/-/g, "_");
}

function quote(s: string): string {
  return JSON.stringify(s);
}

function setOf(items: readonly (string | number)[]): string {
  return items.length === 1 ? String(items[0]) : `{ ${items.join(", ")} }`;
}

function portList(ranges: [number, number][]): string {
  return setOf(ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)));
}

/**
 * Physical links are Talos aliases (wan0, lan0) whose kernel names differ on the box; they are named through
 * defines the loader resolves (a define's value that names no link but matches a link's Talos alias is
 * replaced by that link's kernel name). Links we create (bonds, VLANs) have their own names.
 */
export function linkDefines(site: Site, plan: SitePlan): Map<string, string> {
  const aliases = new Set(site.node.nics.map((n) => n.alias));
  const out = new Map<string, string>();
  for (const name of [...plan.wans.map((w) => w.name), ...plan.trunks.map((t) => t.name)])
    if (aliases.has(name)) out.set(name, `if_${name.replace(/-/g, "_")}`);
  return out;
}

/** How a rule's verdict is written (tests record verdicts instead). */
export type Verdicts = (v: Verdict) => string;

export const VERDICTS: Verdicts = (v) => (v === "reject" ? "reject with icmpx admin-prohibited" : v);

function verdictStmt(v: Verdict): string {
  return VERDICTS(v);
}

interface Ctx {
  site: Site;
  plan: SitePlan;
  model: PolicyModel;
  defines: Map<string, string>;
  /** Port-dispatch chains and maps, collected while the chains are rendered. */
  maps: string[];
  minDispatchRules: number;
}

function link(ctx: Ctx, name: string): string {
  const d = ctx.defines.get(name);
  return d ? `$${d}` : quote(name);
}

/** Match expressions of a rule, one entry per address family it applies to ("" = both families). */
function ruleMatches(r: CompiledRule): string[] {
  const fams: (4 | 6 | 0)[] = !r.src && !r.dst ? [0] : ruleFamilies(r);
  return fams.map((f) => {
    const parts: string[] = [];
    if (f !== 0) {
      const ip = f === 4 ? "ip" : "ip6";
      // Overlapping prefixes in one set are an nft error ("conflicting intervals"): keep the covering ones.
      if (r.src) parts.push(`${ip} saddr ${setOf(mergePrefixes(r.src[f]))}`);
      if (r.dst) parts.push(`${ip} daddr ${setOf(mergePrefixes(r.dst[f]))}`);
    }
    const protos = r.protos;
    if (protos !== "any") {
      const icmp = f === 4 ? ["icmp"] : f === 6 ? ["ipv6-icmp"] : ["icmp", "ipv6-icmp"];
      const l4 = protos.flatMap((p) => (p === "icmp" ? icmp : [p]));
      const ports = r.ports && mergePorts(r.ports);
      if (ports && protos.length === 1 && protos[0] !== "icmp") parts.push(`${protos[0]} dport ${portList(ports)}`);
      else {
        parts.push(`meta l4proto ${setOf(l4)}`);
        if (ports) parts.push(`th dport ${portList(ports)}`);
      }
    }
    return parts.join(" ");
  });
}

function ruleLines(r: CompiledRule, label: string, logRate: string, verdicts: Verdicts): string[] {
  const out: string[] = [`# rule ${r.name}`];
  for (const m of ruleMatches(r)) {
    const prefix = m ? `${m} ` : "";
    if (r.log) out.push(`${prefix}limit rate ${logRate} log prefix ${logPrefix(`router ${label} ${r.name}`)}`);
    out.push(`${prefix}${verdicts(r.action)}`);
  }
  return out;
}

export interface RuleChain {
  /** The chain's statements, in order. */
  body: string[];
  /** The chains and the verdict map the body dispatches to (they must precede the chain). */
  maps: string[];
}

/**
 * A chain's rules, in order: a long list is reached through a port dispatch (port-dispatch.ts) — one lookup on
 * the destination port jumps to the rules that can match it — and the rules with no port match follow.
 */
export function ruleChain(
  rules: readonly CompiledRule[],
  opts: {
    chain: string;
    label: string;
    logRate: string;
    minDispatchRules?: number;
    /** Dispatch whenever there are enough rules, even where it would not pay (tests). */
    alwaysDispatch?: boolean;
    verdicts?: Verdicts;
  },
): RuleChain {
  const verdicts = opts.verdicts ?? VERDICTS;
  const lines = (list: readonly CompiledRule[]) =>
    list.flatMap((r) => ruleLines(r, opts.label, opts.logRate, verdicts));
  const d = portDispatch(rules, opts.minDispatchRules ?? MIN_DISPATCH_RULES, opts.alwaysDispatch);
  if (!d) return { body: lines(rules), maps: [] };
  const maps: string[] = [];
  d.lists.forEach((list, k) => maps.push(...chain(`${opts.chain}_p${k + 1}`, lines(list))));
  const elements = d.segments.map(
    ({ lo, hi, list }) => `${lo === hi ? lo : `${lo}-${hi}`} : jump ${opts.chain}_p${list + 1}`,
  );
  maps.push(
    `map ${opts.chain}_ports {`,
    `${TAB}type inet_service : verdict`,
    `${TAB}flags interval`,
    `${TAB}elements = {`,
    ...elements.map((e) => `${TAB}${TAB}${e},`),
    `${TAB}}`,
    "}",
  );
  const longest = Math.max(...d.lists.map((l) => l.length));
  const body = [
    `# rules ${rules[0].name} … ${rules[rules.length - 1].name} (${rules.length}): by destination port to the rules that name it`,
    `# (${d.segments.length} port ranges, ${d.lists.length} rule lists of at most ${longest}), then the rules without ports`,
    `th dport vmap @${opts.chain}_ports`,
    ...lines(d.unconstrained),
  ];
  return { body, maps };
}

function rulesInto(ctx: Ctx, rules: readonly CompiledRule[], chainName: string, label: string): string[] {
  const r = ruleChain(rules, {
    chain: chainName,
    label,
    logRate: ctx.model.logRate,
    minDispatchRules: ctx.minDispatchRules,
  });
  ctx.maps.push(...r.maps);
  return r.body;
}

function chain(name: string, body: string[], hook?: string): string[] {
  return [`chain ${name} {`, ...(hook ? [`${TAB}${hook}`] : []), ...body.map((l) => (l ? `${TAB}${l}` : "")), "}"];
}

/** Forward chain of one zone pair: that pair's rules in order, then the policy's verdict. */
function pairChain(ctx: Ctx, from: string, to: string): string[] {
  const name = `fwd_${ident(from)}_${ident(to)}`;
  const rules = ctx.model.rules.filter(
    (r) => (r.from === "any" || r.from.includes(from)) && (r.to === "any" || r.to.includes(to)),
  );
  const body = rulesInto(ctx, rules, name, `${from}>${to}`);
  // The fallback verdict: what `evaluate` gives once no rule matched (addresses do not matter any more).
  const rest = evaluate(
    { ...ctx.model, rules: [] },
    { from, to, proto: "tcp", port: 1, src: "0.0.0.0", dst: "0.0.0.0" },
  );
  body.push(`# ${rest.by}`);
  if (rest.verdict !== "accept" && rest.log)
    body.push(`limit rate ${ctx.model.logRate} log prefix ${logPrefix(`router ${from}>${to} ${rest.verdict}`)}`);
  body.push(verdictStmt(rest.verdict));
  return chain(name, body);
}

function inputZoneChain(ctx: Ctx, zone: string): string[] {
  const rules = ctx.model.rules.filter((r) => r.toRouter && (r.from === "any" || r.from.includes(zone)));
  const body = rulesInto(ctx, rules, `in_${ident(zone)}`, `${zone}>router`);
  if (ctx.model.managementZones.includes(zone)) {
    body.push("# management: Talos API, trustd, Kubernetes API, data-plane metrics");
    body.push(`tcp dport ${setOf([...MANAGEMENT_TCP_PORTS, ...ctx.model.managementPorts])} accept`);
  }
  const services = ctx.model.services.get(zone) ?? [];
  const sp = servicePorts(services);
  if (services.length) body.push(`# services: ${services.join(", ")}`);
  if (sp.tcp.length) body.push(`tcp dport ${setOf(sp.tcp)} accept`);
  if (sp.udp.length) body.push(`udp dport ${setOf(sp.udp)} accept`);
  if (sp.echo) body.push("icmp type echo-request accept", "icmpv6 type echo-request accept");
  return chain(`in_${ident(zone)}`, body);
}

function internalPrefixes(site: Site, plan: SitePlan, family: 4 | 6): string[] {
  const segs = plan.segments.flatMap((s) => (family === 4 ? [s.ipv4.cidr] : s.ipv6 ? [s.ipv6.prefix] : []));
  const cluster = [...site.cluster.podCidrs].filter((c) => familyOf(c) === family);
  return [...segs, ...cluster];
}

function namedSet(name: string, type: string, elements: readonly string[], interval = false): string[] {
  if (elements.length === 0) return [];
  const items = interval ? mergePrefixes(elements) : elements;
  return [
    `set ${name} {`,
    `${TAB}type ${type}`,
    ...(interval ? [`${TAB}flags interval`, `${TAB}auto-merge`] : []),
    `${TAB}elements = { ${items.join(", ")} }`,
    "}",
  ];
}

/** The IPv6 DNAT statement of a forward to a unique local address. */
function dnat6Target(to: string, port: number | string, toPort: number | undefined, proto: string): string {
  if (toPort === undefined) return `dnat ip6 to ${to}`;
  if (typeof port === "number") return `dnat ip6 to [${to}]:${toPort}`;
  const [a, b] = port.split("-").map(Number);
  const entries = Array.from({ length: b - a + 1 }, (_, k) => `${a + k} : ${to} . ${toPort + k}`);
  const key = proto === "tcp" || proto === "udp" ? `${proto} dport` : "th dport";
  return `dnat ip6 to ${key} map { ${entries.join(", ")} }`;
}

/** The DNAT statement of a forward: same ports, one port moved, or a range moved port for port (a map). */
function dnatTarget(to: string, port: number | string, toPort: number | undefined, proto: string): string {
  if (toPort === undefined) return `dnat ip to ${to}`;
  if (typeof port === "number") return `dnat ip to ${to}:${toPort}`;
  const [a, b] = port.split("-").map(Number);
  const entries = Array.from({ length: b - a + 1 }, (_, k) => `${a + k} : ${to} . ${toPort + k}`);
  const key = proto === "tcp" || proto === "udp" ? `${proto} dport` : "th dport";
  return `dnat ip to ${key} map { ${entries.join(", ")} }`;
}

/** Renders the whole ruleset file. */
export function renderRuleset(
  site: Site,
  plan: SitePlan,
  model: PolicyModel,
  opts: { minDispatchRules?: number } = {},
): string {
  const ctx: Ctx = {
    site,
    plan,
    model,
    defines: linkDefines(site, plan),
    maps: [],
    minDispatchRules: opts.minDispatchRules ?? MIN_DISPATCH_RULES,
  };
  const lanLinks = plan.segments.map((s) => s.link);
  const wanLinks = plan.wans.map((w) => link(ctx, w.name));
  const lan4 = plan.segments.map((s) => s.ipv4.cidr);
  const lan6 = plan.segments.flatMap((s) => (s.ipv6 ? [s.ipv6.prefix] : []));
  const internal4 = [...internalPrefixes(site, plan, 4), ...site.cluster.serviceCidrs.filter((c) => familyOf(c) === 4)];
  const internal6 = [...internalPrefixes(site, plan, 6), ...site.cluster.serviceCidrs.filter((c) => familyOf(c) === 6)];
  const routerAddrs4 = plan.segments.map((s) => s.ipv4.gateway);

  const out: string[] = [
    `# nftables ruleset of site ${site.site.name} (${plan.fqdn}) — rendered by the site's Pulumi program.`,
    "# Loaded by router-dataplane as one transaction that replaces only `table inet router`.",
    "",
  ];
  for (const [name, def] of ctx.defines) out.push(`define ${def} = ${quote(name)}`);
  if (ctx.defines.size) out.push("");

  const t: string[] = [];
  t.push(...namedSet("wan_links", "ifname", wanLinks));
  t.push(...namedSet("lan_links", "ifname", lanLinks.map(quote)));
  t.push(...namedSet("internal4", "ipv4_addr", internal4, true));
  t.push(...namedSet("internal6", "ipv6_addr", internal6, true));
  t.push(...namedSet("lan4", "ipv4_addr", lan4, true));
  t.push(...namedSet("lan6", "ipv6_addr", lan6, true));
  t.push(...namedSet("router4", "ipv4_addr", routerAddrs4));
  for (const [g, v] of [...model.groups].sort(([a], [b]) => a.localeCompare(b))) {
    t.push(...namedSet(`group_${ident(g)}_4`, "ipv4_addr", v[4], true));
    t.push(...namedSet(`group_${ident(g)}_6`, "ipv6_addr", v[6], true));
  }
  // The port dispatches' chains and maps go here, ahead of the chains that use them.
  const mapsAt = t.length;

  // Anti-spoofing before connection tracking, so forged sources never create state.
  t.push(
    ...chain(
      "raw_prerouting",
      [
        "# a segment may only source addresses routed back through it (DHCP discovery and DAD excepted)",
        "iifname @lan_links ip saddr 0.0.0.0 udp dport 67 accept",
        "iifname @lan_links ip6 saddr :: accept",
        "iifname @lan_links fib saddr . iif oif missing drop",
        "# the internet never sources our own prefixes",
        ...(wanLinks.length ? ["iifname @wan_links ip saddr @internal4 drop"] : []),
        ...(wanLinks.length && internal6.length ? ["iifname @wan_links ip6 saddr @internal6 drop"] : []),
      ],
      "type filter hook prerouting priority raw; policy accept;",
    ),
  );

  // Multi-WAN: every connection through a WAN remembers it in its ct mark (bits 4–7: the WAN, bit 3: the
  // connection was opened from inside). Packets of the connection that must leave through that WAN carry the
  // WAN bits as packet mark, and the loader's `fwmark … lookup <WAN table>` rule sends them there: replies to
  // connections that came in on a WAN, and later packets of connections opened through a WAN — so a failback
  // does not move a live NATed connection to another uplink with the wrong source address.
  const mask = `0x${WAN_MARK_MASK.toString(16)}`;
  const keep = `0x${((0xffffffff ^ (WAN_MARK_MASK | OUTBOUND_BIT)) >>> 0).toString(16)}`;
  const outbound = `0x${OUTBOUND_BIT.toString(16)}`;
  const inbound = plan.wans.map(
    (w) => `iifname ${link(ctx, w.name)} ct state new ct mark set ct mark and ${keep} or 0x${w.mark.toString(16)}`,
  );
  const restore = [
    `ct direction reply ct mark and ${outbound} == 0 ct mark and ${mask} != 0 meta mark set ct mark and ${mask}`,
    `ct direction original ct mark and ${outbound} == ${outbound} meta mark set ct mark and ${mask}`,
  ];
  const egress = plan.wans.map(
    (w) =>
      `oifname ${link(ctx, w.name)} ct state new ct mark and ${mask} == 0 ct mark set ct mark and ${keep} or 0x${(w.mark | OUTBOUND_BIT).toString(16)}`,
  );
  t.push(
    ...chain(
      "mangle_prerouting",
      [...inbound, ...restore],
      "type filter hook prerouting priority mangle; policy accept;",
    ),
  );
  t.push(...chain("mangle_output", restore, "type route hook output priority mangle; policy accept;"));
  t.push(...chain("mangle_postrouting", egress, "type filter hook postrouting priority mangle; policy accept;"));

  // Input: what reaches the router itself.
  const zoneOfLink = new Map<string, string>();
  for (const z of plan.zones) for (const l of z.links) zoneOfLink.set(l, z.name);
  const byLink = [...zoneOfLink].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }));
  const inputDispatch = byLink.map(([l, z]) => `${link(ctx, l)} : jump in_${ident(z)}`);
  t.push(
    ...chain(
      "input",
      [
        "iif lo accept",
        "ct state established,related accept",
        "ct state invalid drop",
        "# ICMP the network needs (RFC 792 errors; RFC 4890 §4.4 for ICMPv6, neighbour discovery only on-link)",
        "icmp type { destination-unreachable, time-exceeded, parameter-problem } accept",
        "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept",
        "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept",
        "icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } ip6 saddr fe80::/10 accept",
        "# the router's own DHCP clients on its uplinks",
        ...(wanLinks.length
          ? [
              "iifname @wan_links udp sport 67 udp dport 68 accept",
              "iifname @wan_links ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept",
            ]
          : []),
        "# the router's own pods",
        'iifname "lxc*" accept',
        'iifname "cilium_*" accept',
        ...(inputDispatch.length ? [`iifname vmap { ${inputDispatch.join(", ")} }`] : []),
        ...(model.logDrops ? [`limit rate ${model.logRate} log prefix "router input drop: "`] : []),
        "counter drop",
      ],
      "type filter hook input priority filter; policy drop;",
    ),
  );
  for (const z of model.zones) t.push(...inputZoneChain(ctx, z));

  // Forward: routed traffic between zones.
  const pinholes = site.portForwards.flatMap((f) => {
    // A pinhole opens a global address; a unique local one is reached through NAT66 (DNAT below) or, with
    // prefix translation, at its translated address — then the pinhole names the inside address.
    if (!f.ipv6) return [];
    if (contains("fc00::/7", f.ipv6) && !plan.wans.some((w) => w.nat.ipv6 === "prefix")) return [];
    const proto = f.protocol === "tcp+udp" ? "meta l4proto { tcp, udp } th" : f.protocol;
    const wans = (f.wans ?? plan.wans.map((w) => w.name)).map((w) => link(ctx, w));
    const src = f.sources?.filter((c) => familyOf(c) === 6);
    if (f.sources && !src?.length) return [];
    return [
      `# port forward ${f.name}: IPv6 pinhole`,
      `iifname ${setOf(wans)} ${src ? `ip6 saddr ${setOf(src)} ` : ""}ip6 daddr ${f.ipv6} ${proto} dport ${f.port} accept`,
    ];
  });
  const fwdDispatch = byLink.map(([l, z]) => `${link(ctx, l)} : jump fwd_from_${ident(z)}`);
  t.push(
    ...chain(
      "forward",
      [
        "ct state established,related accept",
        "ct state invalid drop",
        "# ICMPv6 errors must pass (RFC 4890 §4.3.1)",
        "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept",
        "# port forwards: their DNAT rules already checked WAN, port and source, and marked the connection",
        `ct mark and ${FWD} == ${FWD} accept`,
        ...pinholes,
        "# the router's own pods may reach every zone",
        'iifname "lxc*" accept',
        'iifname "cilium_*" accept',
        ...(fwdDispatch.length ? [`iifname vmap { ${fwdDispatch.join(", ")} }`] : []),
        ...(model.logDrops ? [`limit rate ${model.logRate} log prefix "router forward drop: "`] : []),
        "counter drop",
      ],
      "type filter hook forward priority filter; policy drop;",
    ),
  );
  for (const from of model.zones) {
    const targets = byLink.map(([l, z]) => `${link(ctx, l)} : jump fwd_${ident(from)}_${ident(z)}`);
    t.push(...chain(`fwd_from_${ident(from)}`, targets.length ? [`oifname vmap { ${targets.join(", ")} }`] : []));
    for (const to of model.zones) t.push(...pairChain(ctx, from, to));
  }

  // NAT.
  const pre: string[] = [];
  const post: string[] = [];
  for (const f of site.portForwards) {
    const proto = f.protocol === "tcp+udp" ? "meta l4proto { tcp, udp } th" : f.protocol;
    const wans = (f.wans ?? plan.wans.map((w) => w.name)).map((w) => link(ctx, w));
    const src4 = f.sources?.filter((c) => familyOf(c) === 4);
    const dnat = dnatTarget(f.to, f.port, f.toPort, proto);
    const mark = `ct mark set ct mark or ${FWD}`;
    pre.push(`# port forward ${f.name}`);
    // IPv4 only: in an inet table a rule without an IPv4 match would also mark IPv6 connections as forwarded.
    if (!f.sources || src4!.length)
      pre.push(
        `iifname ${setOf(wans)} ${src4 ? `ip saddr ${setOf(src4)}` : "meta nfproto ipv4"} ${proto} dport ${f.port} ${mark} ${dnat}`,
      );
    // IPv6 to a unique local address: DNAT from the router's own address on WANs that masquerade IPv6.
    if (f.ipv6 && contains("fc00::/7", f.ipv6)) {
      const nat66 = (f.wans ?? plan.wans.map((w) => w.name)).filter(
        (w) => plan.wans.find((x) => x.name === w)?.nat.ipv6 === "masquerade",
      );
      const src6 = f.sources?.filter((c) => familyOf(c) === 6);
      if (nat66.length && (!f.sources || src6!.length))
        pre.push(
          `iifname ${setOf(nat66.map((w) => link(ctx, w)))} ${src6 ? `ip6 saddr ${setOf(src6)}` : "meta nfproto ipv6"} fib daddr type local ${proto} dport ${f.port} ${mark} ${dnat6Target(f.ipv6, f.port, f.toPort, proto)}`,
        );
    }
    if (f.hairpin)
      pre.push(
        `iifname @lan_links fib daddr type local ip daddr != @internal4 ${proto} dport ${f.port} ${mark} ${dnat}`,
      );
  }
  if (site.portForwards.some((f) => f.hairpin))
    post.push(
      "# hairpin: inside clients reaching a forward through the public address get the router as source",
      `ct mark and ${FWD} == ${FWD} oifname @lan_links ip saddr @lan4 masquerade`,
    );
  for (const w of plan.wans) {
    const l = link(ctx, w.name);
    if (w.nat.ipv4 === "masquerade") post.push(`oifname ${l} ip saddr @internal4 masquerade`);
    if (w.nat.ipv6 === "masquerade" && internal6.length) post.push(`oifname ${l} ip6 saddr @internal6 masquerade`);
    if (w.nat.ipv6 === "prefix" && w.nat.ipv6Internal && w.nat.ipv6External) {
      post.push(`oifname ${l} ip6 saddr ${w.nat.ipv6Internal} snat ip6 prefix to ${w.nat.ipv6External}`);
      pre.push(`iifname ${l} ip6 daddr ${w.nat.ipv6External} dnat ip6 prefix to ${w.nat.ipv6Internal}`);
    }
  }
  t.push(...chain("nat_prerouting", pre, "type nat hook prerouting priority dstnat; policy accept;"));
  t.push(...chain("nat_postrouting", post, "type nat hook postrouting priority srcnat; policy accept;"));
  if (ctx.maps.length)
    t.splice(mapsAt, 0, "# port dispatch: long rule lists reached by destination port (port-dispatch.ts)", ...ctx.maps);

  out.push("table inet router {", ...t.map((l) => (l ? `${TAB}${l}` : "")), "}", "");
  return out.join("\n");
}
