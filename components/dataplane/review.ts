/**
 * The firewall layer's facts for review tooling (components/review.ts): zones, the zone matrix, the rules, port
 * forwards resolved to their target's zone, what the WAN can open, and the management path to the Talos and
 * Kubernetes APIs — all from the same policy model the ruleset is rendered from (components/site/policy.ts), so
 * a diff or a policy reads the meaning the router enforces. Pure.
 */
import type { FirewallRule, Site } from "../site/schema";
import { segmentPrefixes, type SitePlan } from "../site/plan";
import { contains, nthAddress } from "../site/ip";
import { evaluate, servicePorts, zoneMatrix, MANAGEMENT_TCP_PORTS, type PolicyModel } from "../site/policy";
import type { FirewallFacts, ForwardFacts, ManagementAccessFacts, RuleFacts } from "../review";

/** `tcp+udp/53,853` — a rule's protocol and ports as a reviewer writes them. */
function protoPorts(protocol: string, ports?: readonly (number | string)[]): string {
  return `${protocol}${ports?.length ? `/${ports.join(",")}` : ""}`;
}

/** `accept tcp/22,443 from … to @switches (admins-reach-switches)`. */
export function describeRule(r: FirewallRule): string {
  const parts = [r.action, protoPorts(r.protocol, r.ports)];
  if (r.source) parts.push(`from ${r.source.join(",")}`);
  if (r.destination) parts.push(`to ${r.destination.join(",")}`);
  return `${parts.join(" ")} (${r.name})`;
}

function ruleFacts(site: Site, model: PolicyModel): RuleFacts[] {
  return model.rules.map((c, i) => {
    const r = site.firewall.rules[i];
    return {
      name: c.name,
      from: c.from,
      to: c.to === "any" ? "any" : [...c.to, ...(c.toRouter ? ["router"] : [])],
      toRouter: c.toRouter,
      protocols: c.protos,
      ...(r.ports ? { ports: r.ports.map(String) } : {}),
      addressed: !!(r.source || r.destination),
      action: c.action,
    };
  });
}

/** The zone of an inside address: its segment's, or that of the segment an inside route leads through. */
function zoneOf(plan: SitePlan, address: string): string | null {
  return (
    plan.segments.find((s) => segmentPrefixes(s).some((p) => contains(p, address)))?.zone ??
    plan.insideRoutes.find((r) => contains(r.destination, address))?.zone ??
    null
  );
}

/**
 * The port a forward's IPv6 host is reached at: toPort (or the public port) as for the IPv4 host, but for a unique
 * local host reached only through prefix translation, which maps addresses and keeps the port.
 */
export function ipv6Port(f: Site["portForwards"][number], plan: SitePlan): string {
  const wans = f.wans ?? plan.wans.map((w) => w.name);
  const masquerade = plan.wans.some((w) => wans.includes(w.name) && w.nat.ipv6 === "masquerade");
  const prefixOnly = contains("fc00::/7", f.ipv6!) && !masquerade;
  return String(prefixOnly ? f.port : (f.toPort ?? f.port));
}

function forwards(site: Site, plan: SitePlan): ForwardFacts[] {
  return site.portForwards.map((f) => ({
    name: f.name,
    protocol: f.protocol,
    port: String(f.port),
    wans: [...(f.wans ?? plan.wans.map((w) => w.name))],
    to: `${f.to}:${f.toPort ?? f.port}`,
    toZone: zoneOf(plan, f.to),
    ...(f.ipv6 ? { ipv6: f.ipv6, ipv6To: `[${f.ipv6}]:${ipv6Port(f, plan)}`, ipv6Zone: zoneOf(plan, f.ipv6) } : {}),
    sources: f.sources ? [...f.sources] : "any",
    hairpin: f.hairpin,
  }));
}

/** A host of a zone to ask the policy about (rules may name addresses): its first segment's first host. */
function hostIn(plan: SitePlan, zone: string): string | undefined {
  const seg = plan.segments.find((s) => s.zone === zone);
  if (!seg) return undefined;
  const [prefix, gateway] = seg.ipv4 ? [seg.ipv4.cidr, seg.ipv4.gateway] : [seg.ipv6!.prefix, seg.ipv6!.gateway];
  const first = nthAddress(prefix, 1);
  return first === gateway ? nthAddress(prefix, 2) : first;
}

const MANAGEMENT_SERVICES: Record<number, string> = { 50000: "Talos API", 50001: "trustd", 6443: "Kubernetes API" };

function managementAccess(plan: SitePlan, model: PolicyModel): ManagementAccessFacts[] {
  return model.managementZones.flatMap((zone) => {
    const src = hostIn(plan, zone);
    if (!src) return [];
    return MANAGEMENT_TCP_PORTS.map((port) => ({
      zone,
      service: MANAGEMENT_SERVICES[port],
      port,
      verdict: evaluate(model, { from: zone, to: "router", proto: "tcp", port, src, dst: plan.managementAddress })
        .verdict,
    }));
  });
}

/** What the WAN zones can open, one line per opening; sorted. */
function wanExposure(site: Site, model: PolicyModel, fwd: ForwardFacts[]): string[] {
  const out = new Set<string>();
  const matrix = zoneMatrix(model);
  for (const wan of model.wanZones) {
    const sp = servicePorts(model.services.get(wan) ?? []);
    for (const p of sp.tcp) out.add(`tcp/${p} → router (zone ${wan} service)`);
    for (const p of sp.udp) out.add(`udp/${p} → router (zone ${wan} service)`);
    if (sp.echo) out.add(`ping → router (zone ${wan} service)`);
    for (const [to, cell] of matrix.get(wan) ?? [])
      if (to !== "router" && to !== wan && cell.verdict === "accept")
        out.add(`any → ${to} (zone policy ${wan} → ${to})`);
    for (const r of site.firewall.rules) {
      if (r.action !== "accept" || !(r.from.includes("any") || r.from.includes(wan))) continue;
      const dst = r.destination ? ` ${r.destination.join(",")}` : "";
      for (const to of r.to)
        out.add(`${protoPorts(r.protocol, r.ports)} → ${to === "any" ? "every zone" : to}${dst} (rule ${r.name})`);
    }
  }
  for (const f of fwd) {
    const from = f.sources === "any" ? "" : `, from ${f.sources.join(",")}`;
    out.add(`${f.protocol}/${f.port} → ${f.to} in ${f.toZone ?? "no zone"} (forward ${f.name}${from})`);
    if (f.ipv6)
      out.add(
        `${f.protocol}/${f.port} → ${f.ipv6To ?? `[${f.ipv6}]`} in ${f.ipv6Zone ?? "no zone"} (forward ${f.name}, IPv6${from})`,
      );
  }
  return [...out].sort();
}

export function renderFirewallFacts(site: Site, plan: SitePlan, model: PolicyModel): FirewallFacts {
  const matrix = zoneMatrix(model);
  const descriptions = new Map(site.firewall.rules.map((r) => [r.name, describeRule(r)]));
  const fwd = forwards(site, plan);
  return {
    zones: plan.zones.map((z) => ({
      name: z.name,
      management: z.management,
      wan: model.wanZones.includes(z.name),
      segments: [...z.segments],
      services: [...(model.services.get(z.name) ?? [])],
    })),
    matrix: [...matrix].flatMap(([from, row]) =>
      [...row].map(([to, c]) => ({
        from,
        to,
        verdict: to === "router" && c.verdict === "drop" ? "services" : c.verdict,
        rules: c.rules.map((n) => descriptions.get(n) ?? n),
      })),
    ),
    forwards: fwd,
    wanExposure: wanExposure(site, model, fwd),
    managementAccess: managementAccess(plan, model),
    rules: ruleFacts(site, model),
    policies: Object.fromEntries(
      [...model.policies].map(([k, v]) => [k, v.action]).sort(([a], [b]) => a.localeCompare(b)),
    ),
    defaultAction: model.defaultAction,
  };
}
