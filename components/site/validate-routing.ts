/**
 * Cross-field rules of what crosses the router by address: port forwards (their targets, sources, WANs and
 * ports), static routes and dynamic routing. A host behind a static route whose next hop is on a segment (an
 * inside route) is as much inside as a host on the segment itself. Each rule checks what parsed (partial.ts) and
 * stays silent only where a part that failed to parse could change its answer.
 */
import type { Segment, StaticRoute } from "./schema";
import { configPath, type SiteIssue } from "./issues";
import { contains, familyOf, isCidr, nthAddress, overlaps } from "./ip";
import { segmentGateway4, segmentGateway6 } from "./plan";
import { droppedElements, isIncomplete, knownNames, type Indexed, type PartialSite } from "./partial";
import { indexed } from "./salvage";
import { DEFAULT_BOGONS4, DEFAULT_BOGONS6 } from "./bogons";
import { OSPF_HMAC_KEY_MIN, OSPF_MD5_KEY_MAX } from "./schema-policy";

type Issues = SiteIssue[];

/** The segment whose subnet (IPv4) or prefix (IPv6) holds an address. */
export function segmentOf(s: PartialSite, address: string): Indexed<Segment> | undefined {
  return (s.segments ?? []).find((x) => {
    const p = familyOf(address) === 4 ? x.value.ipv4?.cidr : x.value.ipv6?.prefix;
    return !!p && contains(p, address);
  });
}

/** Static routes whose next hop is on a segment: the prefix behind it is inside, on that segment's side. */
function insideRoutes(s: PartialSite): { route: StaticRoute; segment: Indexed<Segment> }[] {
  return (s.routes ?? []).flatMap((route) => {
    const segment = segmentOf(s, route.gateway);
    return segment ? [{ route, segment }] : [];
  });
}

/**
 * True when a segment or a route that failed to parse could hold `address`, so a rule saying "outside every
 * segment" could be wrong.
 */
function maybeElsewhere(s: PartialSite, address: string): boolean {
  const could = (v: unknown) =>
    typeof v !== "string" || !isCidr(v) || familyOf(v) !== familyOf(address) || contains(v, address);
  const dropped = droppedElements(s, "segments").some((x) => {
    const v4 = (x.ipv4 as { cidr?: unknown } | undefined)?.cidr;
    const v6 = (x.ipv6 as { prefix?: unknown } | undefined)?.prefix;
    return familyOf(address) === 4 ? x.ipv4 !== undefined && could(v4) : x.ipv6 !== undefined && could(v6);
  });
  return dropped || isIncomplete(s, "routes") || (!s.segments && s.raw.segments !== undefined);
}

function portRange(p: number | string): [number, number] {
  if (typeof p === "number") return [p, p];
  const [a, b] = p.split("-").map(Number);
  return [a, b];
}

/** Where a forward delivers: a client host on a segment, or a host behind an inside route. */
function checkForwardTargets(
  s: PartialSite,
  f: NonNullable<PartialSite["portForwards"]>[number],
  at: (...p: (string | number)[]) => string,
  out: Issues,
): void {
  const routed = insideRoutes(s);
  const behind = (a: string) => routed.find((r) => contains(r.route.destination, a));
  const seg = segmentOf(s, f.to);
  const cidr = seg?.value.ipv4?.cidr;
  if (seg && cidr) {
    if (f.to === segmentGateway4(seg.value) || f.to === nthAddress(cidr, 0) || f.to === nthAddress(cidr, -1))
      out.push({
        path: at("to"),
        message: `${f.to} is the router, the network or the broadcast address of segment ${seg.value.name} (allowed: a client host in the segment)`,
      });
  } else if (!behind(f.to) && !maybeElsewhere(s, f.to)) {
    const where = [
      ...(s.segments ?? []).flatMap((x) => (x.value.ipv4 ? [x.value.ipv4.cidr] : [])),
      ...routed
        .filter((r) => familyOf(r.route.destination) === 4)
        .map((r) => `${r.route.destination} (routed via ${r.route.gateway})`),
    ];
    out.push({
      path: at("to"),
      message: `${f.to} is outside every segment and every prefix routed to the inside, so the forward could never be delivered (allowed: a host address in ${where.join(", ") || "a segment's IPv4 subnet"})`,
    });
  }
  if (f.ipv6 === undefined) return;
  const seg6 = segmentOf(s, f.ipv6);
  if (seg6 && f.ipv6 === segmentGateway6(seg6.value))
    out.push({
      path: at("ipv6"),
      message: `${f.ipv6} is the router's own address in segment ${seg6.value.name} (allowed: a client address inside a segment /64)`,
    });
  else if (!seg6 && !behind(f.ipv6) && !maybeElsewhere(s, f.ipv6))
    out.push({
      path: at("ipv6"),
      message: `${f.ipv6} is not a host in any segment's IPv6 prefix or behind an inside route (allowed: a client address inside a segment /64, or in a prefix routed to the inside)`,
    });
}

/**
 * A forward's sources: public ones reach it from the WANs (unless the XDP guard drops them as bogons); inside
 * ones (a segment's or an inside route's prefix) reach it only through the hairpin.
 */
function checkForwardSources(
  s: PartialSite,
  f: NonNullable<PartialSite["portForwards"]>[number],
  at: (...p: (string | number)[]) => string,
  out: Issues,
): void {
  const inside = [
    ...(s.segments ?? []).flatMap((x) => [x.value.ipv4?.cidr, x.value.ipv6?.prefix].filter((p): p is string => !!p)),
    ...insideRoutes(s).map((r) => r.route.destination),
  ];
  const dp = s.dataplane;
  for (const [j, src] of (f.sources ?? []).entries()) {
    const fam = familyOf(src);
    if (inside.some((p) => overlaps(p, src))) {
      if (!f.hairpin)
        out.push({
          path: at("sources", j),
          message: `${src} is inside the site, and inside clients use a forward only through the hairpin, which is off (allowed: hairpin: true, or sources on the internet)`,
        });
      continue;
    }
    // The XDP guard drops bogon sources on the WANs before NAT, unless the allowlist names them.
    if (!dp?.enabled || !(fam === 4 ? dp.bogons.ipv4 : dp.bogons.ipv6)) continue;
    const bogon = (fam === 4 ? DEFAULT_BOGONS4 : DEFAULT_BOGONS6).find((b) => overlaps(b, src));
    const allowed = dp.allowlist.some(
      (a) => familyOf(a) === fam && contains(a, nthAddress(src, 0)) && contains(a, nthAddress(src, -1)),
    );
    if (bogon && !allowed)
      out.push({
        path: at("sources", j),
        message: `${src} lies in the bogon range ${bogon}, which the XDP guard drops on every WAN before any forward (allowed: public sources, inside prefixes for the hairpin, or add them to router:dataplane.allowlist)`,
      });
  }
}

export function checkPortForwards(s: PartialSite, out: Issues): void {
  if (!s.portForwards) return;
  const wanLinks = (s.links ?? []).filter((l) => l.value.role === "wan").map((l) => l.value);
  const wans = wanLinks.map((l) => l.name);
  const droppedLinks = new Set(droppedElements(s, "links").map((l) => l.name));
  const names = new Map<string, number>();
  const claims: { i: number; wans: string[]; protos: string[]; range: [number, number] }[] = [];
  for (const { index: i, value: f } of indexed(s.portForwards)) {
    const at = (...p: (string | number)[]) => configPath("portForwards", [i, ...p]);
    if (names.has(f.name))
      out.push({
        path: at("name"),
        message: `duplicate port forward "${f.name}" (also at portForwards[${names.get(f.name)}]; allowed: each name once)`,
      });
    else names.set(f.name, i);
    checkForwardTargets(s, f, at, out);
    checkForwardSources(s, f, at, out);
    (f.wans ?? []).forEach((w, j) => {
      // A link that failed to parse may be that WAN.
      if (!wans.includes(w) && !droppedLinks.has(w))
        out.push({
          path: at("wans", j),
          message: `"${w}" is not a WAN link (allowed: ${wans.join(", ") || "a link with role: wan"})`,
        });
    });
    if (f.ipv6 !== undefined && contains("fc00::/7", f.ipv6)) {
      const targets = (f.wans ?? wans).map((w) => wanLinks.find((l) => l.name === w));
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
  }
}

/** Prefixes a static route must not cover: the cluster's networks and the static WAN subnets. */
function notRoutable(s: PartialSite): { cidr: string; what: string }[] {
  return [
    ...(s.cluster?.podCidrs ?? []).map((c) => ({ cidr: c, what: "the pod network" })),
    ...(s.cluster?.serviceCidrs ?? []).map((c) => ({ cidr: c, what: "the service network" })),
    ...(s.links ?? []).flatMap((l) =>
      (["ipv4", "ipv6"] as const).flatMap((fam) => {
        const v = l.value[fam];
        return v?.mode === "static" ? [{ cidr: v.address, what: `WAN ${l.value.name}'s subnet` }] : [];
      }),
    ),
  ];
}

/** True when a static WAN subnet holds `address`. */
function onStaticWan(s: PartialSite, address: string): boolean {
  return (s.links ?? []).some((l) => {
    const v = familyOf(address) === 4 ? l.value.ipv4 : l.value.ipv6;
    return v?.mode === "static" && contains(v.address, address);
  });
}

/** The router's own addresses on its segments (their gateways). */
function ownSegmentAddresses(s: PartialSite): Set<string> {
  return new Set(
    (s.segments ?? [])
      .flatMap((x) => [segmentGateway4(x.value), segmentGateway6(x.value)])
      .filter((a): a is string => !!a),
  );
}

export function checkRoutes(s: PartialSite, out: Issues): void {
  if (!s.routes) return;
  const onWan = (gw: string) => onStaticWan(s, gw);
  const own = ownSegmentAddresses(s);
  const wansWhole = !isIncomplete(s, "links");
  for (const { index: i, value: r } of indexed(s.routes)) {
    const at = (f: string) => configPath("routes", [i, f]);
    if (own.has(r.gateway))
      out.push({
        path: at("gateway"),
        message: `${r.gateway} is the router's own address; the kernel refuses a local next hop (allowed: another router on the segment)`,
      });
    for (const n of notRoutable(s))
      if (familyOf(n.cidr) === familyOf(r.destination) && overlaps(n.cidr, r.destination))
        out.push({
          path: at("destination"),
          message: `${r.destination} overlaps ${n.what} (${n.cidr}) (allowed: a prefix the router does not own)`,
        });
    if (!segmentOf(s, r.gateway) && !onWan(r.gateway) && wansWhole && !maybeElsewhere(s, r.gateway))
      out.push({
        path: at("gateway"),
        message: `${r.gateway} is not on any segment or static WAN subnet, so the route could not be installed (allowed: a next hop inside a segment or a static WAN subnet)`,
      });
    for (const seg of s.segments ?? []) {
      const mine = familyOf(r.destination) === 4 ? seg.value.ipv4?.cidr : seg.value.ipv6?.prefix;
      if (mine && overlaps(mine, r.destination))
        out.push({
          path: at("destination"),
          message: `${r.destination} overlaps segment ${seg.value.name} (${mine}), which is directly connected (allowed: a remote prefix)`,
        });
    }
  }
}

export function checkRouting(s: PartialSite, out: Issues): void {
  checkOspfAuthentication(s, out);
  if (!s.routing) return;
  const names = knownNames(s, "segments");
  const listed = (s.segments ?? []).map((x) => x.value.name).join(", ");
  const unknown = (path: (string | number)[], n: string) => {
    if (names && !names.has(n))
      out.push({ path: configPath("routing", path), message: `unknown segment "${n}" (allowed: ${listed})` });
  };
  s.routing.bgp?.advertise.forEach((n, i) => unknown(["bgp", "advertise", i], n));
  checkBgpNeighbours(s, out);
  const ospf = s.routing.ospf;
  if (!ospf) return;
  for (const field of ["segments", "passive"] as const)
    ospf[field].forEach((n, i) => {
      unknown(["ospf", field, i], n);
      if (s.segments?.some((x) => x.value.name === n && !x.value.ipv4))
        out.push({
          path: configPath("routing", ["ospf", field, i]),
          message: `segment "${n}" is IPv6-only, and OSPFv2 speaks IPv4 (allowed: a segment with an IPv4 subnet)`,
        });
    });
  ospf.passive.forEach((n, i) => {
    if (ospf.segments.includes(n))
      out.push({
        path: configPath("routing", ["ospf", "passive", i]),
        message: `"${n}" is also an active OSPF segment (allowed: a segment listed in segments or in passive, not both)`,
      });
  });
  checkRedistribution(s, ospf, out);
}

/**
 * OSPF authentication and its keys go together, and each key fits its algorithm: keyed MD5 carries at most 16
 * characters of it, and an HMAC key shorter than 16 can be guessed offline from one captured packet. The next key
 * (authentication.next with router:ospfNextKey) goes the same way, under another key id. Only the keys' lengths
 * are known here, never their values.
 */
function checkOspfAuthentication(s: PartialSite, out: Issues): void {
  const auth = s.routing?.ospf?.authentication;
  const keyLength = s.secretLengths.get("ospfKey");
  const nextLength = s.secretLengths.get("ospfNextKey");
  if (!auth) {
    if (!isIncomplete(s, "routing"))
      for (const [key, length] of [
        ["ospfKey", keyLength],
        ["ospfNextKey", nextLength],
      ] as const)
        if (length !== undefined)
          out.push({
            path: configPath(key),
            message:
              "is set but router:routing.ospf.authentication is not, so nothing uses it (allowed: remove it, or set routing.ospf.authentication)",
          });
    return;
  }
  const authPath = (...rest: string[]) => configPath("routing", ["ospf", "authentication", ...rest]);
  if (keyLength === undefined)
    out.push({
      path: authPath(),
      message:
        "is set but the secret router:ospfKey is not (allowed: set the neighbours' key with `pulumi config set --secret router:ospfKey`, or remove authentication)",
    });
  else checkOspfKeyLength("ospfKey", auth.algorithm, keyLength, authPath("algorithm"), out);
  const next = auth.next;
  if (!next) {
    if (nextLength !== undefined)
      out.push({
        path: configPath("ospfNextKey"),
        message:
          "is set but router:routing.ospf.authentication.next is not, so nothing uses it (allowed: remove it, or set authentication.next with the key's id)",
      });
    return;
  }
  if (next.keyId === auth.keyId)
    out.push({
      path: authPath("next", "keyId"),
      message: `is ${next.keyId}, the current key's id: a neighbour could not tell the keys apart (allowed: a key id from 1 to 255 other than ${auth.keyId})`,
    });
  if (nextLength === undefined)
    out.push({
      path: authPath("next"),
      message:
        "is set but the secret router:ospfNextKey is not (allowed: set the next key with `pulumi config set --secret router:ospfNextKey`, or remove next)",
    });
  else
    checkOspfKeyLength(
      "ospfNextKey",
      next.algorithm ?? auth.algorithm,
      nextLength,
      authPath(...(next.algorithm ? ["next", "algorithm"] : ["algorithm"])),
      out,
    );
}

function checkOspfKeyLength(
  key: "ospfKey" | "ospfNextKey",
  algorithm: string,
  length: number,
  algorithmPath: string,
  out: Issues,
): void {
  if (algorithm === "keyed-md5" && length > OSPF_MD5_KEY_MAX)
    out.push({
      path: configPath(key),
      message: `is longer than ${OSPF_MD5_KEY_MAX} characters, the most keyed MD5 carries (allowed: a key of at most ${OSPF_MD5_KEY_MAX} characters, or an hmac-sha algorithm in ${algorithmPath.replace(/^router:/, "")})`,
    });
  if (algorithm !== "keyed-md5" && length < OSPF_HMAC_KEY_MIN)
    out.push({
      path: configPath(key),
      message: `is shorter than ${OSPF_HMAC_KEY_MIN} characters, guessable offline from one captured OSPF packet (allowed: a key of ${OSPF_HMAC_KEY_MIN} to 80 characters)`,
    });
}

/**
 * BGP neighbours the router can reach: each listed once, none of them the router itself, and an eBGP neighbour on
 * a link of the router — Talos' BGP has no multihop (BGPNeighborConfig: address, link, peerASN, localASN, passive,
 * holdTime, bfd), so its eBGP sessions leave with TTL 1 and one behind another router never comes up. iBGP
 * (the site's own AS) may be further away. A WAN whose subnet is not known offline (DHCP, SLAAC, DHCPv6) may hold
 * the neighbour, and so may a segment or link that failed to parse.
 */
function checkBgpNeighbours(s: PartialSite, out: Issues): void {
  const bgp = s.routing?.bgp;
  if (!bgp) return;
  const own = ownSegmentAddresses(s);
  // a WAN that learns its subnet (DHCP, SLAAC, DHCPv6; one that does not say) may hold the neighbour
  const dynamicWan = (address: string) =>
    (s.links ?? []).some((l) => {
      if (l.value.role !== "wan") return false;
      const v = familyOf(address) === 4 ? l.value.ipv4 : l.value.ipv6;
      return v === undefined || (v.mode !== "static" && v.mode !== "none");
    });
  const unknownLinks = isIncomplete(s, "links") || isIncomplete(s, "segments");
  const seen = new Map<string, number>();
  bgp.neighbors.forEach((n, i) => {
    const at = configPath("routing", ["bgp", "neighbors", i, "address"]);
    const first = seen.get(n.address);
    if (first !== undefined)
      out.push({
        path: at,
        message: `${n.address} is already neighbors[${first}] (allowed: each neighbour once)`,
      });
    else seen.set(n.address, i);
    if (
      own.has(n.address) ||
      (s.links ?? []).some((l) =>
        [l.value.ipv4, l.value.ipv6].some((v) => v?.mode === "static" && v.address.split("/")[0] === n.address),
      )
    )
      out.push({
        path: at,
        message: `${n.address} is the router's own address (allowed: another router's address)`,
      });
    else if (n.asn !== bgp.asn && !segmentOf(s, n.address)) {
      // behind another router on a segment: certainly not on a link of this one, whatever the WANs learn
      const inside = insideRoutes(s).find(
        ({ route: r }) => familyOf(r.destination) === familyOf(n.address) && contains(r.destination, n.address),
      );
      const behind = inside && indexed(s.routes!).find((x) => x.value === inside.route);
      const multihop = "and Talos' BGP has no multihop, so an eBGP session to it never comes up";
      if (behind)
        out.push({
          path: at,
          message: `${n.address} is reached through router:routes[${behind.index}] (via ${behind.value.gateway}), not on a link of the router, ${multihop} (allowed: a neighbour on a segment or a WAN subnet, e.g. that router's address on its segment)`,
        });
      else if (!onStaticWan(s, n.address) && !dynamicWan(n.address) && !unknownLinks && !maybeElsewhere(s, n.address))
        out.push({
          path: at,
          message: `${n.address} is not on any segment or static WAN subnet, ${multihop} (allowed: a neighbour on a link of the router)`,
        });
    }
  });
}

/** A redistribution that would advertise nothing is a mistake the operator wants to hear about. */
function checkRedistribution(
  s: PartialSite,
  ospf: NonNullable<NonNullable<PartialSite["routing"]>["ospf"]>,
  out: Issues,
): void {
  ospf.redistribute.forEach((r, i) => {
    const at = configPath("routing", ["ospf", "redistribute", i]);
    if (
      r === "static" &&
      s.routes &&
      !isIncomplete(s, "routes") &&
      !s.routes.some((x) => familyOf(x.destination) === 4)
    )
      out.push({
        path: at,
        message:
          "static would advertise nothing: router:routes has no IPv4 route, and OSPFv2 carries IPv4 only (allowed: add the routes to router:routes, or leave static out)",
      });
    const others = (s.segments ?? []).filter(
      (x) => !ospf.segments.includes(x.value.name) && !ospf.passive.includes(x.value.name),
    );
    if (r === "connected" && s.segments && !isIncomplete(s, "segments") && !others.some((x) => x.value.ipv4))
      out.push({
        path: at,
        message:
          "connected would advertise nothing: every segment with an IPv4 subnet already speaks OSPF or is passive (allowed: leave connected out)",
      });
  });
}
