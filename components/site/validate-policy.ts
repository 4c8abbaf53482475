/**
 * Cross-field rules of the network policy: firewall references, port forwards, routes, dynamic routing, mDNS
 * reflection, WAN NAT and the per-segment DHCPv6/RA settings — including intent errors (a forward to an address
 * no segment holds, a rule naming an unknown zone, a policy that cuts the management path).
 */
import { configPath, type SiteIssue } from "./issues";
import { contains, familyOf, isAddress, nthAddress, overlaps, parsePrefix, toBigInt } from "./ip";
import { segmentGateway4, segmentGateway6, wanZone } from "./plan";
import type { PartialSite } from "./validate";
import { DEFAULT_BOGONS4, DEFAULT_BOGONS6 } from "./bogons";

type Issues = SiteIssue[];

/** Zone names a reference may use, or undefined when the zones key itself is broken. */
function knownZones(s: PartialSite): Set<string> | undefined {
  if (!s.zones || s.incomplete.has("zones")) return undefined;
  return new Set(s.zones.map((z) => z.value.name));
}

function wanZones(s: PartialSite): Set<string> {
  return new Set((s.links ?? []).filter((l) => l.value.role === "wan").map((l) => wanZone(l.value)));
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
  const allowed = zones ? [...zones].join(", ") : "";
  const zoneOk = (z: string) => z === "any" || !zones || zones.has(z);
  fw.policies.forEach((p, i) => {
    for (const end of ["from", "to"] as const)
      if (!zoneOk(p[end]))
        out.push({
          path: configPath("firewall", ["policies", i, end]),
          message: `unknown zone "${p[end]}" (allowed: ${allowed}, or any)`,
        });
  });
  const seen = new Map<string, number>();
  fw.policies.forEach((p, i) => {
    const k = `${p.from}>${p.to}`;
    if (seen.has(k))
      out.push({
        path: configPath("firewall", ["policies", i]),
        message: `a second policy from ${p.from} to ${p.to} (also at policies[${seen.get(k)}]; allowed: one policy per zone pair)`,
      });
    else seen.set(k, i);
  });
  const groups = new Map<string, number>();
  fw.addressGroups.forEach((g, i) => {
    if (groups.has(g.name))
      out.push({
        path: configPath("firewall", ["addressGroups", i, "name"]),
        message: `duplicate address group "${g.name}" (also at addressGroups[${groups.get(g.name)}]; allowed: each name once)`,
      });
    else groups.set(g.name, i);
  });
  const names = new Map<string, number>();
  fw.rules.forEach((r, i) => {
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
        if (ref.startsWith("@") && !groups.has(ref.slice(1)))
          out.push({
            path: configPath("firewall", ["rules", i, field, j]),
            message: `unknown address group "${ref.slice(1)}" (allowed: ${[...groups.keys()].map((g) => `@${g}`).join(", ") || "define it in router:firewall.addressGroups"})`,
          });
      });
  });
}

function segmentOf(s: PartialSite, address: string) {
  return (s.segments ?? []).find((x) =>
    familyOf(address) === 4
      ? contains(x.value.ipv4.cidr, address)
      : x.value.ipv6 && contains(x.value.ipv6.prefix, address),
  );
}

function portRange(p: number | string): [number, number] {
  if (typeof p === "number") return [p, p];
  const [a, b] = p.split("-").map(Number);
  return [a, b];
}

function checkPortForwards(s: PartialSite, out: Issues): void {
  if (!s.portForwards || s.incomplete.has("segments")) return;
  const wans = (s.links ?? []).filter((l) => l.value.role === "wan").map((l) => l.value.name);
  const names = new Map<string, number>();
  const claims: { i: number; wans: string[]; protos: string[]; range: [number, number] }[] = [];
  s.portForwards.forEach((f, i) => {
    const at = (...p: (string | number)[]) => configPath("portForwards", [i, ...p]);
    if (names.has(f.name))
      out.push({
        path: at("name"),
        message: `duplicate port forward "${f.name}" (also at portForwards[${names.get(f.name)}]; allowed: each name once)`,
      });
    else names.set(f.name, i);
    const seg = segmentOf(s, f.to);
    if (!seg)
      out.push({
        path: at("to"),
        message: `${f.to} is outside every segment, so the forward could never be delivered (allowed: a host address in ${(s.segments ?? []).map((x) => x.value.ipv4.cidr).join(", ")})`,
      });
    else if (
      f.to === segmentGateway4(seg.value) ||
      f.to === nthAddress(seg.value.ipv4.cidr, 0) ||
      f.to === nthAddress(seg.value.ipv4.cidr, -1)
    )
      out.push({
        path: at("to"),
        message: `${f.to} is the router, the network or the broadcast address of segment ${seg.value.name} (allowed: a client host in the segment)`,
      });
    if (f.ipv6 !== undefined) {
      const seg6 = segmentOf(s, f.ipv6);
      if (!seg6 || f.ipv6 === segmentGateway6(seg6.value))
        out.push({
          path: at("ipv6"),
          message: `${f.ipv6} is not a host in any segment's IPv6 prefix (allowed: a client address inside a segment /64)`,
        });
    }
    (f.wans ?? []).forEach((w, j) => {
      if (!wans.includes(w))
        out.push({
          path: at("wans", j),
          message: `"${w}" is not a WAN link (allowed: ${wans.join(", ") || "a link with role: wan"})`,
        });
    });
    // The XDP guard drops bogon sources on the WANs before NAT, unless the allowlist names them.
    const dp = s.dataplane;
    for (const [j, src] of (f.sources ?? []).entries()) {
      const fam = familyOf(src);
      if (!dp?.enabled || !(fam === 4 ? dp.bogons.ipv4 : dp.bogons.ipv6)) continue;
      const bogon = (fam === 4 ? DEFAULT_BOGONS4 : DEFAULT_BOGONS6).find((b) => overlaps(b, src));
      const allowed = dp.allowlist.some(
        (a) => familyOf(a) === fam && contains(a, nthAddress(src, 0)) && contains(a, nthAddress(src, -1)),
      );
      if (bogon && !allowed)
        out.push({
          path: at("sources", j),
          message: `${src} lies in the bogon range ${bogon}, which the XDP guard drops on every WAN before any forward (allowed: public sources, or add them to router:dataplane.allowlist)`,
        });
    }
    if (f.ipv6 !== undefined && contains("fc00::/7", f.ipv6)) {
      const targets = (f.wans ?? wans).map((w) => (s.links ?? []).find((l) => l.value.name === w)?.value);
      if (!targets.some((l) => l?.nat?.ipv6 === "masquerade" || l?.nat?.ipv6 === "prefix"))
        out.push({
          path: at("ipv6"),
          message: `${f.ipv6} is a unique local address, which the internet cannot reach (allowed: a global address, or NAT66 — nat.ipv6 masquerade or prefix — on one of the forward's WANs)`,
        });
    }
    const range = portRange(f.port);
    if (f.toPort !== undefined && range[1] - range[0] >= 1024)
      out.push({
        path: at("toPort"),
        message: `shifting ${range[1] - range[0] + 1} ports maps each one separately (allowed: a shifted range of at most 1024 ports, or no toPort to keep the ports)`,
      });
    if (f.toPort !== undefined && f.toPort + (range[1] - range[0]) > 65535)
      out.push({
        path: at("toPort"),
        message: `the range ${f.port} shifted to ${f.toPort} ends past 65535 (allowed: a start port that fits the whole range)`,
      });
    const protos = f.protocol === "tcp+udp" ? ["tcp", "udp"] : [f.protocol];
    const targets = f.wans ?? wans;
    for (const c of claims)
      if (
        c.protos.some((p) => protos.includes(p)) &&
        c.wans.some((w) => targets.includes(w)) &&
        c.range[0] <= range[1] &&
        range[0] <= c.range[1]
      )
        out.push({
          path: at("port"),
          message: `${f.protocol} ${f.port} is already forwarded by portForwards[${c.i}] on the same WAN (allowed: one forward per WAN, protocol and port)`,
        });
    claims.push({ i, wans: targets, protos, range });
  });
}

function checkRoutes(s: PartialSite, out: Issues): void {
  if (!s.routes || s.incomplete.has("segments")) return;
  const onLink = (gw: string) =>
    !!segmentOf(s, gw) ||
    (s.links ?? []).some((l) =>
      familyOf(gw) === 4
        ? l.value.ipv4?.mode === "static" && contains(l.value.ipv4.address, gw)
        : l.value.ipv6?.mode === "static" && contains(l.value.ipv6.address, gw),
    );
  const own = new Set(
    (s.segments ?? [])
      .flatMap((x) => [segmentGateway4(x.value), segmentGateway6(x.value)])
      .filter((a): a is string => !!a),
  );
  const notRoutable = [
    ...(s.cluster?.podCidrs ?? []).map((c) => ({ cidr: c, what: "the pod network" })),
    ...(s.cluster?.serviceCidrs ?? []).map((c) => ({ cidr: c, what: "the service network" })),
    ...(s.links ?? []).flatMap((l) => [
      ...(l.value.ipv4?.mode === "static"
        ? [{ cidr: l.value.ipv4.address, what: `WAN ${l.value.name}'s subnet` }]
        : []),
      ...(l.value.ipv6?.mode === "static"
        ? [{ cidr: l.value.ipv6.address, what: `WAN ${l.value.name}'s subnet` }]
        : []),
    ]),
  ];
  s.routes.forEach((r, i) => {
    if (own.has(r.gateway))
      out.push({
        path: configPath("routes", [i, "gateway"]),
        message: `${r.gateway} is the router's own address; the kernel refuses a local next hop (allowed: another router on the segment)`,
      });
    for (const n of notRoutable)
      if (familyOf(n.cidr) === familyOf(r.destination) && overlaps(n.cidr, r.destination))
        out.push({
          path: configPath("routes", [i, "destination"]),
          message: `${r.destination} overlaps ${n.what} (${n.cidr}) (allowed: a prefix the router does not own)`,
        });
    if (!onLink(r.gateway))
      out.push({
        path: configPath("routes", [i, "gateway"]),
        message: `${r.gateway} is not on any segment or static WAN subnet, so the route could not be installed (allowed: a next hop inside a segment or a static WAN subnet)`,
      });
    for (const seg of s.segments ?? []) {
      const mine = familyOf(r.destination) === 4 ? seg.value.ipv4.cidr : seg.value.ipv6?.prefix;
      if (mine && overlaps(mine, r.destination))
        out.push({
          path: configPath("routes", [i, "destination"]),
          message: `${r.destination} overlaps segment ${seg.value.name} (${mine}), which is directly connected (allowed: a remote prefix)`,
        });
    }
  });
}

function checkRouting(s: PartialSite, out: Issues): void {
  const names = new Set((s.segments ?? []).map((x) => x.value.name));
  if (!s.routing || s.incomplete.has("segments")) return;
  s.routing.bgp?.advertise.forEach((n, i) => {
    if (!names.has(n))
      out.push({
        path: configPath("routing", ["bgp", "advertise", i]),
        message: `unknown segment "${n}" (allowed: ${[...names].join(", ")})`,
      });
  });
  const ospf = s.routing.ospf;
  if (ospf) {
    for (const field of ["segments", "passive"] as const)
      ospf[field].forEach((n, i) => {
        if (!names.has(n))
          out.push({
            path: configPath("routing", ["ospf", field, i]),
            message: `unknown segment "${n}" (allowed: ${[...names].join(", ")})`,
          });
      });
    ospf.passive.forEach((n, i) => {
      if (ospf.segments.includes(n))
        out.push({
          path: configPath("routing", ["ospf", "passive", i]),
          message: `"${n}" is also an active OSPF segment (allowed: a segment listed in segments or in passive, not both)`,
        });
    });
  }
}

function checkMdns(s: PartialSite, out: Issues): void {
  if (!s.mdns) return;
  const zones = knownZones(s);
  const wz = wanZones(s);
  const owner = new Map<string, number>();
  s.mdns.reflect.forEach((g, i) => {
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
  });
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
