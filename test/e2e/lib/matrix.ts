/**
 * The reachability matrix: every zone pair (WAN included, and "to the router") × TCP/UDP/ICMP × IPv4/IPv6, with
 * an allowed and a denied port wherever the policy tells ports apart and the hosts that rules single out. The
 * expected outcome of each cell comes from the policy oracle (`evaluate`), plus the port forwards the oracle does
 * not model (DNAT and IPv6 pinholes from the WAN). Cells are probed concurrently from every namespace; each
 * observation is one of
 *   reached   the destination's stack answered (application answer, TCP reset or ICMP port unreachable), or
 *             the packet passed the router's filter (seen by observer chains that run after the router's input and
 *             forward chains and never change a verdict: a UDP service need not answer, and an answer to the
 *             internet may be lost beyond the router, as an ISP drops untranslated ULA sources);
 *   rejected  ICMP administratively prohibited (IPv4 type 3 code 13, IPv6 type 1 code 1);
 *   dropped   nothing came back;
 * and anything else (other ICMP errors, wrong host answering) is a failure of its own.
 */
import { contains, familyOf, isAddress, nthAddress } from "../../../components/site/ip";
import { MANAGEMENT_TCP_PORTS, compilePolicy, evaluate } from "../../../components/site/policy";
import type { Flow, PolicyModel, Proto, Verdict } from "../../../components/site/policy";
import type { Site } from "../../../components/site/schema";
import type { SitePlan } from "../../../components/site/plan";
import type { Appliance, Host } from "./appliance";
import { INTERNET, internetSource } from "./internet";

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
  expected: Verdict;
  /** What decided the expectation (the oracle's `by`, or the port forward). */
  by: string;
  observed?: Observed;
  detail?: string;
}

/** Ports a probe uses when no rule names one: not used by any rule, service or forward of the site. */
const FREE_TCP = [8080, 8081, 8082, 8090, 9000];
const FREE_UDP = [9999, 9998, 9997, 4000, 4001];
/** Router services probed in every zone: allowed in some, denied in others. */
const ROUTER_UDP = [53, 67, 123, 547, 5353];

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
  const used = new Set([...rulePorts(site), ...MANAGEMENT_TCP_PORTS, ...model.managementPorts, ...ROUTER_UDP, 22]);
  const p = (proto === "tcp" ? FREE_TCP : FREE_UDP).find((x) => !used.has(x));
  if (p === undefined) throw new Error(`no free ${proto} port for probes`);
  return p;
}

/** Ports every client and the internet host must answer on for the matrix and the NAT tests of a site. */
export function probePorts(site: Site): { tcp: number[]; udp: number[] } {
  const model = { managementPorts: [site.dataplane.metricsPort] } as Pick<PolicyModel, "managementPorts">;
  const extra = rulePorts(site);
  const tcp = new Set([22, 53, 80, 443, 853, freePort("tcp", site, model), ...extra]);
  const udp = new Set([53, 123, 853, freePort("udp", site, model), ...extra]);
  return { tcp: [...tcp].sort((a, b) => a - b), udp: [...udp].sort((a, b) => a - b) };
}

/** Host addresses named by firewall rules, which the appliance must place on some host. */
export function ruleAddresses(site: Site, plan: SitePlan): string[] {
  const out = new Set<string>();
  const add = (ref: string) => {
    if (ref.startsWith("@")) {
      const g = site.firewall.addressGroups.find((x) => x.name === ref.slice(1));
      for (const a of g?.addresses ?? []) add(a);
      return;
    }
    const addr = standIn(ref, plan);
    if (plan.segments.some((s) => contains(s.ipv4!.cidr, addr) || (s.ipv6 && contains(s.ipv6.prefix, addr))))
      out.add(addr);
  };
  for (const r of site.firewall.rules) for (const ref of [...(r.source ?? []), ...(r.destination ?? [])]) add(ref);
  return [...out];
}

/** The host address that stands for a rule's address or prefix: the address itself, else the prefix's first
 * host address that is not the router's. */
function standIn(ref: string, plan: SitePlan): string {
  const [addr, len] = ref.split("/");
  const fam = familyOf(addr);
  if (!len || (fam === 4 && len === "32") || (fam === 6 && len === "128")) return addr;
  const gateways = new Set(plan.segments.flatMap((s) => [s.ipv4!.gateway, ...(s.ipv6 ? [s.ipv6.gateway] : [])]));
  for (let i = 1; ; i++) {
    const a = nthAddress(ref, i);
    if (!gateways.has(a)) return a;
  }
}

/** Every address a host answers on. */
function hostAddresses(h: Host): string[] {
  return [h.addr4, h.slaac6, h.dhcp6, ...h.static4, ...h.static6].filter((x): x is string => !!x);
}

function holder(app: Appliance, addr: string): Host | undefined {
  return app.hosts.find((h) => hostAddresses(h).includes(addr));
}

/** The address a host is reached at by default in a family. */
function hostAddress(h: Host, family: 4 | 6): string | undefined {
  return family === 4 ? h.addr4 : (h.slaac6 ?? h.dhcp6 ?? h.static6[0]);
}

interface Endpoint {
  ns: string;
  /** Address for each family (undefined = cannot take part in that family). */
  addr: (family: 4 | 6) => string | undefined;
  /** Label of the host in its servers' answers. */
  label: string;
}

/** Builds the cells of a site running on an appliance. */
export function buildCells(app: Appliance): Cell[] {
  const { site, plan } = app;
  const model = compilePolicy(site, plan);
  const cells: Cell[] = [];
  const sourceUse = new Map<string, number>();
  // Probe sources rotate so that no address collects more than a few ICMP errors (the kernel rate-limits them
  // per destination: a burst of 6, then one per second).
  const poolSource = (ns: string, family: 4 | 6, pool: string[]): string => {
    const key = `${ns}/${family}`;
    const n = sourceUse.get(key) ?? 0;
    sourceUse.set(key, n + 1);
    return pool[n % pool.length];
  };
  const wanPool = (family: 4 | 6) => Array.from({ length: 60 }, (_, i) => internetSource(family, i));
  const primary = app.wans[0];
  const wanHasV6 = app.wans.some((w) => w.addr6);

  const zoneSegments = (z: string) => plan.segments.filter((s) => s.zone === z);

  /** Where probes from a zone start: its first segment's main client with its probe-source pool. */
  const sources = (zone: string): { ns: string; pick: (f: 4 | 6) => string | undefined }[] => {
    if (model.wanZones.includes(zone)) return [{ ns: app.inet, pick: (f) => poolSource(app.inet, f, wanPool(f)) }];
    const seg = zoneSegments(zone)[0];
    if (!seg) return [];
    const h = app.client(seg.name);
    return [
      {
        ns: h.ns,
        pick: (f) => {
          const pool = f === 4 ? h.sources4 : h.sources6;
          return pool.length ? poolSource(h.ns, f, pool) : undefined;
        },
      },
    ];
  };

  /** Default destination of a zone: the main client of its first segment (of its second when from = to). */
  const destination = (from: string, to: string): Endpoint | undefined => {
    if (model.wanZones.includes(to)) {
      if (model.wanZones.includes(from))
        // transit through the router: an internet address the hostile neighbour routes to it
        return { ns: app.inet, label: "transit", addr: (f) => (f === 4 ? INTERNET.transit4 : INTERNET.transit6) };
      return {
        ns: app.inet,
        label: "internet",
        addr: (f) => (f === 4 ? INTERNET.server4 : wanHasV6 ? INTERNET.server6 : undefined),
      };
    }
    const segs = zoneSegments(to);
    const seg = from === to ? segs[1] : segs[0];
    if (!seg) return undefined; // a zone of one segment: its own traffic never crosses the router
    const h = app.client(seg.name);
    return { ns: h.ns, label: h.name, addr: (f) => hostAddress(h, f) };
  };

  const push = (c: Omit<Cell, "id" | "expected" | "by">) => {
    const flow: Flow = { from: c.from, to: c.to, proto: c.proto, port: c.port, src: c.src, dst: c.dst };
    const fwd = forwardVerdict(app, flow);
    const decision = fwd ?? evaluate(model, flow);
    cells.push({
      ...c,
      id: `c${cells.length}`,
      expected: decision.verdict,
      by: decision.by,
      answerer: fwd?.answerer ?? c.answerer,
    });
  };

  const protoPorts = (from: string, to: string, proto: "tcp" | "udp"): number[] => {
    const ports = new Set<number>([freePort(proto, site, model)]);
    for (const r of model.rules) {
      if (r.from !== "any" && !r.from.includes(from)) continue;
      if (to === "router" ? !r.toRouter : r.to !== "any" && !r.to.includes(to)) continue;
      if (r.protos !== "any" && !r.protos.includes(proto)) continue;
      for (const [a] of r.ports ?? []) ports.add(a);
    }
    if (model.wanZones.includes(from))
      for (const pf of site.portForwards)
        if (pf.protocol === proto || pf.protocol === "tcp+udp") ports.add(Number(String(pf.port).split("-")[0]));
    if (to === "router") {
      if (proto === "tcp") for (const p of [22, 53, 443]) ports.add(p);
      else for (const p of ROUTER_UDP) ports.add(p);
    } else if (model.wanZones.includes(to)) {
      if (proto === "tcp") ports.add(443);
      else ports.add(53);
    }
    return [...ports].sort((a, b) => a - b);
  };

  /**
   * Hosts the rules of a zone pair single out: as sources (the rule's source addresses in the source zone) and
   * as destinations (its destination addresses in the destination zone). A prefix is stood for by its first host.
   */
  const namedFor = (from: string, to: string, side: "src" | "dst") => {
    const out = new Map<string, Host>();
    for (const r of model.rules) {
      if (r.from !== "any" && !r.from.includes(from)) continue;
      if (to === "router" ? !r.toRouter : r.to !== "any" && !r.to.includes(to)) continue;
      const refs = side === "src" ? r.src : r.dst;
      for (const p of [...(refs?.[4] ?? []), ...(refs?.[6] ?? [])]) {
        const addr = standIn(p, plan);
        const h = holder(app, addr);
        if (h && h.segment.zone === (side === "src" ? from : to)) out.set(addr, h);
      }
    }
    return [...out].map(([addr, host]) => ({ addr, host }));
  };

  for (const from of model.zones) {
    const srcs = sources(from);
    if (!srcs.length) continue;
    for (const to of [...model.zones, "router"]) {
      const namedSources = namedFor(from, to, "src");
      const namedDestinations = namedFor(from, to, "dst");
      for (const family of [4, 6] as const) {
        const endpoints: { ns: string; src: string; dst: string; answerer?: string; only?: "tcp" }[] = [];
        const fromWan = model.wanZones.includes(from);
        if (to === "router") {
          const dsts: { dst: string; tcpOnly?: boolean }[] = [];
          if (fromWan) {
            const a = family === 4 ? primary.addr4 : primary.addr6;
            if (a) dsts.push({ dst: a });
          } else {
            const seg = zoneSegments(from)[0];
            const gw = family === 4 ? seg.ipv4!.gateway : seg.ipv6?.gateway;
            if (gw) dsts.push({ dst: gw });
            // the router's management address, from every zone
            if (familyOf(plan.managementAddress) === family && gw !== plan.managementAddress)
              dsts.push({ dst: plan.managementAddress, tcpOnly: true });
          }
          for (const d of dsts)
            for (const s of srcs) {
              const src = s.pick(family);
              if (src)
                endpoints.push({ ns: s.ns, src, dst: d.dst, answerer: "router", only: d.tcpOnly ? "tcp" : undefined });
            }
        } else {
          const d = destination(from, to);
          const dst = d?.addr(family);
          if (d && dst)
            for (const s of srcs) {
              const src = s.pick(family);
              if (src) endpoints.push({ ns: s.ns, src, dst, answerer: d.label });
            }
          // rule-named destinations in this zone, and rule-named sources from the source zone
          if (!model.wanZones.includes(to))
            for (const n of namedDestinations.filter((x) => familyOf(x.addr) === family))
              if (from !== to || n.host.segment !== zoneSegments(from)[0])
                for (const s of srcs) {
                  const src = s.pick(family);
                  if (src) endpoints.push({ ns: s.ns, src, dst: n.addr, answerer: n.host.name });
                }
          if (d)
            for (const n of namedSources.filter((x) => familyOf(x.addr) === family)) {
              const dd = d.addr(family);
              if (dd) endpoints.push({ ns: n.host.ns, src: n.addr, dst: dd, answerer: d.label });
            }
          // a rule-named source host's own address in the other family (rules match one family only)
          if (d)
            for (const n of namedSources.filter((x) => familyOf(x.addr) !== family)) {
              const own = hostAddress(n.host, family);
              const dd = d.addr(family);
              if (own && dd) endpoints.push({ ns: n.host.ns, src: own, dst: dd, answerer: d.label });
            }
        }
        for (const e of endpoints) {
          for (const proto of ["tcp", "udp", "icmp"] as const) {
            if (e.only && proto !== e.only) continue;
            const ports =
              proto === "icmp"
                ? [undefined]
                : e.only === "tcp"
                  ? [...MANAGEMENT_TCP_PORTS, ...model.managementPorts]
                  : protoPorts(from, to, proto);
            for (const port of ports)
              push({ from, to, proto, family, port, ns: e.ns, src: e.src, dst: e.dst, answerer: e.answerer });
          }
        }
      }
    }
  }
  return cells;
}

/** The verdict of a port forward for a flow from the WAN, or undefined when no forward applies. */
export function forwardVerdict(
  app: Appliance,
  f: Flow,
): { verdict: Verdict; by: string; answerer: string } | undefined {
  const { site, plan } = app;
  const wanZones = new Set(plan.wans.map((w) => w.zone));
  if (!wanZones.has(f.from) || f.proto === "icmp" || f.port === undefined) return undefined;
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
    if (!ula && f.dst === pf.ipv6)
      return { verdict: "accept", by: `pinhole:${pf.name}`, answerer: h6?.name ?? pf.ipv6 };
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

const OBSERVER = [
  "table inet e2e_observer {",
  "\t# Test instrumentation: records what passed the router's own filters; never changes a verdict.",
  "\tset seen4 { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags dynamic; size 65535; }",
  "\tset seen6 { type ipv6_addr . ipv6_addr . inet_proto . inet_service; flags dynamic; size 65535; }",
  "\tset ping4 { type ipv4_addr . ipv4_addr; flags dynamic; size 65535; }",
  "\tset ping6 { type ipv6_addr . ipv6_addr; flags dynamic; size 65535; }",
  ...["input", "forward"].flatMap((hook) => [
    `\tchain ${hook} {`,
    `\t\ttype filter hook ${hook} priority 100; policy accept;`,
    "\t\tct state new meta nfproto ipv4 meta l4proto { tcp, udp } add @seen4 { ip saddr . ip daddr . meta l4proto . th dport }",
    "\t\tct state new meta nfproto ipv6 meta l4proto { tcp, udp } add @seen6 { ip6 saddr . ip6 daddr . meta l4proto . th dport }",
    "\t\ticmp type echo-request add @ping4 { ip saddr . ip daddr }",
    "\t\ticmpv6 type echo-request add @ping6 { ip6 saddr . ip6 daddr }",
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

/** Keys of what the observer saw: `src|dst|proto|port`, or `icmpsrc|dst` for echo requests. */
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
      out.add(`${item.set.name.startsWith("ping") ? "icmp" : ""}${parts.join("|")}`);
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
    if (k.observed === "dropped" && seen.has(observerKey(c))) {
      c.observed = "reached";
      c.detail = `passed the router's ${c.to === "router" ? "input" : "forward"} filter (no answer came back)`;
    }
    if (k.observed === "reached" && k.answerer && c.answerer && k.answerer !== c.answerer) {
      c.observed = "other";
      c.detail = `answered by ${k.answerer}, expected ${c.answerer}`;
    }
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
        `  ${c.from}→${c.to} ${c.proto}${c.port ? `/${c.port}` : ""} IPv${c.family} ${c.src} → ${c.dst}: expected ${c.expected} (${c.by}), observed ${c.observed} (${c.detail})`,
      );
  }
  return lines.join("\n");
}
