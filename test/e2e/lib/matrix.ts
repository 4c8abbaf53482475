/**
 * The reachability matrix: every zone pair (WAN included, and "to the router") × TCP/UDP/ICMP × IPv4/IPv6, with
 * an allowed and a denied port wherever the policy tells ports apart and the hosts that rules single out; from
 * the internet every WAN address of the router and every IPv6 forward target; from inside the WAN addresses at
 * the ports of the forwards published there (hairpin). Each cell's expectation comes from two oracles that must
 * agree: the independent one of the tests (lib/oracle.ts), and the product's own policy model
 * (components/site/policy.ts `evaluate`) with the harness's model of the forwards it does not cover. Cells are
 * probed concurrently from every namespace; each observation is one of
 *   reached   the destination's stack answered (application answer, TCP reset or ICMP port unreachable), or
 *             the packet passed the router's filter (seen by observer chains that run after the router's input and
 *             forward chains and never change a verdict: a UDP service need not answer, and an answer to the
 *             internet may be lost beyond the router, as an ISP drops untranslated ULA sources);
 *   rejected  ICMP administratively prohibited (IPv4 type 3 code 13, IPv6 type 1 code 1), or a TCP reset for a
 *             connection that never passed the router's filters (the router's filter reset it: the DNS stack
 *             rejects forced zones' DoT that way);
 *   dropped   nothing came back;
 * and anything else (other ICMP errors, wrong host answering) is a failure of its own. A cell the router answers
 * instead of the addressed host (a forced zone's DNS query, redirected) is reached only when the connection, as
 * addressed, passed the router's input filter and never its forward filter, and no other host answered.
 */
import { contains, familyOf, isAddress } from "../../../components/site/ip";
import { MANAGEMENT_TCP_PORTS, compilePolicy, evaluate } from "../../../components/site/policy";
import type { Flow, PolicyModel, Proto, Verdict } from "../../../components/site/policy";
import type { PortForward, Site } from "../../../components/site/schema";
import type { Appliance } from "./appliance";
import { hostAddress, routes, standIn, type Host } from "./clients";
import { INTERNET, internetSource } from "./internet";
import { PolicyOracle, type OracleFlow } from "./oracle";

export type Observed = "reached" | "rejected" | "dropped" | "other";

const OUTCOME: Record<Verdict, Observed> = { accept: "reached", reject: "rejected", drop: "dropped" };

export interface Cell {
  id: string;
  from: string;
  to: string;
  proto: Proto;
  family: 4 | 6;
  port?: number;
  /** Namespace the probe is sent from. */
  ns: string;
  src: string;
  dst: string;
  /** Who should answer when the cell is reached (a host name, "router", "internet"); undefined = anyone. */
  answerer?: string;
  /** The independent oracle's verdict (lib/oracle.ts), and what decided it. */
  expected: Verdict;
  by: string;
  /** The router answers instead of the addressed host (the independent oracle's redirect of forced DNS). */
  redirected?: boolean;
  /** The product's policy model's answer (or the harness's forward model's). */
  product: { verdict: Verdict; by: string; redirected?: boolean };
  observed?: Observed;
  detail?: string;
}

/** Ports a probe uses when no rule names one: not used by any rule, service or forward of the site. */
const FREE_TCP = [8080, 8081, 8082, 8090, 9000];
const FREE_UDP = [9999, 9998, 9997, 4000, 4001];
/** Router services probed in every zone: allowed in some, denied in others. */
const ROUTER_UDP = [53, 67, 123, 547, 5353];
/** Router TCP ports probed in every zone: ssh (never open), plain DNS, DoH and DoT (where a zone has them). */
const ROUTER_TCP = [22, 53, 443, 853];

function rulePorts(site: Site): number[] {
  const out = new Set<number>();
  for (const r of site.firewall.rules)
    for (const p of r.ports ?? []) {
      if (typeof p === "number") out.add(p);
      else for (const x of p.split("-").map(Number)) out.add(x);
    }
  for (const f of site.portForwards) {
    const [a, b] = String(f.port).split("-").map(Number);
    out.add(a);
    if (b) out.add(b);
    if (f.toPort) out.add(f.toPort);
  }
  return [...out];
}

function freePort(proto: "tcp" | "udp", site: Site, model: Pick<PolicyModel, "managementPorts">): number {
  const used = new Set([
    ...rulePorts(site),
    ...MANAGEMENT_TCP_PORTS,
    ...model.managementPorts,
    ...ROUTER_UDP,
    ...ROUTER_TCP,
  ]);
  const p = (proto === "tcp" ? FREE_TCP : FREE_UDP).find((x) => !used.has(x));
  if (p === undefined) throw new Error(`no free ${proto} port for probes`);
  return p;
}

/** Ports the matrix's destinations (clients, the internet host) must answer on. */
export function matrixPorts(site: Site): { tcp: number[]; udp: number[] } {
  const model = { managementPorts: [site.dataplane.metricsPort] } as Pick<PolicyModel, "managementPorts">;
  const extra = rulePorts(site);
  return {
    tcp: [...ROUTER_TCP, freePort("tcp", site, model), ...extra],
    udp: [53, freePort("udp", site, model), ...extra],
  };
}

/** One probe's endpoints; `only` limits it to TCP (the management ports). */
interface Endpoint {
  ns: string;
  src: string;
  dst: string;
  answerer?: string;
  only?: "tcp";
  /** The only probes of this endpoint (a forward's protocols and port), instead of the zone pair's. */
  probes?: { proto: "tcp" | "udp"; port: number }[];
}

/** The protocols and first port of a forward, as probes. */
function forwardProbes(pf: PortForward): { proto: "tcp" | "udp"; port: number }[] {
  const port = Number(String(pf.port).split("-")[0]);
  return (pf.protocol === "tcp+udp" ? (["tcp", "udp"] as const) : [pf.protocol]).map((proto) => ({ proto, port }));
}

/**
 * Builds the cells of a site running on an appliance: for every zone pair and family, probes from the zone's
 * first capable client (its probe-source pool) to the destination zone's default host, to the hosts the pair's
 * rules name, and from the sources they name; to the router, its gateway address in the source's segment and its
 * management address, from the internet every WAN address. Then the forwards: their IPv6 targets from the
 * internet, and hairpin from every zone.
 */
class CellBuilder {
  readonly cells: Cell[] = [];
  private readonly model: PolicyModel;
  private readonly oracle: PolicyOracle;
  private readonly sourceUse = new Map<string, number>();

  constructor(private readonly app: Appliance) {
    this.model = compilePolicy(app.site, app.plan);
    this.oracle = new PolicyOracle(app.site);
  }

  private zoneSegments(z: string) {
    return this.app.plan.segments.filter((s) => s.zone === z);
  }

  private isWan(z: string): boolean {
    return this.model.wanZones.includes(z);
  }

  /**
   * The next source address of a pool. Probe sources rotate so that no address collects more than a few ICMP
   * errors (the kernel rate-limits them per destination: a burst of 6, then one per second).
   */
  private next(key: string, pool: string[]): string | undefined {
    if (!pool.length) return undefined;
    const n = this.sourceUse.get(key) ?? 0;
    this.sourceUse.set(key, n + 1);
    return pool[n % pool.length];
  }

  /** The main client probes of a zone start from in a family: the first that can (routed: beyond its link). */
  private sourceHost(zone: string, family: 4 | 6, routed: boolean): Host | undefined {
    return this.zoneSegments(zone)
      .map((s) => this.app.client(s.name))
      .find((h) => (family === 4 ? h.sources4 : h.sources6).length && (!routed || routes(h, family)));
  }

  /** A probe source in a zone: the internet's pool for WAN zones, else the zone's source host's pool. */
  private source(zone: string, family: 4 | 6, routed: boolean): { ns: string; src: string; host?: Host } | undefined {
    if (this.isWan(zone)) {
      const pool = Array.from({ length: INTERNET.sourceCount }, (_, i) => internetSource(family, i));
      return { ns: this.app.inet, src: this.next(`inet/${family}`, pool)! };
    }
    const h = this.sourceHost(zone, family, routed);
    if (!h) return undefined;
    return { ns: h.ns, src: this.next(`${h.ns}/${family}`, family === 4 ? h.sources4 : h.sources6)!, host: h };
  }

  /** Default destination of a zone in a family: the main client of its first segment other than `except`'s. */
  private destination(
    from: string,
    to: string,
    family: 4 | 6,
    except?: Host,
  ): { addr: string; label: string } | undefined {
    if (this.isWan(to)) {
      // transit through the router: an internet address the hostile neighbour routes to it
      if (this.isWan(from)) return { label: "transit", addr: family === 4 ? INTERNET.transit4 : INTERNET.transit6 };
      const v6 = this.app.wans.some((w) => w.addr6);
      const addr = family === 4 ? INTERNET.server4 : v6 ? INTERNET.server6 : undefined;
      return addr ? { label: "internet", addr } : undefined;
    }
    for (const seg of this.zoneSegments(to)) {
      if (from === to && except && seg === except.segment) continue; // a zone's own traffic within one segment never crosses the router
      const h = this.app.client(seg.name);
      const addr = hostAddress(h, family);
      if (addr) return { label: h.name, addr };
    }
    return undefined;
  }

  /** Hosts the rules of a zone pair single out, as sources (in `from`) or destinations (in `to`). */
  private named(from: string, to: string, side: "src" | "dst"): { addr: string; host: Host }[] {
    const out = new Map<string, Host>();
    for (const r of this.model.rules) {
      if (r.from !== "any" && !r.from.includes(from)) continue;
      if (to === "router" ? !r.toRouter : r.to !== "any" && !r.to.includes(to)) continue;
      const refs = side === "src" ? r.src : r.dst;
      for (const p of [...(refs?.[4] ?? []), ...(refs?.[6] ?? [])]) {
        const addr = standIn(p, this.app.plan);
        const h = this.app.clients.holder(addr);
        if (h && h.segment.zone === (side === "src" ? from : to)) out.set(addr, h);
      }
    }
    return [...out].map(([addr, host]) => ({ addr, host }));
  }

  /** Endpoints to the router from a zone in a family. */
  private toRouter(from: string, family: 4 | 6): Endpoint[] {
    const s = this.source(from, family, false);
    if (!s) return [];
    const dsts: { dst: string; tcpOnly?: boolean }[] = [];
    if (this.isWan(from)) {
      for (const w of this.app.wans) {
        const a = family === 4 ? w.addr4 : w.addr6;
        if (a) dsts.push({ dst: a });
      }
    } else {
      const seg = s.host!.segment;
      const gw = family === 4 ? seg.ipv4!.gateway : seg.ipv6?.gateway;
      if (gw) dsts.push({ dst: gw });
      // the router's management address, from every zone
      const mgmt = this.app.plan.managementAddress;
      if (familyOf(mgmt) === family && gw !== mgmt) dsts.push({ dst: mgmt, tcpOnly: true });
    }
    return dsts.flatMap((d, i) => {
      const src = i === 0 ? s.src : this.source(from, family, false)!.src;
      return [{ ns: s.ns, src, dst: d.dst, answerer: "router", only: d.tcpOnly ? ("tcp" as const) : undefined }];
    });
  }

  /** Endpoints between two zones in a family. */
  private between(from: string, to: string, family: 4 | 6): Endpoint[] {
    const out: Endpoint[] = [];
    const s = this.source(from, family, true);
    const d = this.destination(from, to, family, s?.host);
    if (s && d) out.push({ ns: s.ns, src: s.src, dst: d.addr, answerer: d.label });
    // rule-named destinations in this zone, and rule-named sources from the source zone
    if (!this.isWan(to))
      for (const n of this.named(from, to, "dst").filter((x) => familyOf(x.addr) === family))
        if (from !== to || n.host.segment !== s?.host?.segment) {
          const src = this.source(from, family, true);
          if (src) out.push({ ns: src.ns, src: src.src, dst: n.addr, answerer: n.host.name });
        }
    if (d)
      for (const n of this.named(from, to, "src")) {
        // a rule-named source host's own address in the other family too (rules match one family only)
        const src = familyOf(n.addr) === family ? n.addr : hostAddress(n.host, family);
        if (src && routes(n.host, family)) out.push({ ns: n.host.ns, src, dst: d.addr, answerer: d.label });
      }
    return out;
  }

  private protoPorts(from: string, to: string, proto: "tcp" | "udp"): number[] {
    const { site } = this.app;
    const ports = new Set<number>([freePort(proto, site, this.model)]);
    for (const r of this.model.rules) {
      if (r.from !== "any" && !r.from.includes(from)) continue;
      if (to === "router" ? !r.toRouter : r.to !== "any" && !r.to.includes(to)) continue;
      if (r.protos !== "any" && !r.protos.includes(proto)) continue;
      for (const [a] of r.ports ?? []) ports.add(a);
    }
    if (this.isWan(from))
      for (const pf of site.portForwards)
        if (pf.protocol === proto || pf.protocol === "tcp+udp") ports.add(Number(String(pf.port).split("-")[0]));
    if (to === "router") {
      for (const p of proto === "tcp" ? ROUTER_TCP : ROUTER_UDP) ports.add(p);
    } else if (this.isWan(to)) {
      // HTTPS, DoT and plain DNS to the internet: what forced DNS rejects or answers in the servers' place
      for (const p of proto === "tcp" ? [53, 443, 853] : [53]) ports.add(p);
    }
    return [...ports].sort((a, b) => a - b);
  }

  /** The WAN link whose address `dst` is. */
  private wanOf(dst: string): string | undefined {
    return this.app.wans.find((w) => w.addr4 === dst || w.addr6 === dst)?.wan.name;
  }

  private push(c: Omit<Cell, "id" | "expected" | "by" | "product">): void {
    // From the internet, a WAN address is reached through its own WAN; everything else through the primary
    // (ISP 1 routes the site's prefixes and the transit address to it).
    const wanAddressOf = this.wanOf(c.dst);
    const via = this.isWan(c.from) ? (wanAddressOf ?? this.app.wans[0].wan.name) : undefined;
    const flow: Flow = { from: c.from, to: c.to, proto: c.proto, port: c.port, src: c.src, dst: c.dst };
    // the product's model is told the WAN a flow from the internet arrives on, as the ruleset knows its in-link
    if (via) flow.wan = via;
    const fwd = forwardVerdict(this.app, flow, via);
    const product = fwd ?? evaluate(this.model, flow);
    const mine = this.oracle.decide({ ...flow, via, wanAddressOf } satisfies OracleFlow);
    const target = mine.deliverTo ? this.app.clients.holder(mine.deliverTo.address) : undefined;
    this.cells.push({
      ...c,
      id: `c${this.cells.length}`,
      expected: mine.verdict,
      by: mine.by,
      product: {
        verdict: product.verdict,
        by: product.by,
        redirected: "answeredBy" in product && product.answeredBy === "router",
      },
      redirected: mine.answeredByRouter === true,
      answerer: mine.answeredByRouter
        ? "router"
        : mine.deliverTo
          ? (target?.name ?? mine.deliverTo.address)
          : c.answerer,
    });
  }

  /** Cells of one endpoint: its own probes, or the zone pair's ports for TCP and UDP, and ICMP. */
  private pushEndpoint(from: string, to: string, family: 4 | 6, e: Endpoint): void {
    const base = { from, to, family, ns: e.ns, src: e.src, dst: e.dst, answerer: e.answerer };
    if (e.probes) {
      for (const p of e.probes) this.push({ ...base, ...p });
      return;
    }
    for (const proto of ["tcp", "udp", "icmp"] as const) {
      if (e.only && proto !== e.only) continue;
      const ports =
        proto === "icmp"
          ? [undefined]
          : e.only === "tcp"
            ? [...MANAGEMENT_TCP_PORTS, ...this.model.managementPorts]
            : this.protoPorts(from, to, proto);
      for (const port of ports) this.push({ ...base, proto, port });
    }
  }

  /** From the internet to each forward's IPv6 target, at the forward's ports. */
  private pinholes(): void {
    for (const from of this.model.wanZones)
      for (const pf of this.app.site.portForwards) {
        const h = pf.ipv6 ? this.app.clients.holder(pf.ipv6) : undefined;
        const s = this.source(from, 6, true);
        if (h && s)
          this.pushEndpoint(from, h.segment.zone, 6, {
            ns: s.ns,
            src: s.src,
            dst: pf.ipv6!,
            probes: forwardProbes(pf),
          });
      }
  }

  /**
   * From every LAN zone to the IPv4 address of each WAN a forward listens on, at the forward's ports (hairpin).
   * Forwards limited to sources are left out until the product offers hairpin only to a forward's sources.
   */
  private hairpins(): void {
    for (const from of this.model.zones.filter((z) => !this.isWan(z)))
      for (const w of this.app.wans.filter((x) => x.addr4))
        for (const pf of this.app.site.portForwards.filter((x) => !x.sources)) {
          if (!(pf.wans ?? this.app.plan.wans.map((x) => x.name)).includes(w.wan.name)) continue;
          const s = this.source(from, 4, true);
          if (s)
            this.pushEndpoint(from, "router", 4, { ns: s.ns, src: s.src, dst: w.addr4!, probes: forwardProbes(pf) });
        }
  }

  build(): Cell[] {
    for (const from of this.model.zones)
      for (const to of [...this.model.zones, "router"])
        for (const family of [4, 6] as const) {
          const endpoints = to === "router" ? this.toRouter(from, family) : this.between(from, to, family);
          for (const e of endpoints) this.pushEndpoint(from, to, family, e);
        }
    this.pinholes();
    this.hairpins();
    return this.cells;
  }
}

/** Builds the cells of a site running on an appliance. */
export function buildCells(app: Appliance): Cell[] {
  return new CellBuilder(app).build();
}

/**
 * The harness's model of the port forwards, which the product's policy model does not cover: the verdict of a
 * forward for a flow from the WAN (DNAT, NAT66, pinhole) or from inside to a WAN address (hairpin), or undefined
 * when no forward applies. `via`: the WAN a flow from the internet comes in on.
 */
export function forwardVerdict(
  app: Appliance,
  f: Flow,
  via?: string,
): { verdict: Verdict; by: string; answerer: string } | undefined {
  const { site, plan } = app;
  const wanZones = new Set(plan.wans.map((w) => w.zone));
  if (f.proto === "icmp" || f.port === undefined) return undefined;
  if (!wanZones.has(f.from)) return hairpinVerdict(app, f);
  for (const pf of site.portForwards) {
    const protos = pf.protocol === "tcp+udp" ? ["tcp", "udp"] : [pf.protocol];
    if (!protos.includes(f.proto)) continue;
    const [lo, hi] = String(pf.port).split("-").map(Number);
    if (f.port < lo || f.port > (hi ?? lo)) continue;
    const wans = pf.wans ?? plan.wans.map((w) => w.name);
    const wanAddrs = app.wans.filter((w) => wans.includes(w.wan.name)).map((w) => w.addr4);
    if (pf.sources && !pf.sources.some((c) => familyOf(c.split("/")[0]) === familyOf(f.src) && contains(c, f.src)))
      continue;
    const target = app.hosts.find((h) => [h.addr4, ...h.static4].includes(pf.to));
    if (f.to === "router" && familyOf(f.dst) === 4 && wanAddrs.includes(f.dst))
      return { verdict: "accept", by: `forward:${pf.name}`, answerer: target?.name ?? pf.to };
    if (!pf.ipv6) continue;
    const h6 = app.hosts.find((h) => [h.slaac6, h.dhcp6, ...h.static6].includes(pf.ipv6));
    // A unique local target is forwarded from the router's own IPv6 address on WANs that masquerade IPv6
    // (NAT66); a global target is a pinhole to its own address.
    const ula = contains("fc00::/7", pf.ipv6);
    const nat66 = app.wans
      .filter(
        (w) => wans.includes(w.wan.name) && plan.wans.find((x) => x.name === w.wan.name)?.nat.ipv6 === "masquerade",
      )
      .map((w) => w.addr6);
    if (ula && f.to === "router" && familyOf(f.dst) === 6 && nat66.includes(f.dst))
      return { verdict: "accept", by: `forward6:${pf.name}`, answerer: h6?.name ?? pf.ipv6 };
    // a pinhole opens on the forward's WANs only: the flow must come in through one of them
    if (!ula && f.dst === pf.ipv6 && (via === undefined || wans.includes(via)))
      return { verdict: "accept", by: `pinhole:${pf.name}`, answerer: h6?.name ?? pf.ipv6 };
  }
  return undefined;
}

/** Hairpin: a flow from inside to a WAN address a hairpin forward listens on, from one of its sources. */
function hairpinVerdict(app: Appliance, f: Flow): { verdict: Verdict; by: string; answerer: string } | undefined {
  if (f.to !== "router" || familyOf(f.dst) !== 4) return undefined;
  for (const pf of app.site.portForwards) {
    const protos = pf.protocol === "tcp+udp" ? ["tcp", "udp"] : [pf.protocol];
    const [lo, hi] = String(pf.port).split("-").map(Number);
    if (!pf.hairpin || !protos.includes(f.proto) || f.port! < lo || f.port! > (hi ?? lo)) continue;
    const wans = pf.wans ?? app.plan.wans.map((w) => w.name);
    // a forward limited to some WANs hairpins at their addresses, whatever their mode (oracle.ts)
    if (!app.wans.some((w) => wans.includes(w.wan.name) && w.addr4 === f.dst)) continue;
    if (pf.sources && !pf.sources.some((c) => familyOf(c.split("/")[0]) === 4 && contains(c, f.src))) continue;
    const target = app.hosts.find((h) => [h.addr4, ...h.static4].includes(pf.to));
    return { verdict: "accept", by: `hairpin:${pf.name}`, answerer: target?.name ?? pf.to };
  }
  return undefined;
}

/** What a prober line means, before the router's observer is consulted. */
export function classify(line: string): { observed: Observed; detail: string; answerer?: string; peer?: string } {
  const [kind, ...rest] = line.split(" ");
  const detail = rest.join(" ");
  if (kind === "reached") {
    // NAME PROTO PORT PEER from our servers; "ntp …" or "echo-reply" otherwise
    const banner = rest.length === 4 && /^(tcp|udp)$/.test(rest[1]);
    return { observed: "reached", detail, answerer: banner ? rest[0] : undefined, peer: banner ? rest[3] : undefined };
  }
  if (kind === "refused") return { observed: "reached", detail: `refused ${detail}` };
  if (kind === "timeout") return { observed: "dropped", detail: "timeout" };
  if (kind === "icmp") {
    const [type, code] = rest.map(Number);
    const from = rest[2];
    if ((type === 3 && code === 13 && isAddress(from) && familyOf(from) === 4) || (type === 1 && code === 1))
      return { observed: "rejected", detail: `admin-prohibited from ${from}` };
    return { observed: "other", detail: `icmp type ${type} code ${code} from ${from}` };
  }
  return { observed: "other", detail: line };
}

const HOOKS = ["input", "forward"] as const;

const OBSERVER = [
  "table inet e2e_observer {",
  "\t# Test instrumentation: records what passed the router's own filters; never changes a verdict. A connection",
  "\t# is recorded as it was addressed (its original tuple), before any DNAT rewrote it.",
  "\t# Each hook has its own sets (seen4_input, …): a redirected connection passes input, not forward.",
  ...HOOKS.flatMap((hook) => [
    `\tset seen4_${hook} { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags dynamic; size 65535; }`,
    `\tset seen6_${hook} { type ipv6_addr . ipv6_addr . inet_proto . inet_service; flags dynamic; size 65535; }`,
    `\tset ping4_${hook} { type ipv4_addr . ipv4_addr; flags dynamic; size 65535; }`,
    `\tset ping6_${hook} { type ipv6_addr . ipv6_addr; flags dynamic; size 65535; }`,
  ]),
  ...HOOKS.flatMap((hook) => [
    `\tchain ${hook} {`,
    `\t\ttype filter hook ${hook} priority 100; policy accept;`,
    `\t\tct state new meta nfproto ipv4 meta l4proto { tcp, udp } add @seen4_${hook} { ct original ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst }`,
    `\t\tct state new meta nfproto ipv6 meta l4proto { tcp, udp } add @seen6_${hook} { ct original ip6 saddr . ct original ip6 daddr . meta l4proto . ct original proto-dst }`,
    `\t\ticmp type echo-request add @ping4_${hook} { ip saddr . ip daddr }`,
    `\t\ticmpv6 type echo-request add @ping6_${hook} { ip6 saddr . ip6 daddr }`,
    "\t}",
  ]),
  "}",
  "",
].join("\n");

/** Installs (or empties) the observer table in the router namespace. */
export function installObserver(app: Appliance): void {
  app.exec(app.router, ["nft", "delete", "table", "inet", "e2e_observer"], { allowFail: true });
  app.exec(app.router, ["nft", "-f", "-"], { input: OBSERVER });
}

/**
 * Keys of what the observer saw: `src|dst|proto|port`, or `icmpsrc|dst` for echo requests, each also prefixed
 * with the hook that saw it (`input:…`, `forward:…`).
 */
export function observedKeys(app: Appliance): Set<string> {
  const out = new Set<string>();
  const json = JSON.parse(app.exec(app.router, ["nft", "-j", "list", "table", "inet", "e2e_observer"]).stdout) as {
    nftables: { set?: { name: string; elem?: unknown[] } }[];
  };
  for (const item of json.nftables) {
    if (!item.set?.elem) continue;
    for (const e of item.set.elem) {
      const concat = ((e as { elem?: { val: unknown } }).elem?.val ?? e) as { concat: (string | number)[] };
      const parts = concat.concat.map(String);
      const key = `${item.set.name.startsWith("ping") ? "icmp" : ""}${parts.join("|")}`;
      out.add(key).add(`${item.set.name.split("_")[1]}:${key}`);
    }
  }
  return out;
}

function observerKey(c: Cell): string {
  if (c.proto === "icmp") return `icmp${c.src}|${c.dst}`;
  return `${c.src}|${c.dst}|${c.proto}|${c.port}`;
}

/** ICMP errors the kernel sends one destination at once before rate-limiting it to one per second. */
const ICMP_BURST = 5;

/** True when the router may answer a probe with an ICMP error (rejects; UDP to the router's closed ports). */
function errorProne(c: Cell): boolean {
  return c.expected === "reject" || (c.proto === "udp" && c.to === "router");
}

/** Runs cells in waves (see probeCells) and returns each cell's observation. */
async function observe(app: Appliance, cells: Cell[], timeoutMs: number): Promise<void> {
  installObserver(app);
  const waves: Cell[][] = [];
  const drawn = new Map<string, number>();
  for (const c of cells) {
    let wave = 0;
    if (errorProne(c)) {
      const k = drawn.get(c.src) ?? 0;
      drawn.set(c.src, k + 1);
      wave = k < ICMP_BURST ? 0 : k - ICMP_BURST + 1;
    }
    (waves[wave] ??= []).push(c);
  }
  const results = new Map<string, string>();
  for (const wave of waves) {
    const byNs = new Map<string, Cell[]>();
    for (const c of wave ?? []) byNs.set(c.ns, [...(byNs.get(c.ns) ?? []), c]);
    await Promise.all(
      [...byNs].map(async ([ns, list]) => {
        const input = list.map((c) => `${c.id} ${c.proto} ${c.dst} ${c.port ?? 0} ${c.src} ${timeoutMs}`).join("\n");
        const r = await app.run(ns, [app.netprobe, "probe", "--parallel", "48", "--gap-us", "4000"], {
          input: `${input}\n`,
          timeoutMs: 120_000,
        });
        for (const line of r.stdout.split("\n").filter(Boolean)) {
          const i = line.indexOf(" ");
          results.set(line.slice(0, i), line.slice(i + 1));
        }
      }),
    );
  }
  const seen = observedKeys(app);
  for (const c of cells) {
    const line = results.get(c.id);
    if (line === undefined) {
      c.observed = "other";
      c.detail = "no result from the prober";
      continue;
    }
    const k = classify(line);
    c.observed = k.observed;
    c.detail = k.detail;
    judge(c, k, seen);
  }
}

/** A cell's observation from the prober's line and what the observer saw (see the header). */
function judge(c: Cell, k: ReturnType<typeof classify>, seen: Set<string>): void {
  const key = observerKey(c);
  const passed = seen.has(key);
  if (k.observed === "dropped" && passed) {
    c.observed = "reached";
    c.detail = `passed the router's ${seen.has(`input:${key}`) ? "input" : "forward"} filter (no answer came back)`;
  }
  if (k.observed === "reached" && k.detail === "refused tcp-reset" && !passed) {
    c.observed = "rejected";
    c.detail = "TCP reset by the router's filter (the connection passed neither input nor forward)";
  }
  if (k.observed === "reached" && k.answerer && c.answerer && k.answerer !== c.answerer) {
    c.observed = "other";
    c.detail = `answered by ${k.answerer}, expected ${c.answerer}`;
  }
  if (c.redirected && c.observed === "reached" && (!seen.has(`input:${key}`) || seen.has(`forward:${key}`))) {
    c.observed = "other";
    c.detail = `${c.detail}; not answered by the router in the addressed host's place (input: ${seen.has(`input:${key}`)}, forward: ${seen.has(`forward:${key}`)})`;
  }
}

/**
 * Probes every cell and records what was observed. Cells run concurrently, one prober per source namespace, in
 * waves: a source address that would draw more ICMP errors than the kernel's per-destination burst gets the rest
 * of its cells in later waves, so a rate-limited reject is never mistaken for a drop. A cell that disagrees with
 * the oracle is probed once more, alone and with a long timeout (a loaded machine can answer late); it agrees
 * only if that second observation does, and it keeps the first observation in its detail either way. Returns
 * the cells that needed the second attempt.
 */
export async function probeCells(app: Appliance, cells: Cell[], timeoutMs = 1500): Promise<Cell[]> {
  await observe(app, cells, timeoutMs);
  const again = cells.filter((c) => !agrees(c));
  if (!again.length) return [];
  const first = new Map(again.map((c) => [c.id, `${c.observed} (${c.detail})`]));
  await new Promise((r) => setTimeout(r, 1200));
  await observe(app, again, 5000);
  for (const c of again) c.detail = `${c.detail}; first attempt: ${first.get(c.id)}`;
  return again;
}

/** True when the two oracles give a cell the same verdict and agree whether the router answers in its place. */
export function oraclesAgree(c: Cell): boolean {
  return c.product.verdict === c.expected && (c.product.redirected ?? false) === (c.redirected ?? false);
}

/** Every cell the oracles disagree on, with both answers. */
export function formatDisagreements(cells: Cell[]): string {
  return cells
    .filter((c) => !oraclesAgree(c))
    .map(
      (c) =>
        `  ${c.from}→${c.to} ${c.proto}${c.port ? `/${c.port}` : ""} ${c.src} → ${c.dst}: independent oracle ${c.expected}${c.redirected ? " by the router" : ""} (${c.by}), product's policy model ${c.product.verdict}${c.product.redirected ? " by the router" : ""} (${c.product.by})`,
    )
    .join("\n");
}

/** True when a cell's observation matches the oracle. */
export function agrees(c: Cell): boolean {
  return c.observed === OUTCOME[c.expected];
}

/** The matrix as text: a zone grid of agreeing/total cells, then every disagreeing cell. */
export function formatMatrix(cells: Cell[]): string {
  const zones = [...new Set(cells.map((c) => c.from))];
  const tos = [...new Set(cells.map((c) => c.to))];
  const w = Math.max(10, ...tos.map((t) => t.length + 2));
  const lines = [`${"from \\ to".padEnd(12)}${tos.map((t) => t.padStart(w)).join("")}`];
  for (const f of zones) {
    const row = tos.map((t) => {
      const cs = cells.filter((c) => c.from === f && c.to === t);
      if (!cs.length) return "-".padStart(w);
      return `${cs.filter(agrees).length}/${cs.length}`.padStart(w);
    });
    lines.push(`${f.padEnd(12)}${row.join("")}`);
  }
  const bad = cells.filter((c) => !agrees(c));
  if (bad.length) {
    lines.push("", `${bad.length} cells disagree with the oracle:`);
    for (const c of bad)
      lines.push(
        `  ${c.from}→${c.to} ${c.proto}${c.port ? `/${c.port}` : ""} IPv${c.family} ${c.src} → ${c.dst}: expected ${c.expected} (${c.by}; product's model: ${c.product.by}), observed ${c.observed} (${c.detail})`,
      );
  }
  return lines.join("\n");
}
