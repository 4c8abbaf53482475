/**
 * Cross-field rules of the site model: what zod cannot see from one field alone. Each rule takes the parts of
 * the site that parsed (a key that failed to parse is absent, and rules needing it stay silent, since its own
 * problems are already reported) and returns issues with config key paths.
 */
import { WanProbe, type Link, type Segment, type Site, type Zone } from "./schema";
import { configPath, type SiteIssue } from "./issues";
import { contains, familyOf, nthAddress, overlaps, parsePrefix, toBigInt } from "./ip";
import { durationSeconds } from "./duration";
import { validatePolicy } from "./validate-policy";
import { validateDns } from "./validate-dns";
import { validateObservability } from "./validate-observability";
import { validateIds } from "./validate-ids";
import { defaultDhcpRange, segmentGateway4, segmentGateway6, segmentParent, vlanLinkName, wanZone } from "./plan";

/** What parsed: every key optional; arrays hold the elements that parsed, with their original index. */
export interface PartialSite {
  site?: Site["site"];
  node?: Site["node"];
  talos?: Site["talos"];
  links?: Indexed<Link>[];
  segments?: Indexed<Segment>[];
  zones?: Indexed<Zone>[];
  cluster?: Site["cluster"];
  cilium?: Site["cilium"];
  dns?: Site["dns"];
  ntp?: Site["ntp"];
  registry?: Site["registry"];
  dataplane?: Site["dataplane"];
  firewall?: Site["firewall"];
  portForwards?: Site["portForwards"];
  routes?: Site["routes"];
  routing?: Site["routing"];
  mdns?: Site["mdns"];
  observability?: Site["observability"];
  ids?: Site["ids"];
  /** Keys whose lists had elements that failed to parse: references into them are not checked. */
  incomplete: Set<string>;
  /** Secret keys that are set (values are never seen here). */
  secretsSet: Set<string>;
}

export interface Indexed<T> {
  index: number;
  value: T;
}

type Issues = SiteIssue[];

function dupes<T>(items: Indexed<T>[], key: (t: T) => string | undefined): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  for (const { index, value } of items) {
    const k = key(value);
    if (k === undefined) continue;
    seen.set(k, [...(seen.get(k) ?? []), index]);
  }
  return new Map([...seen].filter(([, v]) => v.length > 1));
}

function checkNics(s: PartialSite, out: Issues): void {
  if (!s.node) return;
  const nics = s.node.nics.map((value, index) => ({ index, value }));
  for (const [alias, idx] of dupes(nics, (n) => n.alias))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("node", ["nics", i, "alias"]),
        message: `duplicate NIC alias "${alias}" (also at nics[${idx[0]}]; allowed: each alias once)`,
      });
  for (const [mac, idx] of dupes(nics, (n) => n.mac))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("node", ["nics", i, "mac"]),
        message: `duplicate MAC ${mac} (also at nics[${idx[0]}]; allowed: each NIC once)`,
      });
}

function checkLinks(s: PartialSite, out: Issues): void {
  if (!s.links) return;
  const links = s.links;
  const aliases = new Set(s.node?.nics.map((n) => n.alias) ?? []);
  for (const [name, idx] of dupes(links, (l) => l.name))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("links", [i, "name"]),
        message: `duplicate link "${name}" (also at links[${idx[0]}]; allowed: each link once)`,
      });
  const members = new Map<string, number>();
  for (const { index, value: l } of links) {
    if (l.bond) {
      if (aliases.has(l.name))
        out.push({
          path: configPath("links", [index, "name"]),
          message: `bond "${l.name}" has the name of a NIC alias (allowed: a new name, e.g. bond0)`,
        });
      l.bond.members.forEach((m, mi) => {
        if (s.node && !aliases.has(m))
          out.push({
            path: configPath("links", [index, "bond", "members", mi]),
            message: `"${m}" is not a NIC alias (allowed: ${[...aliases].join(", ") || "aliases from router:node.nics"})`,
          });
        if (members.has(m))
          out.push({
            path: configPath("links", [index, "bond", "members", mi]),
            message: `"${m}" is already a member of links[${members.get(m)}] (allowed: a NIC in one bond only)`,
          });
        members.set(m, index);
      });
    } else if (s.node && !aliases.has(l.name)) {
      out.push({
        path: configPath("links", [index, "name"]),
        message: `"${l.name}" is neither a NIC alias nor a bond (allowed: ${
          [...aliases].join(", ") || "an alias from router:node.nics"
        }, or add a bond section)`,
      });
    }
    if (l.role === "trunk") {
      for (const f of ["ipv4", "ipv6", "priority", "zone"] as const)
        if (l[f] !== undefined)
          out.push({
            path: configPath("links", [index, f]),
            message: `a trunk carries only VLANs (allowed: ${f} on WAN links; give the segment the addresses)`,
          });
    } else {
      if (l.ipv4?.mode === "none" && l.ipv6?.mode === "none")
        out.push({
          path: configPath("links", [index]),
          message: "WAN link has neither IPv4 nor IPv6 (allowed: at least one family not 'none')",
        });
      if (l.ipv4?.mode === "static" && l.ipv4.gateway === l.ipv4.address.split("/")[0])
        out.push({
          path: configPath("links", [index, "ipv4", "gateway"]),
          message: `${l.ipv4.gateway} is the router's own address on this WAN, so the default route would point at itself (allowed: the upstream router's address)`,
        });
      if (l.ipv6?.mode === "static" && l.ipv6.gateway === l.ipv6.address.split("/")[0])
        out.push({
          path: configPath("links", [index, "ipv6", "gateway"]),
          message: `${l.ipv6.gateway} is the router's own address on this WAN, so the default route would point at itself (allowed: the upstream router's address)`,
        });
      if (l.ipv4?.mode === "static" && !contains(l.ipv4.address, l.ipv4.gateway))
        out.push({
          path: configPath("links", [index, "ipv4", "gateway"]),
          message: `${l.ipv4.gateway} is outside ${l.ipv4.address} (allowed: a gateway on the WAN subnet)`,
        });
      if (l.ipv6?.mode === "static" && !contains(l.ipv6.address, l.ipv6.gateway) && !l.ipv6.gateway.startsWith("fe80:"))
        out.push({
          path: configPath("links", [index, "ipv6", "gateway"]),
          message: `${l.ipv6.gateway} is outside ${l.ipv6.address} (allowed: a gateway on the WAN prefix, or link-local fe80::/10)`,
        });
    }
  }
  for (const { index, value: l } of links)
    if (members.has(l.name) && !l.bond)
      out.push({
        path: configPath("links", [index, "name"]),
        message: `"${l.name}" is a member of bond links[${members.get(l.name)}] (allowed: use the bond, not its member)`,
      });
  const wans = links.filter((l) => l.value.role === "wan");
  if (wans.length === 0 && !s.incomplete.has("links"))
    out.push({
      path: configPath("links"),
      message: "no WAN link (allowed: at least one link with role: wan)",
    });
  for (const [prio, idx] of dupes(wans, (l) => (l.priority === undefined ? undefined : String(l.priority))))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("links", [i, "priority"]),
        message: `WAN priority ${prio} is also used by links[${idx[0]}], so both default routes would get the same metric (allowed: a distinct priority per WAN)`,
      });
}

function checkZones(s: PartialSite, out: Issues): void {
  if (!s.zones) return;
  for (const [name, idx] of dupes(s.zones, (z) => z.name))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("zones", [i, "name"]),
        message: `duplicate zone "${name}" (also at zones[${idx[0]}]; allowed: each zone once)`,
      });
  if (!s.zones.some((z) => z.value.management) && !s.incomplete.has("zones"))
    out.push({
      path: configPath("zones"),
      message: "no management zone (allowed: at least one zone with management: true, or the router is unmanageable)",
    });
}

function zoneNames(s: PartialSite): string {
  return (s.zones ?? []).map((z) => z.value.name).join(", ");
}

function checkWanZones(s: PartialSite, out: Issues): void {
  if (!s.links || !s.zones || s.incomplete.has("zones")) return;
  for (const { index, value: l } of s.links) {
    if (l.role !== "wan") continue;
    const zone = s.zones.find((z) => z.value.name === wanZone(l));
    if (!zone)
      out.push({
        path: configPath("links", [index, "zone"]),
        message: `unknown zone "${wanZone(l)}" (allowed: ${zoneNames(s)})`,
      });
    else if (zone.value.management)
      out.push({
        path: configPath("links", [index, "zone"]),
        message: `WAN link in management zone "${zone.value.name}" would expose the router's management to the internet (allowed: a non-management zone)`,
      });
  }
}

function checkSegment(s: PartialSite, seg: Indexed<Segment>, out: Issues): void {
  const { index, value } = seg;
  const at = (...p: (string | number)[]) => configPath("segments", [index, ...p]);
  const links = s.links?.map((l) => l.value);
  if (links && !s.incomplete.has("links")) {
    const trunks = links.filter((l) => l.role === "trunk");
    if (value.link !== undefined) {
      const target = links.find((l) => l.name === value.link);
      if (!target)
        out.push({
          path: at("link"),
          message: `unknown link "${value.link}" (allowed: ${trunks.map((t) => t.name).join(", ") || "a link with role: trunk"})`,
        });
      else if (target.role !== "trunk")
        out.push({
          path: at("link"),
          message: `"${value.link}" is a WAN link (allowed: a trunk: ${trunks.map((t) => t.name).join(", ") || "none defined"})`,
        });
    } else if (trunks.length !== 1) {
      out.push({
        path: at("link"),
        message:
          trunks.length === 0
            ? "no trunk link carries this segment (allowed: add a link with role: trunk)"
            : `several trunks exist (allowed: name one of ${trunks.map((t) => t.name).join(", ")})`,
      });
    }
    const parent = segmentParent({ links }, value);
    const parentLink = links.find((l) => l.name === parent);
    const parentMtu = parentLink?.mtu ?? 1500;
    if (value.mtu !== undefined && parentLink && value.mtu > parentMtu)
      out.push({
        path: at("mtu"),
        message: `${value.mtu} is above the MTU of its trunk ${parent} (${parentMtu}${parentLink.mtu === undefined ? ", the default" : ""}); the kernel refuses a VLAN larger than its parent link (allowed: ≤ ${parentMtu}, or raise the trunk's mtu)`,
      });
    if (parent) {
      const name = vlanLinkName(parent, value.vlan);
      if (name.length > 15)
        out.push({
          path: at("vlan"),
          message: `the VLAN link name "${name}" is longer than 15 characters (allowed: a shorter trunk name or VLAN id)`,
        });
    }
  }
  if (s.zones && !s.incomplete.has("zones")) {
    const zone = s.zones.find((z) => z.value.name === value.zone);
    if (!zone) out.push({ path: at("zone"), message: `unknown zone "${value.zone}" (allowed: ${zoneNames(s)})` });
    else if (s.links?.some((l) => l.value.role === "wan" && wanZone(l.value) === value.zone))
      out.push({
        path: at("zone"),
        message: `"${value.zone}" is the zone of a WAN link (allowed: a LAN zone; a segment in the WAN zone would be treated as internet)`,
      });
  }

  const cidr = value.ipv4.cidr;
  const network = nthAddress(cidr, 0);
  const broadcast = nthAddress(cidr, -1);
  const gw4 = segmentGateway4(value);
  const usable = (a: string) => contains(cidr, a) && a !== network && a !== broadcast;
  if (value.ipv4.gateway !== undefined && !usable(gw4))
    out.push({
      path: at("ipv4", "gateway"),
      message: `${gw4} is not a host address of ${cidr} (allowed: ${nthAddress(cidr, 1)}–${nthAddress(cidr, -2)})`,
    });
  const gw6 = segmentGateway6(value);
  if (value.ipv6?.gateway !== undefined && gw6) {
    if (!contains(value.ipv6.prefix, gw6) || gw6 === nthAddress(value.ipv6.prefix, 0))
      out.push({
        path: at("ipv6", "gateway"),
        message: `${gw6} is not a host address of ${value.ipv6.prefix} (allowed: an address inside the prefix other than the subnet-router anycast ${nthAddress(value.ipv6.prefix, 0)})`,
      });
  }

  const dhcp = value.dhcp;
  const range = dhcp.range ?? defaultDhcpRange(cidr);
  const rangeOk = usable(range.start) && usable(range.end) && toBigInt(range.start) <= toBigInt(range.end);
  if (dhcp.range) {
    for (const end of ["start", "end"] as const)
      if (!usable(dhcp.range[end]))
        out.push({
          path: at("dhcp", "range", end),
          message: `${dhcp.range[end]} is not a host address of ${cidr} (allowed: ${nthAddress(cidr, 1)}–${nthAddress(cidr, -2)})`,
        });
    if (toBigInt(dhcp.range.start) > toBigInt(dhcp.range.end))
      out.push({
        path: at("dhcp", "range"),
        message: `start ${dhcp.range.start} is after end ${dhcp.range.end} (allowed: start ≤ end)`,
      });
  }
  const inRange = (a: string) =>
    dhcp.enabled && toBigInt(a) >= toBigInt(range.start) && toBigInt(a) <= toBigInt(range.end);
  if (rangeOk && inRange(gw4))
    out.push({
      path: at(dhcp.range ? "dhcp" : "ipv4", dhcp.range ? "range" : "gateway"),
      message: `the DHCP range ${range.start}–${range.end} contains the gateway ${gw4} (allowed: a range that excludes the router's address)`,
    });

  const res = dhcp.reservations.map((r, i) => ({ index: i, value: r }));
  for (const [mac, idx] of dupes(res, (r) => r.mac))
    for (const i of idx.slice(1))
      out.push({
        path: at("dhcp", "reservations", i, "mac"),
        message: `duplicate MAC ${mac} (also at reservations[${idx[0]}]; allowed: one reservation per client)`,
      });
  for (const [ip, idx] of dupes(res, (r) => r.ipv4))
    for (const i of idx.slice(1))
      out.push({
        path: at("dhcp", "reservations", i, "ipv4"),
        message: `duplicate address ${ip} (also at reservations[${idx[0]}]; allowed: one client per address)`,
      });
  for (const [ip, idx] of dupes(res, (r) => r.ipv6))
    for (const i of idx.slice(1))
      out.push({
        path: at("dhcp", "reservations", i, "ipv6"),
        message: `duplicate address ${ip} (also at reservations[${idx[0]}]; allowed: one client per address)`,
      });
  for (const [name, idx] of dupes(res, (r) => r.name))
    for (const i of idx.slice(1))
      out.push({
        path: at("dhcp", "reservations", i, "name"),
        message: `duplicate host name "${name}" (also at reservations[${idx[0]}]; allowed: unique names per segment)`,
      });
  for (const { index: ri, value: r } of res) {
    if (r.ipv4 !== undefined) {
      if (!usable(r.ipv4))
        out.push({
          path: at("dhcp", "reservations", ri, "ipv4"),
          message: `${r.ipv4} is outside ${cidr} or not a host address (allowed: ${nthAddress(cidr, 1)}–${nthAddress(cidr, -2)})`,
        });
      else if (r.ipv4 === gw4)
        out.push({
          path: at("dhcp", "reservations", ri, "ipv4"),
          message: `${r.ipv4} is the router's own address (allowed: any other host address of ${cidr})`,
        });
      else if (rangeOk && inRange(r.ipv4))
        out.push({
          path: at("dhcp", "reservations", ri, "ipv4"),
          message: `${r.ipv4} lies inside the dynamic range ${range.start}–${range.end} (allowed: an address outside the range, so it cannot be leased to another client)`,
        });
    }
    if (r.ipv6 !== undefined) {
      if (value.ipv6 && !value.dhcpv6.enabled)
        out.push({
          path: at("dhcp", "reservations", ri, "ipv6"),
          message:
            "nothing would hand this address out: the segment has no DHCPv6 (allowed: set dhcpv6.enabled, or drop the IPv6 address)",
        });
      if (!value.ipv6)
        out.push({
          path: at("dhcp", "reservations", ri, "ipv6"),
          message: "the segment has no IPv6 prefix (allowed: add ipv6.prefix to the segment, or drop this address)",
        });
      else if (!contains(value.ipv6.prefix, r.ipv6) || r.ipv6 === gw6)
        out.push({
          path: at("dhcp", "reservations", ri, "ipv6"),
          message: `${r.ipv6} is outside ${value.ipv6.prefix} or is the router's address (allowed: another address in the prefix)`,
        });
    }
  }
}

function checkSegments(s: PartialSite, out: Issues): void {
  if (!s.segments) return;
  for (const [name, idx] of dupes(s.segments, (x) => x.name))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("segments", [i, "name"]),
        message: `duplicate segment name "${name}" (also at segments[${idx[0]}]; allowed: each name once)`,
      });
  const links = s.links?.map((l) => l.value) ?? [];
  for (const [key, idx] of dupes(s.segments, (x) => `${segmentParent({ links }, x) ?? x.link ?? "?"}/${x.vlan}`))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("segments", [i, "vlan"]),
        message: `duplicate VLAN id ${key.split("/")[1]} on ${key.split("/")[0]} (also at segments[${idx[0]}]; allowed: each VLAN id once per trunk)`,
      });
  for (const seg of s.segments) checkSegment(s, seg, out);
  if (s.segments.length === 0 && !s.incomplete.has("segments"))
    out.push({
      path: configPath("segments"),
      message: "no segments (allowed: at least one, carrying the management zone)",
    });
}

interface Claim {
  cidr: string;
  path: string;
  what: string;
}

/** Every prefix the router claims: segments, static WAN subnets, pod and service ranges. */
function claims(s: PartialSite): Claim[] {
  const out: Claim[] = [];
  for (const { index, value } of s.segments ?? []) {
    out.push({
      cidr: value.ipv4.cidr,
      path: configPath("segments", [index, "ipv4", "cidr"]),
      what: `segment ${value.name}`,
    });
    if (value.ipv6)
      out.push({
        cidr: value.ipv6.prefix,
        path: configPath("segments", [index, "ipv6", "prefix"]),
        what: `segment ${value.name}`,
      });
  }
  for (const { index, value } of s.links ?? []) {
    if (value.ipv4?.mode === "static")
      out.push({
        cidr: value.ipv4.address,
        path: configPath("links", [index, "ipv4", "address"]),
        what: `WAN ${value.name}`,
      });
    if (value.ipv6?.mode === "static")
      out.push({
        cidr: value.ipv6.address,
        path: configPath("links", [index, "ipv6", "address"]),
        what: `WAN ${value.name}`,
      });
  }
  s.cluster?.podCidrs.forEach((c, i) =>
    out.push({ cidr: c, path: configPath("cluster", ["podCidrs", i]), what: "the pod network" }),
  );
  s.cluster?.serviceCidrs.forEach((c, i) =>
    out.push({ cidr: c, path: configPath("cluster", ["serviceCidrs", i]), what: "the service network" }),
  );
  return out;
}

function checkOverlaps(s: PartialSite, out: Issues): void {
  const all = claims(s);
  for (let i = 0; i < all.length; i++)
    for (let j = 0; j < i; j++)
      if (overlaps(all[i].cidr, all[j].cidr))
        out.push({
          path: all[i].path,
          message: `${all[i].cidr} overlaps ${all[j].cidr} of ${all[j].what} at ${all[j].path} (allowed: a prefix no other network uses)`,
        });
}

function checkCluster(s: PartialSite, out: Issues): void {
  if (!s.cluster) return;
  for (const key of ["podCidrs", "serviceCidrs"] as const) {
    const fams = s.cluster[key].map((c) => familyOf(c));
    if (fams.length === 2 && fams[0] === fams[1])
      out.push({
        path: configPath("cluster", [key]),
        message: `two IPv${fams[0]} prefixes (allowed: one IPv4 and optionally one IPv6)`,
      });
  }
  const pf = new Set(s.cluster.podCidrs.map(familyOf));
  const sf = new Set(s.cluster.serviceCidrs.map(familyOf));
  if ([...pf].sort().join() !== [...sf].sort().join())
    out.push({
      path: configPath("cluster", ["serviceCidrs"]),
      message: "address families differ from podCidrs (allowed: the same families for pods and services)",
    });
}

function checkManagement(s: PartialSite, out: Issues): void {
  if (!s.node || !s.segments || !s.zones || s.incomplete.has("segments") || s.incomplete.has("zones")) return;
  const mgmtZones = new Set(s.zones.filter((z) => z.value.management).map((z) => z.value.name));
  if (mgmtZones.size === 0) return; // reported by checkZones
  const mgmtSegs = s.segments.filter((x) => mgmtZones.has(x.value.zone));
  if (mgmtSegs.length === 0) {
    out.push({
      path: configPath("segments"),
      message: `no segment is in a management zone (${[...mgmtZones].join(", ")}), so nothing could reach the router (allowed: at least one management segment)`,
    });
    return;
  }
  const addrs = mgmtSegs
    .flatMap((x) => [segmentGateway4(x.value), segmentGateway6(x.value)])
    .filter((a): a is string => !!a);
  if (!addrs.includes(s.node.managementAddress))
    out.push({
      path: configPath("node", ["managementAddress"]),
      message: `${s.node.managementAddress} is not the router's address on a management segment (allowed: ${addrs.join(", ")})`,
    });
}

function checkTimeouts(s: PartialSite, out: Issues): void {
  if (!s.node) return;
  const tryS = durationSeconds(s.node.tryTimeout);
  if (tryS < 30 || tryS > 3600)
    out.push({
      path: configPath("node", ["tryTimeout"]),
      message: `${s.node.tryTimeout} (allowed: 30s to 1h; the health checks must finish inside the try window)`,
    });
  const health = durationSeconds(s.node.healthTimeout);
  if (health < 60 || health > 7200)
    out.push({
      path: configPath("node", ["healthTimeout"]),
      message: `${s.node.healthTimeout} (allowed: 1m to 2h)`,
    });
}

function checkDataplane(s: PartialSite, out: Issues): void {
  const dp = s.dataplane;
  if (!dp) return;
  const ext = dp.extension;
  const shipsExtension = ext.build || ext.image !== undefined;
  if (ext.build && ext.image !== undefined)
    out.push({
      path: configPath("dataplane", ["extension", "image"]),
      message: "is set while extension.build is true (allowed: build from ebpf/, or use a prebuilt image — not both)",
    });
  if (dp.enabled && !shipsExtension)
    out.push({
      path: configPath("dataplane", ["enabled"]),
      message:
        "the XDP guard needs the router-dataplane extension (allowed: extension.build: true, an extension.image, or enabled: false)",
    });
  if (dp.blockCountries.length > 0 && !dp.feeds.some((f) => f.kind === "geo"))
    out.push({
      path: configPath("dataplane", ["blockCountries"]),
      message:
        "no feed of kind geo maps addresses to countries (allowed: add a geo feed, or leave blockCountries empty)",
    });
  const feeds = dp.feeds.map((value, index) => ({ index, value }));
  for (const [name, idx] of dupes(feeds, (f) => f.name))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("dataplane", ["feeds", i, "name"]),
        message: `duplicate feed "${name}" (also at feeds[${idx[0]}]; allowed: each name once)`,
      });
}

/** The probe targets of a WAN that names none: the schema's defaults for WanProbe.targets. */
const DEFAULT_PROBE_TARGETS = WanProbe.parse({}).targets;

/** An address the router's own upstream depends on, and where the site names it. */
interface Lifeline {
  address: string;
  what: string;
}

/** Static WAN gateways, WAN probe targets (the defaults when a WAN sets none) and the router's upstream resolvers. */
function lifelines(s: PartialSite): Lifeline[] {
  const out: Lifeline[] = [];
  for (const { index, value: l } of s.links ?? []) {
    if (l.role !== "wan") continue;
    for (const fam of ["ipv4", "ipv6"] as const) {
      const cfg = l[fam];
      if (cfg?.mode === "static")
        out.push({
          address: cfg.gateway,
          what: `the static gateway of WAN ${l.name} (links[${index}].${fam}.gateway)`,
        });
    }
    (l.probe?.targets ?? DEFAULT_PROBE_TARGETS).forEach((t, i) =>
      out.push({ address: t, what: `a probe target of WAN ${l.name} (links[${index}].probe.targets[${i}])` }),
    );
  }
  (s.dns?.upstreams ?? []).forEach((u, i) =>
    out.push({ address: u.address, what: `an upstream resolver of the router (dns.upstreams[${i}])` }),
  );
  return out;
}

/**
 * The guard's static lists must not cut the router off its upstream (DESIGN.md decision 16 holds the downloaded
 * lists to the same rule): no blocklist entry covers every address or a lifeline, no allowlist entry lets every
 * source past the guard.
 */
function checkGuardLists(s: PartialSite, out: Issues): void {
  const dp = s.dataplane;
  if (!dp) return;
  const everything = (cidr: string) => parsePrefix(cidr).length === 0;
  const lines = lifelines(s);
  dp.blocklist.forEach((cidr, i) => {
    const path = configPath("dataplane", ["blocklist", i]);
    if (everything(cidr)) {
      out.push({
        path,
        message: `${cidr} covers every address: the guard would drop all traffic from the internet (allowed: narrower prefixes)`,
      });
      return;
    }
    for (const l of lines.filter((x) => contains(cidr, x.address)))
      out.push({
        path,
        message: `${cidr} covers ${l.address}, ${l.what}: the router would drop its own upstream (allowed: prefixes that leave out the WAN gateways, probe targets and upstream resolvers)`,
      });
  });
  dp.allowlist.forEach((cidr, i) => {
    if (everything(cidr))
      out.push({
        path: configPath("dataplane", ["allowlist", i]),
        message: `${cidr} lets every source past the guard, which switches off its bogon, blocklist, geo-IP and rate-limit filtering (allowed: narrower prefixes, e.g. the upstream's subnet)`,
      });
  });
}

function checkTalos(s: PartialSite, out: Issues): void {
  if (!s.talos) return;
  const tag = /:(v\d+\.\d+\.\d+)(@|$)/.exec(s.talos.installerImage)?.[1];
  if (tag && tag !== s.talos.version)
    out.push({
      path: configPath("talos", ["installerImage"]),
      message: `tag ${tag} does not match talos.version ${s.talos.version} (allowed: an installer image of the same release)`,
    });
}

function checkRegistry(s: PartialSite, out: Issues): void {
  if (!s.registry && !s.incomplete.has("registry"))
    out.push({
      path: configPath("registry"),
      message:
        "is required (allowed: a registry the operator's machine can push to and the router can pull from — the network-services image and the data-plane extension are published there)",
    });
  const hasPassword = s.secretsSet.has("registryPassword");
  if (s.registry?.username && !hasPassword)
    out.push({
      path: configPath("registryPassword"),
      message: "is not set but router:registry.username is (allowed: `pulumi config set --secret registryPassword …`)",
    });
  if (hasPassword && !s.registry?.username)
    out.push({
      path: configPath("registryPassword"),
      message: "is set but router:registry.username is not (allowed: set both, or neither)",
    });
}

/**
 * The router's clock at boot: with every upstream resolver encrypted, a certificate check needs a correct clock,
 * and NTP servers named only by hostname cannot be resolved before it is — the node would not finish booting
 * (Talos warns of exactly this: pkg/machinery/config/types/network/resolver.go).
 */
function checkBootClock(s: PartialSite, out: Issues): void {
  if (!s.dns || !s.ntp) return;
  const encrypted = s.dns.upstreams.every((u) => u.protocol === "DoT" || u.protocol === "DoH");
  const byAddress = s.ntp.servers.some((n) => familyOf(n) !== undefined);
  if (encrypted && !byAddress)
    out.push({
      path: configPath("ntp", ["servers"]),
      message:
        "names NTP servers only by hostname while every router:dns.upstreams entry is encrypted (DoT/DoH): " +
        "certificates need a correct clock, which NTP cannot set before DNS works, so the router would not finish " +
        "booting (allowed: at least one NTP server by IP address, e.g. 162.159.200.1, or a plain Do53 upstream)",
    });
}

/** Runs every cross-field rule. */
export function validateSite(s: PartialSite): SiteIssue[] {
  const out: SiteIssue[] = [];
  checkNics(s, out);
  checkLinks(s, out);
  checkZones(s, out);
  checkWanZones(s, out);
  checkSegments(s, out);
  checkOverlaps(s, out);
  checkCluster(s, out);
  checkManagement(s, out);
  checkTimeouts(s, out);
  checkDataplane(s, out);
  checkGuardLists(s, out);
  checkTalos(s, out);
  checkRegistry(s, out);
  checkBootClock(s, out);
  out.push(...validatePolicy(s));
  out.push(...validateDns(s));
  out.push(...validateObservability(s));
  out.push(...validateIds(s));
  return out;
}
