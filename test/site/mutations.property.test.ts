/**
 * Systematically broken sites: each mutation kind takes a random valid site and applies one dangerous change.
 * Every broken site must be rejected with an issue at (or above) the key that was changed, whose message says
 * what is allowed; and the real program, run under Pulumi's mocks on a sample of them, must fail with the
 * validation error before registering a single resource.
 */
import * as pulumi from "@pulumi/pulumi";
import fc from "fast-check";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { placeholderOutputs, runUnderMocks } from "../../cli/mock-runtime";
import { formatIssues, SiteValidationError } from "../../components/site/issues";
import { rawSiteConfig } from "../../components/site/load";
import { parseSite } from "../../components/site/parse";
import { secretKeys } from "../../components/site/schema";
import {
  buildRawSite,
  ipv4At,
  ipv4Size,
  rawSiteWithSegments,
  siteChoices,
  validRawSite,
} from "../helpers/arbitrary-site";
import { devSiteRaw, ROOT, view, type RawSite, type RawSiteView } from "../helpers/site-fixtures";

/** Runs per mutation kind: with ~50 kinds, several hundred broken sites in all. */
const RUNS_PER_KIND = 12;

type SegmentIn = RawSiteView["segments"][number];
type LinkIn = RawSiteView["links"][number];
type ReservationIn = NonNullable<NonNullable<SegmentIn["dhcp"]>["reservations"]>[number];

/** What a mutation did: the key it changed, where the issue must be reported, and its key words. */
interface Applied {
  /** Config path of the changed key (for an added element: its offending field). */
  changed: string;
  /** Config path the issue must have: the changed key or one of its parents. */
  at: string;
  message: RegExp;
}

interface Mutation {
  kind: string;
  /** One line: why a site with this change is dangerous. */
  why: string;
  /** Breaks the site in place; `pick` chooses among the elements it could break. */
  apply(s: RawSiteView, pick: number): Applied;
}

// ---------------------------------------------------------------------------------------------------------------
// What a raw site from the arbitrary looks like, read back for the mutations.

const segPath = (i: number, rest = "") => `router:segments[${i}]${rest}`;
const linkPath = (i: number, rest = "") => `router:links[${i}]${rest}`;
const pickOf = <T>(items: readonly T[], pick: number): [T, number] => [items[pick % items.length], pick % items.length];
const wanIndexes = (s: RawSiteView) => s.links.flatMap((l, i) => (l.role === "wan" ? [i] : []));
const trunkIndexes = (s: RawSiteView) => s.links.flatMap((l, i) => (l.role === "trunk" ? [i] : []));
const wanZoneOf = (l: LinkIn) => l.zone ?? "wan";
const managementZones = (s: RawSiteView) => s.zones.filter((z) => z.management).map((z) => z.name);
const lanZones = (s: RawSiteView) => {
  const wan = new Set(s.links.filter((l) => l.role === "wan").map(wanZoneOf));
  return s.zones.filter((z) => !z.management && !wan.has(z.name)).map((z) => z.name);
};
/** A segment's IPv4 settings: validRawSite's segments all have them (IPv6-only ones come with the policy arbitrary). */
const v4 = (seg: SegmentIn) => {
  if (!seg.ipv4) throw new Error(`catalogue: segment ${seg.name} has no IPv4 subnet`);
  return seg.ipv4;
};
const gateway4 = (seg: SegmentIn) => v4(seg).gateway ?? ipv4At(v4(seg).cidr, 1);
const poolEnd = (seg: SegmentIn) => seg.dhcp?.range?.end ?? ipv4At(v4(seg).cidr, -2);
const freshVlan = (s: RawSiteView) => {
  const used = new Set(s.segments.map((x) => x.vlan));
  for (let v = 1; v <= 4094; v++) if (!used.has(v)) return v;
  throw new Error("no free VLAN id");
};
const freshMac = (n: number) =>
  `0e:00:00:00:${(n >> 8).toString(16).padStart(2, "0")}:${(n & 255).toString(16).padStart(2, "0")}`;

/** Adds a reservation to a segment (creating its dhcp section) and returns the new reservation's index. */
function reserve(seg: SegmentIn, r: ReservationIn, enable = false): number {
  seg.dhcp = { ...(seg.dhcp ?? {}), ...(enable ? { enabled: true } : {}) };
  seg.dhcp.reservations = [...(seg.dhcp.reservations ?? []), r];
  return seg.dhcp.reservations.length - 1;
}

/** Appends a copy of segment `i` (renamed, on a fresh VLAN, without addresses of its own) and returns its index. */
function appendCopy(s: RawSiteView, i: number, edit: (copy: SegmentIn) => void): number {
  const copy = structuredClone(s.segments[i]);
  copy.name = `copy-${s.segments.length}`;
  copy.vlan = freshVlan(s);
  copy.ipv4 = { cidr: "192.168.254.0/24" };
  delete copy.ipv6;
  delete copy.dhcp;
  // The copy rides on the same trunk as the original.
  if (copy.link === undefined && trunkIndexes(s).length === 1) copy.link = s.links[trunkIndexes(s)[0]].name;
  edit(copy);
  s.segments.push(copy);
  return s.segments.length - 1;
}

// ---------------------------------------------------------------------------------------------------------------
// The catalogue.

const MUTATIONS: Mutation[] = [
  {
    kind: "an unknown top-level key",
    why: "a misspelt key is silently ignored and its intent lost",
    apply(s, pick) {
      const [key] = pickOf(["segmnets", "firewal", "vlans", "zone"], pick);
      (s as Record<string, unknown>)[key] = [];
      return { changed: `router:${key}`, at: `router:${key}`, message: /unknown config key/ };
    },
  },
  {
    kind: "an unknown key in a segment",
    why: "a misspelt field falls back to its default",
    apply(s, pick) {
      const [, i] = pickOf(s.segments, pick);
      const [key] = pickOf(["vlanId", "gw", "subnet"], pick >> 3);
      (s.segments[i] as Record<string, unknown>)[key] = 1;
      return { changed: segPath(i, `.${key}`), at: segPath(i, `.${key}`), message: /unknown key/ };
    },
  },
  {
    kind: "a VLAN id outside 1–4094",
    why: "0 and 4095 are reserved and larger ids do not fit a tag",
    apply(s, pick) {
      const [, i] = pickOf(s.segments, pick);
      s.segments[i].vlan = pickOf([0, 4095, 5000, -1], pick >> 5)[0];
      return { changed: segPath(i, ".vlan"), at: segPath(i, ".vlan"), message: /outside 1–4094/ };
    },
  },
  {
    kind: "a fractional VLAN id",
    why: "a frame cannot carry half a tag",
    apply(s, pick) {
      const [, i] = pickOf(s.segments, pick);
      s.segments[i].vlan = Math.min(s.segments[i].vlan, 4093) + 0.5;
      return { changed: segPath(i, ".vlan"), at: segPath(i, ".vlan"), message: /not an integer/ };
    },
  },
  {
    kind: "a VLAN id given as a string",
    why: "YAML quoting changes the type and the program must not guess",
    apply(s, pick) {
      const [, i] = pickOf(s.segments, pick);
      (s.segments[i] as Record<string, unknown>).vlan = String(s.segments[i].vlan);
      return { changed: segPath(i, ".vlan"), at: segPath(i, ".vlan"), message: /string/ };
    },
  },
  {
    kind: "segments given as a map instead of a list",
    why: "a map of segments would be read as no segment at all",
    apply(s) {
      (s as Record<string, unknown>).segments = Object.fromEntries(s.segments.map((x) => [x.name, x]));
      return { changed: "router:segments", at: "router:segments", message: /list|array/ };
    },
  },
  {
    kind: "a required key left out",
    why: "the site would be half-defined",
    apply(s, pick) {
      const [key] = pickOf(["site", "node", "talos", "links", "segments", "zones", "cluster"] as const, pick);
      delete (s as Record<string, unknown>)[key];
      return { changed: `router:${key}`, at: `router:${key}`, message: /is required/ };
    },
  },
  {
    kind: "a duplicate VLAN id on one trunk",
    why: "the two segments would be bridged into one broadcast domain",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      const n = appendCopy(s, i, (c) => {
        c.vlan = seg.vlan;
        c.ipv4 = { cidr: "192.168.253.0/24" };
      });
      return { changed: segPath(n, ".vlan"), at: segPath(n, ".vlan"), message: /duplicate VLAN id/ };
    },
  },
  {
    kind: "a duplicate segment name",
    why: "DNS sub-domains and metrics labels would collide",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      const n = appendCopy(s, i, (c) => (c.name = seg.name));
      return { changed: segPath(n, ".name"), at: segPath(n, ".name"), message: /duplicate segment name/ };
    },
  },
  {
    kind: "an IPv4 subnet overlapping another segment's",
    why: "routing to the shared addresses would be ambiguous",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      const [net, len] = v4(seg).cidr.split("/");
      const cidr = pick % 2 === 0 || Number(len) >= 30 ? v4(seg).cidr : `${net}/${Number(len) + 1}`;
      const n = appendCopy(s, i, (c) => (c.ipv4 = { cidr }));
      return { changed: segPath(n, ".ipv4.cidr"), at: segPath(n, ".ipv4.cidr"), message: /overlaps/ };
    },
  },
  {
    kind: "an IPv6 prefix overlapping another segment's",
    why: "two links would advertise the same prefix",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      seg.ipv6 ??= { prefix: "fd99:1:2::/64" };
      const prefix = seg.ipv6.prefix;
      const n = appendCopy(s, i, (c) => (c.ipv6 = { prefix }));
      return { changed: segPath(n, ".ipv6.prefix"), at: segPath(n, ".ipv6.prefix"), message: /overlaps/ };
    },
  },
  {
    kind: "a pod network covering the segments",
    why: "pod traffic to those hosts would never leave the node",
    apply(s) {
      s.cluster.podCidrs[0] = "10.0.0.0/8";
      const path = "router:cluster.podCidrs[0]";
      return { changed: path, at: path, message: /overlaps .* of segment/ };
    },
  },
  {
    kind: "a service network overlapping the pod network",
    why: "a service address could also be a pod address",
    apply(s) {
      s.cluster.serviceCidrs[0] = s.cluster.podCidrs[0];
      const path = "router:cluster.serviceCidrs[0]";
      return { changed: path, at: path, message: /overlaps .* of the pod network/ };
    },
  },
  {
    kind: "a subnet with host bits set",
    why: "an address was written where the network was meant",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      v4(seg).cidr = `${gateway4(seg)}/${v4(seg).cidr.split("/")[1]}`;
      return { changed: segPath(i, ".ipv4.cidr"), at: segPath(i, ".ipv4.cidr"), message: /host bits set/ };
    },
  },
  {
    kind: "a malformed subnet",
    why: "the segment would get no address plan",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      v4(seg).cidr = pickOf(["10.0.0/24", "10.0.0.0/33", "fd00::/64", "10.0.0.0"], pick >> 5)[0];
      return { changed: segPath(i, ".ipv4.cidr"), at: segPath(i, ".ipv4.cidr"), message: /not an IPv4 CIDR/ };
    },
  },
  {
    kind: "an IPv6 segment prefix other than /64",
    why: "SLAAC works on /64s only",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      seg.ipv6 = { prefix: pickOf(["fd99:ff00::/56", "fd99:ff01::/48", "fd99:ff02::/80"], pick >> 5)[0] };
      return { changed: segPath(i, ".ipv6.prefix"), at: segPath(i, ".ipv6.prefix"), message: /prefix length/ };
    },
  },
  {
    kind: "a gateway that is not a host of its subnet",
    why: "clients could not reach their router",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      v4(seg).gateway = pickOf([ipv4At(v4(seg).cidr, 0), ipv4At(v4(seg).cidr, -1), "192.0.2.200"], pick >> 5)[0];
      return { changed: segPath(i, ".ipv4.gateway"), at: segPath(i, ".ipv4.gateway"), message: /not a host address/ };
    },
  },
  {
    kind: "a DHCP range whose start is after its end",
    why: "the pool would be empty",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      seg.dhcp = { ...(seg.dhcp ?? {}), range: { start: ipv4At(v4(seg).cidr, -2), end: ipv4At(v4(seg).cidr, 1) } };
      return { changed: segPath(i, ".dhcp.range"), at: segPath(i, ".dhcp.range"), message: /is after end/ };
    },
  },
  {
    kind: "a DHCP range starting outside the subnet",
    why: "leases there would be unroutable",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      seg.dhcp = { ...(seg.dhcp ?? {}), range: { start: "192.0.2.10", end: ipv4At(v4(seg).cidr, -2) } };
      const path = segPath(i, ".dhcp.range.start");
      return { changed: path, at: path, message: /not a host address/ };
    },
  },
  {
    kind: "a DHCP range containing the gateway",
    why: "a client could lease the router's own address",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      const range = { start: ipv4At(v4(seg).cidr, 1), end: ipv4At(v4(seg).cidr, -2) };
      seg.dhcp = { ...(seg.dhcp ?? {}), enabled: true, range };
      return { changed: segPath(i, ".dhcp.range"), at: segPath(i, ".dhcp.range"), message: /contains the gateway/ };
    },
  },
  {
    kind: "a reservation inside the dynamic pool",
    why: "the address could be leased to another client first",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      const k = reserve(seg, { name: "intruder", mac: freshMac(1), ipv4: poolEnd(seg) }, true);
      const path = segPath(i, `.dhcp.reservations[${k}].ipv4`);
      return { changed: path, at: path, message: /inside the dynamic range/ };
    },
  },
  {
    kind: "a reservation of the gateway address",
    why: "a client would take over the router's address",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      const k = reserve(seg, { name: "intruder", mac: freshMac(2), ipv4: gateway4(seg) });
      const path = segPath(i, `.dhcp.reservations[${k}].ipv4`);
      return { changed: path, at: path, message: /router's own address/ };
    },
  },
  {
    kind: "a reservation outside its subnet",
    why: "the client would be handed an unroutable address",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      const k = reserve(seg, { name: "intruder", mac: freshMac(3), ipv4: "192.0.2.77" });
      const path = segPath(i, `.dhcp.reservations[${k}].ipv4`);
      return { changed: path, at: path, message: /is outside/ };
    },
  },
  {
    kind: "two reservations for one MAC",
    why: "only one of them could apply",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      reserve(seg, { name: "twin-a", mac: freshMac(4) });
      const k = reserve(seg, { name: "twin-b", mac: freshMac(4).toUpperCase() });
      const path = segPath(i, `.dhcp.reservations[${k}].mac`);
      return { changed: path, at: path, message: /duplicate MAC/ };
    },
  },
  {
    kind: "an IPv6 reservation on a segment without IPv6",
    why: "the address could never be handed out",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      delete seg.ipv6;
      const k = reserve(seg, { name: "v6-only", mac: freshMac(5), ipv6: "fd99::10" });
      const path = segPath(i, `.dhcp.reservations[${k}].ipv6`);
      return { changed: path, at: path, message: /no IPv6 prefix/ };
    },
  },
  {
    kind: "a segment on an unknown link",
    why: "its VLAN would be created on nothing",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      seg.link = "nosuch0";
      return { changed: segPath(i, ".link"), at: segPath(i, ".link"), message: /unknown link "nosuch0"/ };
    },
  },
  {
    kind: "a segment on a WAN link",
    why: "the LAN would be tagged onto the internet uplink",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      seg.link = s.links[pickOf(wanIndexes(s), pick >> 5)[0]].name;
      return { changed: segPath(i, ".link"), at: segPath(i, ".link"), message: /is a WAN link/ };
    },
  },
  {
    kind: "a segment in an unknown zone",
    why: "no firewall policy would apply to it",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      seg.zone = "nowhere";
      return { changed: segPath(i, ".zone"), at: segPath(i, ".zone"), message: /unknown zone "nowhere"/ };
    },
  },
  {
    kind: "a segment in a WAN zone",
    why: "its hosts would be treated as the internet",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      seg.zone = wanZoneOf(s.links[pickOf(wanIndexes(s), pick >> 5)[0]]);
      return { changed: segPath(i, ".zone"), at: segPath(i, ".zone"), message: /zone of a WAN link/ };
    },
  },
  {
    kind: "a NIC alias longer than 15 characters",
    why: "the kernel cannot name the link",
    apply(s, pick) {
      const [nic, k] = pickOf(s.node.nics, pick);
      nic.alias = "averyverylongnic0";
      const path = `router:node.nics[${k}].alias`;
      return { changed: path, at: path, message: /longer than 15 characters/ };
    },
  },
  {
    kind: "a VLAN link name longer than 15 characters",
    why: "the kernel cannot create verylongtrunk.4000",
    apply(s, pick) {
      const [seg, i] = pickOf(s.segments, pick);
      const trunk = s.links.find((l) => l.role === "trunk" && (seg.link === undefined || l.name === seg.link))!;
      const old = trunk.name;
      trunk.name = "verylongtrunk";
      for (const nic of s.node.nics) if (nic.alias === old) nic.alias = trunk.name;
      for (const x of s.segments) if (x.link === old) x.link = trunk.name;
      seg.vlan = 4000 + (pick % 90);
      return { changed: segPath(i, ".vlan"), at: segPath(i, ".vlan"), message: /"verylongtrunk\.40\d\d" is longer/ };
    },
  },
  {
    kind: "a malformed NIC MAC",
    why: "no link would ever match it",
    apply(s, pick) {
      const [nic, k] = pickOf(s.node.nics, pick);
      nic.mac = pickOf(["00:1a:2b:3c:4d", "00-1a-2b-3c-4d-5e", "00:1a:2b:3c:4d:5g"], pick >> 5)[0];
      const path = `router:node.nics[${k}].mac`;
      return { changed: path, at: path, message: /not a MAC address/ };
    },
  },
  {
    kind: "two NICs with one MAC",
    why: "one physical port cannot have two names and roles",
    apply(s) {
      const last = s.node.nics.length - 1;
      s.node.nics[last].mac = s.node.nics[0].mac.toUpperCase();
      const path = `router:node.nics[${last}].mac`;
      return { changed: path, at: path, message: /duplicate MAC/ };
    },
  },
  {
    kind: "two NICs with one alias",
    why: "the second would rename the first",
    apply(s, pick) {
      const [nic] = pickOf(s.node.nics, pick);
      s.node.nics.push({ alias: nic.alias, mac: freshMac(6) });
      const path = `router:node.nics[${s.node.nics.length - 1}].alias`;
      return { changed: path, at: path, message: /duplicate NIC alias/ };
    },
  },
  {
    kind: "a link that is neither a NIC alias nor a bond",
    why: "it would configure a link that never appears",
    apply(s, pick) {
      const [k] = pickOf(wanIndexes(s), pick);
      s.links[k].name = "ghost0";
      return { changed: linkPath(k, ".name"), at: linkPath(k, ".name"), message: /neither a NIC alias nor a bond/ };
    },
  },
  {
    kind: "a bond of a NIC that does not exist",
    why: "the bond would come up without its port",
    apply(s) {
      s.links.push({ name: "bond9", role: "trunk", bond: { members: ["ghost1"] } });
      const path = linkPath(s.links.length - 1, ".bond.members[0]");
      return { changed: path, at: path, message: /is not a NIC alias/ };
    },
  },
  {
    kind: "one NIC in two bonds",
    why: "a port can be enslaved only once",
    apply(s, pick) {
      const [nic] = pickOf(s.node.nics, pick);
      s.links.push({ name: "bond8", role: "trunk", bond: { members: [nic.alias] } });
      s.links.push({ name: "bond9", role: "trunk", bond: { members: [nic.alias] } });
      const path = linkPath(s.links.length - 1, ".bond.members[0]");
      return { changed: path, at: path, message: /already a member/ };
    },
  },
  {
    kind: "addresses on a trunk",
    why: "the untagged LAN would get an address outside every segment's policy",
    apply(s, pick) {
      const [t] = pickOf(trunkIndexes(s), pick);
      s.links[t].ipv4 = { mode: "dhcp" };
      return { changed: linkPath(t, ".ipv4"), at: linkPath(t, ".ipv4"), message: /a trunk carries only VLANs/ };
    },
  },
  {
    kind: "no WAN link",
    why: "the router would have no uplink",
    apply(s) {
      s.links = s.links.filter((l) => l.role !== "wan");
      return { changed: "router:links", at: "router:links", message: /no WAN link/ };
    },
  },
  {
    kind: "a WAN with neither IPv4 nor IPv6",
    why: "the uplink would carry nothing",
    apply(s, pick) {
      const [k] = pickOf(wanIndexes(s), pick);
      s.links[k].ipv4 = { mode: "none" };
      s.links[k].ipv6 = { mode: "none" };
      return { changed: linkPath(k, ".ipv6"), at: linkPath(k), message: /neither IPv4 nor IPv6/ };
    },
  },
  {
    kind: "a WAN in a management zone",
    why: "the router's management would face the internet",
    apply(s, pick) {
      const [k] = pickOf(wanIndexes(s), pick);
      s.links[k].zone = managementZones(s)[0];
      return { changed: linkPath(k, ".zone"), at: linkPath(k, ".zone"), message: /would expose/ };
    },
  },
  {
    kind: "two WANs with one priority",
    why: "both default routes would get the same metric",
    apply(s) {
      const first = s.links[wanIndexes(s)[0]];
      first.priority ??= 50;
      s.node.nics.push({ alias: "wan9", mac: freshMac(7) });
      s.links.push({ name: "wan9", role: "wan", priority: first.priority });
      const path = linkPath(s.links.length - 1, ".priority");
      return { changed: path, at: path, message: /is also used by/ };
    },
  },
  {
    kind: "a static WAN gateway outside the WAN subnet",
    why: "the default route would be unreachable",
    apply(s, pick) {
      const [k] = pickOf(wanIndexes(s), pick);
      s.links[k].ipv4 = { mode: "static", address: "203.0.113.10/24", gateway: "198.51.100.254" };
      const path = linkPath(k, ".ipv4.gateway");
      return { changed: path, at: path, message: /is outside 203\.0\.113\.10\/24/ };
    },
  },
  {
    kind: "no management zone",
    why: "nothing could reach the router's own API",
    apply(s) {
      const k = s.zones.findIndex((z) => z.management);
      for (const z of s.zones) z.management = false;
      return { changed: `router:zones[${k}].management`, at: "router:zones", message: /no management zone/ };
    },
  },
  {
    kind: "no segment in a management zone",
    why: "the router would be unreachable",
    apply(s) {
      const mgmt = new Set(managementZones(s));
      const moved = s.segments.findIndex((x) => mgmt.has(x.zone));
      for (const x of s.segments) if (mgmt.has(x.zone)) x.zone = lanZones(s)[0];
      return { changed: segPath(moved, ".zone"), at: "router:segments", message: /no segment is in a management zone/ };
    },
  },
  {
    kind: "a managementAddress that is not the router's",
    why: "talosctl and kubectl would talk to another host",
    apply(s, pick) {
      const mgmt = new Set(managementZones(s));
      const seg = s.segments.find((x) => mgmt.has(x.zone))!;
      s.node.managementAddress = pickOf(["192.0.2.1", ipv4At(v4(seg).cidr, -2)], pick)[0];
      const path = "router:node.managementAddress";
      return { changed: path, at: path, message: /is not the router's address on a management segment/ };
    },
  },
  {
    kind: "a Talos version other than 1.14.x",
    why: "this program renders the 1.14 configuration format",
    apply(s, pick) {
      s.talos.version = pickOf(["v1.13.4", "v1.15.0", "1.14.2"], pick)[0];
      return { changed: "router:talos.version", at: "router:talos.version", message: /v1\.14\.x/ };
    },
  },
  {
    kind: "an installer image of another release",
    why: "the node would install a release the config was not rendered for",
    apply(s) {
      const other = s.talos.version === "v1.14.99" ? "v1.14.98" : "v1.14.99";
      s.talos.installerImage = s.talos.installerImage.replace(/:v[\d.]+$/, `:${other}`);
      const path = "router:talos.installerImage";
      return { changed: path, at: path, message: /does not match talos\.version/ };
    },
  },
  {
    kind: "a registry username without registryPassword",
    why: "image pulls would fail on the box",
    apply(s) {
      s.registry = { server: "registry.example.net:5000", username: "router" };
      delete s.registryPassword;
      const path = "router:registryPassword";
      return { changed: path, at: path, message: /is not set but router:registry\.username is/ };
    },
  },
  {
    kind: "a registryPassword without a registry username",
    why: "the secret would be silently unused",
    apply(s) {
      s.registry = { server: "registry.example.net:5000" };
      s.registryPassword = "an-unused-secret";
      const path = "router:registryPassword";
      return { changed: path, at: path, message: /is set but router:registry\.username is not/ };
    },
  },
];

/** True when `at` is `changed` or one of its parents in config-path spelling. */
function atOrAbove(at: string, changed: string): boolean {
  return at === changed || changed.startsWith(`${at}.`) || changed.startsWith(`${at}[`);
}

/** A valid site from the arbitrary with mutation `m` applied. */
function broken(raw: RawSite, m: Mutation, pick: number): { raw: RawSite; applied: Applied } {
  const copy = structuredClone(raw);
  return { raw: copy, applied: m.apply(view(copy), pick) };
}

describe("the mutation catalogue", () => {
  it("has at least 20 distinct kinds and makes at least 300 broken sites", () => {
    expect(new Set(MUTATIONS.map((m) => m.kind)).size).toBe(MUTATIONS.length);
    expect(MUTATIONS.length).toBeGreaterThanOrEqual(20);
    expect(MUTATIONS.length * RUNS_PER_KIND).toBeGreaterThanOrEqual(300);
  });
});

describe("the valid-site arbitrary", () => {
  it("makes only sites that parse", () => {
    fc.assert(
      fc.property(validRawSite, (raw) => {
        const r = parseSite(raw);
        if (!r.ok) expect.fail(formatIssues(r.issues));
      }),
      { numRuns: 100 },
    );
  });

  it("varies what the mutations and renderers depend on", () => {
    const sites = fc.sample(siteChoices, { numRuns: 300, seed: 7 });
    const share = (f: (c: (typeof sites)[number]) => boolean) => sites.filter(f).length / sites.length;
    expect(share((c) => c.wans.length === 3)).toBeGreaterThan(0.1);
    expect(share((c) => c.trunks.length === 2)).toBeGreaterThan(0.2);
    expect(share((c) => c.trunks.some((t) => t.bond))).toBeGreaterThan(0.2);
    expect(share((c) => c.segments.length >= 12)).toBeGreaterThan(0.2);
    expect(share((c) => c.segments.some((x) => x.prefixLength === 30))).toBeGreaterThan(0.1);
    expect(share((c) => c.segments.some((x) => x.prefixLength <= 18))).toBeGreaterThan(0.1);
    expect(share((c) => c.segments.some((x) => x.dhcp === "range" && x.reservations.length > 0))).toBeGreaterThan(0.2);
    expect(
      share((c) => c.wans.some((w) => w.ipv4 === "static") && c.wans.some((w) => w.ipv6 === "static")),
    ).toBeGreaterThan(0.1);
    expect(share((c) => c.management6)).toBeGreaterThan(0.2);
  });

  it("builds a deterministic site with 64 segments for benchmarks", () => {
    const a = rawSiteWithSegments(64);
    expect(a).toEqual(rawSiteWithSegments(64));
    const r = parseSite(a);
    if (!r.ok) return expect.fail(formatIssues(r.issues));
    expect(r.site.segments).toHaveLength(64);
    expect(new Set(r.site.segments.map((x) => x.ipv4?.cidr)).size).toBe(64);
  });

  it("does its own address arithmetic, independent of the product's ip.ts", () => {
    expect(ipv4Size("10.0.0.0/30")).toBe(4);
    expect(ipv4At("10.0.0.0/23", -2)).toBe("10.0.1.254");
  });
});

describe.each(MUTATIONS)("a valid site with $kind", (m) => {
  it(`is rejected at the changed key, saying what is allowed (${m.why})`, () => {
    fc.assert(
      fc.property(validRawSite, fc.nat(1_000_000), (raw, pick) => {
        const { raw: bad, applied } = broken(raw, m, pick);
        expect(
          atOrAbove(applied.at, applied.changed),
          `catalogue: ${applied.at} is not at or above ${applied.changed}`,
        ).toBe(true);
        const r = parseSite(bad);
        if (r.ok) return expect.fail(`the broken site parsed (${applied.changed} was changed)`);
        for (const i of r.issues) expect(i.path.startsWith("router:"), i.path).toBe(true);
        const report = formatIssues(r.issues);
        const hit = r.issues.find((i) => i.path === applied.at && applied.message.test(i.message));
        if (!hit)
          return expect.fail(`no issue at ${applied.at} matching ${applied.message}; the issues were:\n${report}`);
        expect(hit.message, `the message at ${hit.path} does not say what is allowed`).toMatch(/\ballowed\b/);
      }),
      { numRuns: RUNS_PER_KIND },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The real program on broken sites.

const ENTRY = join(ROOT, "index.ts");
/** Pulumi's runtime settings module: its waitForRPCs drains registrations in flight (it has no typings). */
const PULUMI_SETTINGS: string = "@pulumi/pulumi/runtime/settings";

interface MonitorLike {
  registerResource(req: unknown, cb: (err: unknown, resp: unknown) => void): void;
  registerResourceOutputs(req: unknown, cb: (err: unknown, resp: unknown) => void): void;
}

/** Pulumi config of a raw site, as the CLI hands it to the program: `router:<key>` → JSON text (secrets as text). */
function stackConfig(raw: RawSite): { config: Record<string, string>; secrets: string[] } {
  const config: Record<string, string> = {};
  const secrets: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const secret = key in secretKeys;
    config[`router:${key}`] = secret ? String(value) : JSON.stringify(value);
    if (secret) secrets.push(`router:${key}`);
  }
  return { config, secrets };
}

/**
 * Loads index.ts afresh under Pulumi's mocks and counts every resource registration the engine would see
 * (components included). Returns what the program threw, if anything.
 */
async function runProgram(raw: RawSite): Promise<{ error: unknown; registrations: number }> {
  const { config, secrets } = stackConfig(raw);
  pulumi.runtime.setAllConfig(config, secrets);
  let registrations = 0;
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => ({
        id: args.custom ? `${args.name}-id` : undefined,
        state: { ...args.inputs, ...(args.custom ? placeholderOutputs(args.type, args.name, args.inputs) : {}) },
      }),
      call: (args) => args.inputs,
    },
    "router",
    "mutations",
    false,
  );
  const monitor = pulumi.runtime.getMonitor() as unknown as MonitorLike;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    registrations += 1;
    register(req, cb);
  };
  const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResourceOutputs = (req, cb) => {
    registrations += 1;
    registerOutputs(req, cb);
  };
  // Each run must evaluate the program again, not reuse the module from the previous run.
  vi.resetModules();
  let error: unknown;
  try {
    await import(ENTRY);
  } catch (e) {
    error = e;
  }
  // Let anything the program started reach the monitor before counting.
  const settings = (await import(PULUMI_SETTINGS)) as { waitForRPCs(): Promise<void> };
  await settings.waitForRPCs();
  return { error, registrations };
}

describe("the program on broken sites", () => {
  it("registers resources for the valid dev site, so a count of zero below means something", async () => {
    const { error, registrations } = await runProgram(devSiteRaw());
    expect(error).toBeUndefined();
    expect(registrations).toBeGreaterThan(10);
  });

  it(`fails with the validation error and registers nothing, for one broken site of each of the ${MUTATIONS.length} kinds`, async () => {
    const bases = fc.sample(validRawSite, { numRuns: MUTATIONS.length, seed: 20_240_601 });
    expect(MUTATIONS.length).toBeGreaterThanOrEqual(30);
    for (const [n, m] of MUTATIONS.entries()) {
      const { raw, applied } = broken(bases[n], m, n * 7919);
      const parsed = parseSite(rawSiteConfig(stackConfig(raw).config));
      if (parsed.ok) return expect.fail(`${m.kind}: the broken site parsed`);
      const expected = new SiteValidationError(parsed.issues).message;
      const { error, registrations } = await runProgram(raw);
      expect(error, m.kind).toBeInstanceOf(Error);
      const message = (error as Error).message;
      expect(message, m.kind).toContain(expected);
      expect(message, m.kind).toContain(applied.at);
      expect(registrations, `${m.kind}: resources were registered`).toBe(0);
      // The render CLI's runner fails the same way.
      const { config, secrets } = stackConfig(raw);
      vi.resetModules();
      await expect(
        runUnderMocks({ project: "router", stack: "mutations", config, secretKeys: secrets, entry: ENTRY }),
        m.kind,
      ).rejects.toThrow(expected);
    }
    // The module cache was reset between runs: the valid site still builds its resources afterwards.
    expect((await runProgram(devSiteRaw())).registrations).toBeGreaterThan(10);
  });
});

describe("the program on valid sites", () => {
  it("runs to completion for every site the validator accepts: a failure halfway through `pulumi up` leaves a partial deployment", async () => {
    const failures: string[] = [];
    // Random sites, with the registry and management-address variants spread evenly over them. (A site without
    // a registry is rejected by the validator: the services image and the extension are pushed there.)
    const registries = ["anonymous", "authenticated"] as const;
    const sites = fc
      .sample(siteChoices, { numRuns: 9, seed: 4242 })
      .map((c, i) => buildRawSite({ ...c, registry: registries[i % 2], management6: i % 2 === 0 }));
    for (const raw of sites) {
      expect(parseSite(raw).ok).toBe(true);
      const { error, registrations } = await runProgram(raw);
      if (error !== undefined)
        failures.push(
          `${String((error as Error).message ?? error)} (after ${registrations} registrations; registry: ${JSON.stringify(raw.registry ?? null)})`,
        );
    }
    expect(failures).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Several mistakes at once: one run reports every one of them.

/** The element or top-level key a path is in: `router:segments[2]` for `router:segments[2].ipv4.cidr`. */
function rootOf(path: string): string {
  const m = /^router:[A-Za-z]+(\[\d+\])?/.exec(path);
  return m ? m[0] : path;
}

/** Every string and number inside a value (numbers as text). */
function stringsIn(v: unknown): string[] {
  if (typeof v === "string") return [v];
  if (typeof v === "number") return [String(v)];
  if (v !== null && typeof v === "object") return Object.values(v).flatMap(stringsIn);
  return [];
}

/**
 * What a mistake touches: the names and values (of zones, links, segments, VLAN ids, subnets, …) it changed,
 * before and after, and every value of each list element it changed (its name, subnet, VLAN). Two mistakes that
 * touch no common value cannot change what the other means (a segment that names a renamed link, a WAN put into
 * the zone another mistake made the WAN's, a copy of the segment another mistake broke).
 */
function touched(before: unknown, after: unknown, element?: unknown): Set<string> {
  const out = new Set<string>();
  const walk = (a: unknown, b: unknown, el: unknown) => {
    if (JSON.stringify(a) === JSON.stringify(b)) return;
    const objects = a !== null && b !== null && typeof a === "object" && typeof b === "object";
    if (!objects) {
      for (const x of [...stringsIn(a), ...stringsIn(b), ...stringsIn(el)]) out.add(x);
      return;
    }
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)]))
      walk(ra[k], rb[k], Array.isArray(a) ? (ra[k] ?? rb[k]) : el);
  };
  walk(before, after, element);
  return out;
}

/**
 * The shared sides a mistake touches: the NICs, the segments, the links a segment names, and the management side: the management address is checked against the management segments,
 * which are those of the management zones; a mistake in any of them changes what the others mean.
 */
function managementRole(raw: RawSite, a: Applied): string[] {
  const s = view(raw);
  const mgmt = managementZones(s);
  const el = /^router:(segments|zones)\[(\d+)\]/.exec(a.changed);
  const touches =
    a.changed.startsWith("router:node.managementAddress") ||
    rootOf(a.changed) === "router:zones" ||
    rootOf(a.changed) === "router:segments" ||
    (el?.[1] === "segments" && mgmt.includes(s.segments[Number(el[2])]?.zone ?? "")) ||
    (el?.[1] === "zones" && mgmt.includes(s.zones[Number(el[2])]?.name ?? ""));
  // The NICs: a bond's members and the links' names are checked against the node's NIC aliases.
  const nics = /^router:node(\.nics|$)/.test(a.changed) || /bond|^router:links\[\d+\]\.name$/.test(a.changed);
  // The segments: the cluster's pod and service networks are checked against every segment's subnet, and a new
  // trunk (a bond) makes every segment that names no link ambiguous.
  const subnets = /^router:(cluster|segments)\b/.test(a.changed) || /bond/.test(a.changed);
  // The links: a segment's link is checked against router:links; with no links at all it cannot be judged.
  const links = a.changed === "router:links" || /\.link$/.test(a.changed);
  return [
    ...(touches ? ["@management"] : []),
    ...(nics ? ["@nics"] : []),
    ...(subnets ? ["@segments"] : []),
    ...(links ? ["@links"] : []),
  ];
}

describe("a valid site with 2–5 independent mistakes", () => {
  it("is rejected with every one of them reported in the same run", () => {
    fc.assert(
      fc.property(
        validRawSite,
        fc.uniqueArray(fc.nat(MUTATIONS.length - 1), { minLength: 2, maxLength: 5 }),
        fc.array(fc.nat(1_000_000), { minLength: 5, maxLength: 5 }),
        (raw, kinds, picks) => {
          const ms = kinds.map((k) => MUTATIONS[k]);
          // Alone, each mistake is reported where it was made (the catalogue's own property)...
          const solos = ms.map((m, i) => broken(raw, m, picks[i]));
          const solo = solos.map((x) => x.applied);
          const names = solos.map((x) => new Set([...touched(raw, x.raw), ...managementRole(raw, x.applied)]));
          // ...and the mistakes are independent: each in an element or key of its own, none inside another's.
          const apart = (a: Applied, b: Applied) =>
            [a.changed, a.at].every((p) => !atOrAbove(rootOf(p), b.changed) && !atOrAbove(rootOf(b.changed), p));
          fc.pre(solo.every((a, i) => solo.every((b, j) => i === j || apart(a, b))));
          fc.pre(names.every((a, i) => names.every((b, j) => i === j || ![...a].some((x) => b.has(x)))));
          const bad = structuredClone(raw);
          // One mistake that cannot be made after another (the node it edits was removed) is not independent.
          let applied: Applied[];
          try {
            applied = ms.map((m, i) => m.apply(view(bad), picks[i]));
          } catch {
            return fc.pre(false);
          }
          fc.pre(applied.every((a, i) => a.changed === solo[i].changed && a.at === solo[i].at));
          const r = parseSite(bad);
          if (r.ok) return expect.fail("the broken site parsed");
          const missing = applied
            .map((a, i) => ({ a, kind: ms[i].kind }))
            // At its own key; its message may differ where another mistake changed what it means (a link renamed
            // under a segment that named it is an unknown link, no longer a WAN link).
            .filter(({ a }) => !r.issues.some((x) => x.path === a.at));
          if (missing.length)
            return expect.fail(
              `not reported: ${missing.map(({ a, kind }) => `${kind} at ${a.at} (${a.message})`).join("; ")}\nthe issues were:\n${formatIssues(r.issues)}`,
            );
        },
      ),
      { numRuns: 300 },
    );
  });
});
