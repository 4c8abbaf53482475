/**
 * Cross-field rules of the segments: the trunk and zone each rides on, its addresses (IPv4, IPv6 or both), its
 * DHCP pool and reservations, and the prefixes every network of the router claims. Each rule checks what parsed
 * (partial.ts) and stays silent only where a part that failed to parse could change its answer.
 */
import type { Segment } from "./schema";
import { configPath, type SiteIssue } from "./issues";
import { contains, nthAddress, overlaps, toBigInt } from "./ip";
import { allNames, droppedElements, isIncomplete, knownNames, type Indexed, type PartialSite } from "./partial";
import { indexed } from "./salvage";
import { defaultDhcpRange, segmentGateway4, segmentGateway6, segmentParent, vlanLinkName } from "./plan";
import { zoneSides, type ZoneSides } from "./zones";

type Issues = SiteIssue[];
type At = (...p: (string | number)[]) => string;

/** Keys in a list that occur more than once, with the config indices that carry them. */
export function dupes<T>(items: Indexed<T>[], key: (t: T) => string | undefined): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  for (const { index, value } of items) {
    const k = key(value);
    if (k === undefined) continue;
    seen.set(k, [...(seen.get(k) ?? []), index]);
  }
  return new Map([...seen].filter(([, v]) => v.length > 1));
}

function checkTrunk(s: PartialSite, value: Segment, at: At, out: Issues): void {
  const links = s.links?.map((l) => l.value);
  if (!links) return;
  const trunks = links.filter((l) => l.role === "trunk");
  const linksWhole = !isIncomplete(s, "links");
  if (value.link !== undefined) {
    const target = links.find((l) => l.name === value.link);
    if (!target && !knownNames(s, "links")?.has(value.link))
      out.push({
        path: at("link"),
        message: `unknown link "${value.link}" (allowed: ${trunks.map((t) => t.name).join(", ") || "a link with role: trunk"})`,
      });
    else if (target && target.role !== "trunk")
      out.push({
        path: at("link"),
        message: `"${value.link}" is a WAN link (allowed: a trunk: ${trunks.map((t) => t.name).join(", ") || "none defined"})`,
      });
  } else if (trunks.length !== 1 && linksWhole) {
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
  const name = parent ? vlanLinkName(parent, value.vlan) : "";
  if (name.length > 15)
    out.push({
      path: at("vlan"),
      message: `the VLAN link name "${name}" is longer than 15 characters (allowed: a shorter trunk name or VLAN id)`,
    });
}

function checkZone(s: PartialSite, sides: ZoneSides, value: Segment, at: At, out: Issues): void {
  const names = knownNames(s, "zones");
  if (names && !names.has(value.zone))
    out.push({
      path: at("zone"),
      message: `unknown zone "${value.zone}" (allowed: ${(s.zones ?? []).map((z) => z.value.name).join(", ")})`,
    });
  const blame = sides.mixed.get(value.zone);
  if (blame === "segments" || blame === "both")
    out.push({
      path: at("zone"),
      message: `"${value.zone}" is the zone of a WAN link (allowed: a LAN zone; a segment in the WAN zone would be treated as internet)`,
    });
}

/** The segment's IPv4 gateway and DHCP pool. */
function checkIpv4(value: Segment, at: At, out: Issues): void {
  if (!value.ipv4) return;
  const cidr = value.ipv4.cidr;
  const gw4 = segmentGateway4(value)!;
  const hosts = `${nthAddress(cidr, 1)}–${nthAddress(cidr, -2)}`;
  if (value.ipv4.gateway !== undefined && !isHost4(cidr, gw4))
    out.push({ path: at("ipv4", "gateway"), message: `${gw4} is not a host address of ${cidr} (allowed: ${hosts})` });
  const dhcp = value.dhcp;
  const range = dhcp.range ?? defaultDhcpRange(cidr);
  if (dhcp.range) {
    for (const end of ["start", "end"] as const)
      if (!isHost4(cidr, dhcp.range[end]))
        out.push({
          path: at("dhcp", "range", end),
          message: `${dhcp.range[end]} is not a host address of ${cidr} (allowed: ${hosts})`,
        });
    if (toBigInt(dhcp.range.start) > toBigInt(dhcp.range.end))
      out.push({
        path: at("dhcp", "range"),
        message: `start ${dhcp.range.start} is after end ${dhcp.range.end} (allowed: start ≤ end)`,
      });
  }
  if (poolHolds(value, gw4))
    out.push({
      path: at(dhcp.range ? "dhcp" : "ipv4", dhcp.range ? "range" : "gateway"),
      message: `the DHCP range ${range.start}–${range.end} contains the gateway ${gw4} (allowed: a range that excludes the router's address)`,
    });
}

/** True when `a` is a host address of an IPv4 subnet (not its network or broadcast address). */
function isHost4(cidr: string, a: string): boolean {
  return contains(cidr, a) && a !== nthAddress(cidr, 0) && a !== nthAddress(cidr, -1);
}

/** True when the segment's dynamic IPv4 pool (a sane one) holds `a`. */
function poolHolds(value: Segment, a: string): boolean {
  if (!value.ipv4 || !value.dhcp.enabled) return false;
  const cidr = value.ipv4.cidr;
  const r = value.dhcp.range ?? defaultDhcpRange(cidr);
  const sane = isHost4(cidr, r.start) && isHost4(cidr, r.end) && toBigInt(r.start) <= toBigInt(r.end);
  return sane && toBigInt(a) >= toBigInt(r.start) && toBigInt(a) <= toBigInt(r.end);
}

/** What an IPv6-only segment cannot use: the DHCPv4 settings. */
function checkIpv6Only(s: PartialSite, seg: Indexed<Segment>, at: At, out: Issues): void {
  const { index, value } = seg;
  if (value.ipv4) return;
  if (!value.ipv6) {
    out.push({
      path: at(),
      message: "has no addresses (allowed: ipv4.cidr, ipv6.prefix or both; an IPv6-only segment leaves out ipv4)",
    });
    return;
  }
  const rawDhcp = (s.raw.segments as Record<string, Record<string, unknown> | undefined>[] | undefined)?.[index]?.dhcp;
  const given = (k: string) => !!rawDhcp && typeof rawDhcp === "object" && (rawDhcp as Record<string, unknown>)[k];
  for (const k of ["range", "dnsServers", "ntpServers"] as const)
    if (given(k))
      out.push({
        path: at("dhcp", k),
        message: `is a DHCPv4 setting, but the segment has no IPv4 subnet (allowed: add ipv4.cidr, or leave dhcp.${k} out of an IPv6-only segment)`,
      });
  if (given("enabled") === true)
    out.push({
      path: at("dhcp", "enabled"),
      message:
        "DHCPv4 needs an IPv4 subnet, and the segment has none (allowed: add ipv4.cidr, or leave dhcp.enabled out of an IPv6-only segment; dhcpv6 and ra configure IPv6 clients)",
    });
}

function checkReservations(value: Segment, at: At, out: Issues): void {
  const res = indexed(value.dhcp.reservations);
  const atRes = (i: number, f: string) => at("dhcp", "reservations", i, f);
  const once: [string, (r: Segment["dhcp"]["reservations"][number]) => string | undefined, string][] = [
    ["mac", (r) => r.mac, "duplicate MAC %v (also at reservations[%i]; allowed: one reservation per client)"],
    ["ipv4", (r) => r.ipv4, "duplicate address %v (also at reservations[%i]; allowed: one client per address)"],
    ["ipv6", (r) => r.ipv6, "duplicate address %v (also at reservations[%i]; allowed: one client per address)"],
    ["name", (r) => r.name, 'duplicate host name "%v" (also at reservations[%i]; allowed: unique names per segment)'],
  ];
  for (const [field, key, text] of once)
    for (const [v, idx] of dupes(res, key))
      for (const i of idx.slice(1))
        out.push({ path: atRes(i, field), message: text.replace("%v", v).replace("%i", String(idx[0])) });
  const gw4 = segmentGateway4(value);
  const gw6 = segmentGateway6(value);
  for (const { index: ri, value: r } of res) {
    if (r.ipv4 !== undefined) {
      const cidr = value.ipv4?.cidr;
      if (!cidr)
        out.push({
          path: atRes(ri, "ipv4"),
          message: "the segment has no IPv4 subnet (allowed: add ipv4.cidr to the segment, or drop this address)",
        });
      else if (!isHost4(cidr, r.ipv4))
        out.push({
          path: atRes(ri, "ipv4"),
          message: `${r.ipv4} is outside ${cidr} or not a host address (allowed: ${nthAddress(cidr, 1)}–${nthAddress(cidr, -2)})`,
        });
      else if (r.ipv4 === gw4)
        out.push({
          path: atRes(ri, "ipv4"),
          message: `${r.ipv4} is the router's own address (allowed: any other host address of ${cidr})`,
        });
      else if (poolHolds(value, r.ipv4)) {
        const range = value.dhcp.range ?? defaultDhcpRange(cidr);
        out.push({
          path: atRes(ri, "ipv4"),
          message: `${r.ipv4} lies inside the dynamic range ${range.start}–${range.end} (allowed: an address outside the range, so it cannot be leased to another client)`,
        });
      }
    }
    if (r.ipv6 === undefined) continue;
    if (value.ipv6 && !value.dhcpv6.enabled)
      out.push({
        path: atRes(ri, "ipv6"),
        message:
          "nothing would hand this address out: the segment has no DHCPv6 (allowed: set dhcpv6.enabled, or drop the IPv6 address)",
      });
    if (!value.ipv6)
      out.push({
        path: atRes(ri, "ipv6"),
        message: "the segment has no IPv6 prefix (allowed: add ipv6.prefix to the segment, or drop this address)",
      });
    else if (!contains(value.ipv6.prefix, r.ipv6) || r.ipv6 === gw6)
      out.push({
        path: atRes(ri, "ipv6"),
        message: `${r.ipv6} is outside ${value.ipv6.prefix} or is the router's address (allowed: another address in the prefix)`,
      });
  }
}

function checkIpv6Gateway(value: Segment, at: At, out: Issues): void {
  const gw6 = segmentGateway6(value);
  if (value.ipv6?.gateway === undefined || !gw6) return;
  if (!contains(value.ipv6.prefix, gw6) || gw6 === nthAddress(value.ipv6.prefix, 0))
    out.push({
      path: at("ipv6", "gateway"),
      message: `${gw6} is not a host address of ${value.ipv6.prefix} (allowed: an address inside the prefix other than the subnet-router anycast ${nthAddress(value.ipv6.prefix, 0)})`,
    });
}

export function checkSegments(s: PartialSite, out: Issues): void {
  if (!s.segments) return;
  for (const [name, idx] of dupes(allNames(s, "segments"), (x) => x.name))
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
  const sides = zoneSides(s);
  for (const seg of s.segments) {
    const at: At = (...p) => configPath("segments", [seg.index, ...p]);
    checkTrunk(s, seg.value, at, out);
    checkZone(s, sides, seg.value, at, out);
    checkIpv6Only(s, seg, at, out);
    checkIpv4(seg.value, at, out);
    checkIpv6Gateway(seg.value, at, out);
    checkReservations(seg.value, at, out);
  }
  if (s.segments.length === 0 && droppedElements(s, "segments").length === 0)
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
    if (value.ipv4)
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
  for (const { index, value } of s.links ?? [])
    for (const fam of ["ipv4", "ipv6"] as const) {
      const v = value[fam];
      if (v?.mode === "static")
        out.push({ cidr: v.address, path: configPath("links", [index, fam, "address"]), what: `WAN ${value.name}` });
    }
  for (const key of ["podCidrs", "serviceCidrs"] as const)
    indexed(s.cluster?.[key] ?? []).forEach(({ index, value }) =>
      out.push({
        cidr: value,
        path: configPath("cluster", [key, index]),
        what: key === "podCidrs" ? "the pod network" : "the service network",
      }),
    );
  return out;
}

export function checkOverlaps(s: PartialSite, out: Issues): void {
  const all = claims(s);
  for (let i = 0; i < all.length; i++)
    for (let j = 0; j < i; j++)
      if (overlaps(all[i].cidr, all[j].cidr))
        out.push({
          path: all[i].path,
          message: `${all[i].cidr} overlaps ${all[j].cidr} of ${all[j].what} at ${all[j].path} (allowed: a prefix no other network uses)`,
        });
}
