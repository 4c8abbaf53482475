/**
 * Cross-field rules of the network policy: firewall references, mDNS reflection, WAN NAT and the per-segment
 * DHCPv6/RA settings — including intent errors (a rule naming an unknown zone, services offered on a WAN zone).
 * Port forwards, routes and dynamic routing: validate-routing.ts; the management path: policy.ts.
 */
import { configPath, type SiteIssue } from "./issues";
import { contains, isAddress, parsePrefix, toBigInt } from "./ip";
import { segmentGateway6 } from "./plan";
import { knownNames, type PartialSite } from "./partial";
import { indexed } from "./salvage";
import { zoneSides } from "./zones";
import { checkPortForwards, checkRoutes, checkRouting } from "./validate-routing";

type Issues = SiteIssue[];

/** Zone names a reference may use (also of zones that failed to parse), or undefined without a zone list. */
function knownZones(s: PartialSite): Set<string> | undefined {
  return knownNames(s, "zones");
}

function wanZones(s: PartialSite): Set<string> {
  return zoneSides(s).wan;
}

function checkZoneServices(s: PartialSite, out: Issues): void {
  const wz = wanZones(s);
  for (const { index, value: z } of s.zones ?? []) {
    if (!wz.has(z.name) || !z.services) continue;
    const bad = z.services.filter((x) => x !== "ping");
    if (bad.length)
      out.push({
        path: configPath("zones", [index, "services"]),
        message: `${bad.join(", ")} would be served to the internet on WAN zone "${z.name}" (allowed on a WAN zone: ping only)`,
      });
  }
}

function checkFirewall(s: PartialSite, out: Issues): void {
  const fw = s.firewall;
  if (!fw) return;
  const zones = knownZones(s);
  const allowed = (s.zones ?? []).map((z) => z.value.name).join(", ");
  const zoneOk = (z: string) => z === "any" || !zones || zones.has(z);
  for (const { index: i, value: p } of indexed(fw.policies))
    for (const end of ["from", "to"] as const)
      if (!zoneOk(p[end]))
        out.push({
          path: configPath("firewall", ["policies", i, end]),
          message: `unknown zone "${p[end]}" (allowed: ${allowed}, or any)`,
        });
  const seen = new Map<string, number>();
  for (const { index: i, value: p } of indexed(fw.policies)) {
    const k = `${p.from}>${p.to}`;
    if (seen.has(k))
      out.push({
        path: configPath("firewall", ["policies", i]),
        message: `a second policy from ${p.from} to ${p.to} (also at policies[${seen.get(k)}]; allowed: one policy per zone pair)`,
      });
    else seen.set(k, i);
  }
  const groups = new Map<string, number>();
  for (const { index: i, value: g } of indexed(fw.addressGroups)) {
    if (groups.has(g.name))
      out.push({
        path: configPath("firewall", ["addressGroups", i, "name"]),
        message: `duplicate address group "${g.name}" (also at addressGroups[${groups.get(g.name)}]; allowed: each name once)`,
      });
    else groups.set(g.name, i);
  }
  // A reference to a group that failed to parse is not an unknown group.
  const groupNames = new Set([...groups.keys(), ...rawNames(s.raw.firewall, "addressGroups")]);
  const names = new Map<string, number>();
  for (const { index: i, value: r } of indexed(fw.rules)) {
    if (names.has(r.name))
      out.push({
        path: configPath("firewall", ["rules", i, "name"]),
        message: `duplicate rule "${r.name}" (also at rules[${names.get(r.name)}]; allowed: each name once)`,
      });
    else names.set(r.name, i);
    r.from.forEach((z, j) => {
      if (!zoneOk(z))
        out.push({
          path: configPath("firewall", ["rules", i, "from", ...(r.from.length > 1 ? [j] : [])]),
          message: `unknown zone "${z}" (allowed: ${allowed}, or any)`,
        });
    });
    r.to.forEach((z, j) => {
      if (z !== "router" && !zoneOk(z))
        out.push({
          path: configPath("firewall", ["rules", i, "to", ...(r.to.length > 1 ? [j] : [])]),
          message: `unknown zone "${z}" (allowed: ${allowed}, any, or router)`,
        });
    });
    if (r.ports && !["tcp", "udp", "tcp+udp"].includes(r.protocol))
      out.push({
        path: configPath("firewall", ["rules", i, "ports"]),
        message: `ports need a port protocol, but protocol is ${r.protocol} (allowed: protocol tcp, udp or tcp+udp with ports)`,
      });
    for (const field of ["source", "destination"] as const)
      (r[field] ?? []).forEach((ref, j) => {
        if (ref.startsWith("@") && !groupNames.has(ref.slice(1)))
          out.push({
            path: configPath("firewall", ["rules", i, field, j]),
            message: `unknown address group "${ref.slice(1)}" (allowed: ${[...groups.keys()].map((g) => `@${g}`).join(", ") || "define it in router:firewall.addressGroups"})`,
          });
      });
  }
}

/** The `name` strings of a raw list inside a raw object (`firewall.addressGroups`), parsed or not. */
function rawNames(parent: unknown, list: string): string[] {
  const items = (parent as Record<string, unknown> | undefined)?.[list];
  if (!Array.isArray(items)) return [];
  return items.flatMap((x) => (typeof x?.name === "string" ? [x.name as string] : []));
}

function checkMdns(s: PartialSite, out: Issues): void {
  if (!s.mdns) return;
  const zones = knownZones(s);
  const wz = wanZones(s);
  const owner = new Map<string, number>();
  for (const { index: i, value: g } of indexed(s.mdns.reflect)) {
    g.zones.forEach((z, j) => {
      const at = configPath("mdns", ["reflect", i, "zones", j]);
      if (zones && !zones.has(z))
        out.push({ path: at, message: `unknown zone "${z}" (allowed: ${[...zones].join(", ")})` });
      else if (wz.has(z))
        out.push({
          path: at,
          message: `"${z}" is a WAN zone; reflecting mDNS to the internet side leaks the LAN's services (allowed: LAN zones)`,
        });
      if (owner.has(z) && owner.get(z) !== i)
        out.push({
          path: at,
          message: `zone "${z}" is already in reflection group reflect[${owner.get(z)}]; sharing it would reflect between every zone of both groups (allowed: a zone in one group only — merge the groups if that is intended)`,
        });
      owner.set(z, i);
    });
    // Avahi reads allow-interfaces from one line of at most 255 characters.
    const trunk = (s.links ?? []).find((l) => l.value.role === "trunk")?.value.name ?? "?";
    const links = (s.segments ?? [])
      .filter((x) => g.zones.includes(x.value.zone))
      .map((x) => `${x.value.link ?? trunk}.${x.value.vlan}`);
    const line = `allow-interfaces=${links.join(",")}`;
    if (line.length > 255)
      out.push({
        path: configPath("mdns", ["reflect", i, "zones"]),
        message: `the group spans ${links.length} segment links, more than Avahi can name on one allow-interfaces line (${line.length} > 255 characters) (allowed: fewer segments per reflection group)`,
      });
  }
}

function checkWanNat(s: PartialSite, out: Issues): void {
  for (const { index, value: l } of s.links ?? []) {
    if (l.role !== "wan") {
      for (const f of ["nat", "probe"] as const)
        if (l[f] !== undefined)
          out.push({
            path: configPath("links", [index, f]),
            message: `a trunk has no ${f} (allowed: ${f} on WAN links)`,
          });
      continue;
    }
    const nat = l.nat;
    if (!nat) continue;
    if (nat.ipv6 === "prefix") {
      if (!nat.ipv6Internal || !nat.ipv6External)
        out.push({
          path: configPath("links", [index, "nat"]),
          message: "ipv6: prefix needs ipv6Internal and ipv6External (allowed: both prefixes, of the same length)",
        });
      else if (parsePrefix(nat.ipv6Internal).length !== parsePrefix(nat.ipv6External).length)
        out.push({
          path: configPath("links", [index, "nat", "ipv6External"]),
          message: `${nat.ipv6External} and ${nat.ipv6Internal} differ in length (allowed: prefixes of the same length, translated 1:1)`,
        });
    } else if (nat.ipv6Internal || nat.ipv6External)
      out.push({
        path: configPath("links", [index, "nat"]),
        message: `ipv6Internal/ipv6External are only used with ipv6: prefix (allowed: drop them, or set ipv6: prefix)`,
      });
  }
}

function checkSegmentIpv6(s: PartialSite, out: Issues): void {
  for (const { index, value: seg } of s.segments ?? []) {
    const at = (...p: (string | number)[]) => configPath("segments", [index, ...p]);
    if (seg.dhcpv6.enabled && !seg.ipv6)
      out.push({
        path: at("dhcpv6", "enabled"),
        message: "the segment has no IPv6 prefix (allowed: add ipv6.prefix, or disable dhcpv6)",
      });
    const r = seg.dhcpv6.range;
    if (r && seg.ipv6) {
      for (const end of ["start", "end"] as const)
        if (!contains(seg.ipv6.prefix, r[end]))
          out.push({
            path: at("dhcpv6", "range", end),
            message: `${r[end]} is outside ${seg.ipv6.prefix} (allowed: an address inside the segment's prefix)`,
          });
      if (toBigInt(r.start) > toBigInt(r.end))
        out.push({
          path: at("dhcpv6", "range"),
          message: `start ${r.start} is after end ${r.end} (allowed: start ≤ end)`,
        });
      const gw = segmentGateway6(seg);
      if (gw && toBigInt(gw) >= toBigInt(r.start) && toBigInt(gw) <= toBigInt(r.end))
        out.push({
          path: at("dhcpv6", "range"),
          message: `the range contains the router's address ${gw} (allowed: a range that excludes it)`,
        });
    }
    for (const a of seg.dhcp.dnsServers ?? [])
      if (!isAddress(a, 4)) out.push({ path: at("dhcp", "dnsServers"), message: `${a} is not IPv4` });
  }
}

/** Runs the network-policy rules. The management-path (anti-lockout) rule lives with the policy evaluator. */
export function validatePolicy(s: PartialSite): SiteIssue[] {
  const out: SiteIssue[] = [];
  checkZoneServices(s, out);
  checkFirewall(s, out);
  checkPortForwards(s, out);
  checkRoutes(s, out);
  checkRouting(s, out);
  checkMdns(s, out);
  checkWanNat(s, out);
  checkSegmentIpv6(s, out);
  return out;
}
