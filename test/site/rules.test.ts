/**
 * One test per rule of the site model: each breaks the dev site in one place and asserts the exact config path
 * of the problem and the key words of its message. Every message must also say what is allowed (see
 * expectIssue), since the operator reads the fix there.
 */
import { describe, expect, it } from "vitest";
import { formatIssues, SiteValidationError, type SiteIssue } from "../../components/site/issues";
import { parseSite } from "../../components/site/parse";
import { planSite } from "../../components/site/plan";
import {
  deleteAt,
  devSiteRaw,
  edited,
  expectIssue,
  getAt,
  expectRejected,
  expectValid,
  indexOf,
  setAt,
  view,
  type RawSite,
} from "../helpers/site-fixtures";

const dev = devSiteRaw();
// Elements of the dev site by name, so the tests survive elements being added to or reordered in the dev stack.
const MGMT = indexOf(dev, "segments", "mgmt");
const TRUSTED = indexOf(dev, "segments", "trusted");
const IOT = indexOf(dev, "segments", "iot");
const GUEST = indexOf(dev, "segments", "guest");
const SERVERS = indexOf(dev, "segments", "servers");
const WAN0 = indexOf(dev, "links", "wan0");
const LAN0 = indexOf(dev, "links", "lan0");
const NIC_WAN0 = indexOf(dev, "node.nics", "wan0");
const NIC_LAN0 = indexOf(dev, "node.nics", "lan0");
const MGMT_ZONE = indexOf(dev, "zones", "mgmt");

/** A copy of the dev site with one value replaced. */
function devWith(path: string, value: unknown): RawSite {
  return setAt(devSiteRaw(), path, value);
}

/** A copy of the dev site with one value removed. */
function devWithout(path: string): RawSite {
  return deleteAt(devSiteRaw(), path);
}

/** Dev site plus a second trunk NIC `lan1` and its trunk link; segments then have to name their trunk. */
function devWithSecondTrunk(): RawSite {
  return edited(devSiteRaw(), (s) => {
    s.node.nics.push({ alias: "lan1", mac: "02:00:5e:00:01:01" });
    s.links.push({ name: "lan1", role: "trunk" });
  });
}

describe("the dev site", () => {
  it("is valid, so every rule test below starts from a site with no problem of its own", () => {
    expectValid(devSiteRaw());
  });
});

describe("config keys", () => {
  it("rejects an unknown top-level key with the allowed keys: a typo such as segmnets would be silently ignored", () => {
    const raw = devSiteRaw();
    raw.segmnets = [];
    expectRejected(raw, "router:segmnets", /unknown config key \(allowed keys: site, node, talos, links, segments,/);
  });

  it("rejects an unknown key in a segment with the keys allowed there: a misspelt field would fall back to a default", () => {
    expectRejected(
      devWith(`segments[${IOT}].vlanId`, 30),
      `router:segments[${IOT}].vlanId`,
      /unknown key \(allowed keys here: name, description, vlan, zone, link, mtu, ipv4, ipv6, dhcp\b/,
    );
  });

  it("rejects an unknown key in a DHCP reservation with the keys allowed there: the address would not be reserved", () => {
    expectRejected(
      devWith(`segments[${TRUSTED}].dhcp.reservations[0].ip`, "10.20.0.11"),
      `router:segments[${TRUSTED}].dhcp.reservations[0].ip`,
      "unknown key (allowed keys here: name, mac, ipv4, ipv6)",
    );
  });

  it("rejects redistribution into BGP saying why and what does it: Talos' BGP advertises link subnets only", () => {
    const raw = devWith("routing", {
      bgp: {
        asn: 65001,
        routerId: "10.10.0.1",
        neighbors: [{ address: "10.10.0.2", asn: 65002 }],
        redistribute: ["static"],
      },
    });
    expectRejected(
      raw,
      "router:routing.bgp.redistribute",
      /is not supported: .*advertises only the subnets of the links.*routing\.ospf\.redistribute: \[static\].*allowed keys here: asn, routerId, neighbors, advertise/,
    );
  });

  it("rejects a missing required key and says what to set: a site without router:node has no box to install", () => {
    expectRejected(devWithout("node"), "router:node", "is required");
  });
});

describe("value types", () => {
  it("rejects a string where a number belongs and says which numbers are allowed: YAML quoting turns 30 into '30'", () => {
    expectRejected(
      devWith(`segments[${IOT}].vlan`, "30"),
      `router:segments[${IOT}].vlan`,
      /string.*1 to 4094|1 to 4094.*string/,
    );
  });

  it("rejects a number where a string belongs and says which strings are allowed: an unquoted value changes type", () => {
    expectRejected(devWith("site.name", 5), "router:site.name", /number.*DNS label|DNS label.*number/);
  });

  it("rejects an object where a list belongs: a map of segments would be read as no segment at all", () => {
    expectRejected(devWith("segments", { mgmt: { vlan: 10 } }), "router:segments", /list|array/);
  });
});

describe("VLAN ids", () => {
  it.each([
    [0, "0 means untagged (priority tag only), so the segment would land on the trunk's native VLAN"],
    [4095, "4095 is reserved by 802.1Q and the kernel refuses it"],
    [5000, "5000 does not fit the 12-bit VLAN id"],
  ])("rejects VLAN id %s: %s", (vlan) => {
    expectRejected(devWith(`segments[${IOT}].vlan`, vlan), `router:segments[${IOT}].vlan`, "is outside 1–4094");
  });

  it("rejects VLAN id 1.5: a fractional id cannot be tagged on a frame", () => {
    expectRejected(
      devWith(`segments[${IOT}].vlan`, 1.5),
      `router:segments[${IOT}].vlan`,
      /is not an integer.*got number 1\.5/,
    );
  });

  it("rejects two segments with one VLAN id on the same trunk: their traffic would be bridged together", () => {
    expectRejected(
      devWith(`segments[${GUEST}].vlan`, 10),
      `router:segments[${GUEST}].vlan`,
      `duplicate VLAN id 10 on lan0 (also at segments[${MGMT}]`,
    );
  });

  it("accepts the same VLAN id on two different trunks, which are separate broadcast domains", () => {
    const raw = edited(devWithSecondTrunk(), (s) => {
      for (const seg of s.segments) seg.link = "lan0";
      s.segments[GUEST].link = "lan1";
      s.segments[GUEST].vlan = 10;
    });
    expectValid(raw);
  });

  it("rejects two segments with one name: DNS sub-domains and metrics labels would collide", () => {
    expectRejected(
      devWith(`segments[${GUEST}].name`, "trusted"),
      `router:segments[${GUEST}].name`,
      `duplicate segment name "trusted" (also at segments[${TRUSTED}]`,
    );
  });
});

describe("the address plan", () => {
  it("rejects IPv4 segment subnets that overlap: routing between them would be ambiguous", () => {
    expectRejected(
      devWith(`segments[${GUEST}].ipv4.cidr`, "10.20.0.0/25"),
      `router:segments[${GUEST}].ipv4.cidr`,
      `10.20.0.0/25 overlaps 10.20.0.0/24 of segment trusted at router:segments[${TRUSTED}].ipv4.cidr`,
    );
  });

  it("rejects IPv6 segment prefixes that overlap: two links would advertise the same prefix", () => {
    expectRejected(
      devWith(`segments[${GUEST}].ipv6.prefix`, "fd12:3456:789a:20::/64"),
      `router:segments[${GUEST}].ipv6.prefix`,
      `fd12:3456:789a:20::/64 overlaps fd12:3456:789a:20::/64 of segment trusted at router:segments[${TRUSTED}].ipv6.prefix`,
    );
  });

  it("rejects a segment inside the pod network: pod traffic to those hosts would never leave the node", () => {
    expectRejected(
      devWith(`segments[${GUEST}].ipv4.cidr`, "10.244.7.0/24"),
      "router:cluster.podCidrs[0]",
      `10.244.0.0/16 overlaps 10.244.7.0/24 of segment guest at router:segments[${GUEST}].ipv4.cidr`,
    );
  });

  it("rejects a segment inside the service network: hosts there would be shadowed by service addresses", () => {
    expectRejected(
      devWith(`segments[${GUEST}].ipv4.cidr`, "10.100.0.0/24"),
      "router:cluster.serviceCidrs[0]",
      `10.96.0.0/12 overlaps 10.100.0.0/24 of segment guest at router:segments[${GUEST}].ipv4.cidr`,
    );
  });

  it("rejects a service network overlapping the pod network: a service IP could also be a pod IP", () => {
    expectRejected(
      devWith("cluster.serviceCidrs[0]", "10.244.0.0/20"),
      "router:cluster.serviceCidrs[0]",
      "10.244.0.0/20 overlaps 10.244.0.0/16 of the pod network at router:cluster.podCidrs[0]",
    );
  });

  it("rejects a subnet with host bits set and names the network meant: 10.40.0.1/24 is an address, not a subnet", () => {
    expectRejected(
      devWith(`segments[${GUEST}].ipv4.cidr`, "10.40.0.1/24"),
      `router:segments[${GUEST}].ipv4.cidr`,
      "has host bits set (allowed: the network address, 10.40.0.0/24)",
    );
  });

  it.each(["fd12:3456:789a:4000::/56", "fd12:3456:789a:40::/80"])(
    "rejects the IPv6 segment prefix %s: SLAAC needs exactly a /64",
    (prefix) => {
      expectRejected(
        devWith(`segments[${GUEST}].ipv6.prefix`, prefix),
        `router:segments[${GUEST}].ipv6.prefix`,
        /has prefix length \/(56|80) \(allowed: \/64\)/,
      );
    },
  );

  it.each([
    ["10.40.0/24", "three octets"],
    ["fd00::/64", "an IPv6 prefix in the IPv4 field"],
    ["10.40.0.0/33", "a prefix length beyond 32"],
  ])("rejects the malformed IPv4 subnet %s (%s): the segment would get no address plan", (cidr) => {
    expectRejected(
      devWith(`segments[${GUEST}].ipv4.cidr`, cidr),
      `router:segments[${GUEST}].ipv4.cidr`,
      "is not an IPv4 CIDR prefix",
    );
  });

  it("rejects a malformed address: 10.40.0.300 cannot be assigned to the router", () => {
    expectRejected(
      devWith(`segments[${GUEST}].ipv4.gateway`, "10.40.0.300"),
      `router:segments[${GUEST}].ipv4.gateway`,
      '"10.40.0.300" is not an IPv4 address',
    );
  });
});

describe("gateways", () => {
  it.each([
    ["10.41.0.1", "outside the subnet, so clients could not reach their router"],
    ["10.40.0.0", "the network address, which is not a host"],
    ["10.40.0.255", "the broadcast address, which every client receives"],
  ])("rejects the gateway %s: %s", (gateway) => {
    expectRejected(
      devWith(`segments[${GUEST}].ipv4.gateway`, gateway),
      `router:segments[${GUEST}].ipv4.gateway`,
      "is not a host address of 10.40.0.0/24 (allowed: 10.40.0.1–10.40.0.254)",
    );
  });

  it.each([
    ["fd12:3456:789a:41::1", "outside the prefix"],
    ["fd12:3456:789a:40::", "the subnet-router anycast address"],
  ])("rejects the IPv6 gateway %s: %s", (gateway) => {
    expectRejected(
      devWith(`segments[${GUEST}].ipv6.gateway`, gateway),
      `router:segments[${GUEST}].ipv6.gateway`,
      "is not a host address of fd12:3456:789a:40::/64",
    );
  });
});

describe("DHCP ranges", () => {
  it("rejects a range that starts outside the subnet: leases there would be unroutable", () => {
    expectRejected(
      devWith(`segments[${GUEST}].dhcp.range`, { start: "10.41.0.10", end: "10.40.0.200" }),
      `router:segments[${GUEST}].dhcp.range.start`,
      "10.41.0.10 is not a host address of 10.40.0.0/24",
    );
  });

  it("rejects a range whose start is after its end: the pool would be empty", () => {
    expectRejected(
      devWith(`segments[${GUEST}].dhcp.range`, { start: "10.40.0.200", end: "10.40.0.150" }),
      `router:segments[${GUEST}].dhcp.range`,
      "start 10.40.0.200 is after end 10.40.0.150 (allowed: start ≤ end)",
    );
  });

  it("rejects a range containing the gateway: a client could lease the router's own address", () => {
    expectRejected(
      devWith(`segments[${GUEST}].dhcp.range`, { start: "10.40.0.1", end: "10.40.0.100" }),
      `router:segments[${GUEST}].dhcp.range`,
      "the DHCP range 10.40.0.1–10.40.0.100 contains the gateway 10.40.0.1",
    );
  });

  it("rejects a gateway inside the default pool: the upper half would hand out the router's address", () => {
    expectRejected(
      devWith(`segments[${GUEST}].ipv4.gateway`, "10.40.0.254"),
      `router:segments[${GUEST}].ipv4.gateway`,
      "the DHCP range 10.40.0.128–10.40.0.254 contains the gateway 10.40.0.254",
    );
  });

  it("rejects a reservation inside the dynamic pool: the address could be leased to another client first", () => {
    expectRejected(
      devWith(`segments[${TRUSTED}].dhcp.reservations[0].ipv4`, "10.20.0.200"),
      `router:segments[${TRUSTED}].dhcp.reservations[0].ipv4`,
      "10.20.0.200 lies inside the dynamic range 10.20.0.128–10.20.0.254",
    );
  });

  it("accepts a reservation in the upper half when DHCP is off, since there is no pool to collide with", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.segments[TRUSTED].dhcp = {
        enabled: false,
        reservations: [{ name: "desk-pc", mac: "00:1a:2b:00:20:01", ipv4: "10.20.0.200" }],
      };
    });
    expectValid(raw);
  });
});

describe("DHCP reservations", () => {
  it("rejects a reservation outside the segment's subnet: the client would be handed an unroutable address", () => {
    expectRejected(
      devWith(`segments[${TRUSTED}].dhcp.reservations[0].ipv4`, "10.21.0.10"),
      `router:segments[${TRUSTED}].dhcp.reservations[0].ipv4`,
      "10.21.0.10 is outside 10.20.0.0/24",
    );
  });

  it("rejects a reservation of the gateway address: the client would steal the router's address", () => {
    expectRejected(
      devWith(`segments[${TRUSTED}].dhcp.reservations[0].ipv4`, "10.20.0.1"),
      `router:segments[${TRUSTED}].dhcp.reservations[0].ipv4`,
      "10.20.0.1 is the router's own address",
    );
  });

  it("rejects two reservations for one MAC, also when spelt in another case: only one of them could apply", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.segments[TRUSTED].dhcp!.reservations!.push({ name: "laptop", mac: "00:1A:2B:00:20:01", ipv4: "10.20.0.11" });
    });
    expectRejected(
      raw,
      `router:segments[${TRUSTED}].dhcp.reservations[1].mac`,
      "duplicate MAC 00:1a:2b:00:20:01 (also at reservations[0]",
    );
  });

  it("rejects two reservations of one address: two clients would claim the same IP", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.segments[TRUSTED].dhcp!.reservations!.push({ name: "laptop", mac: "00:1a:2b:00:20:02", ipv4: "10.20.0.10" });
    });
    expectRejected(
      raw,
      `router:segments[${TRUSTED}].dhcp.reservations[1].ipv4`,
      "duplicate address 10.20.0.10 (also at reservations[0]",
    );
  });

  it("rejects an IPv6 reservation on a segment without IPv6: it could never be handed out", () => {
    expectRejected(
      devWithout(`segments[${TRUSTED}].ipv6`),
      `router:segments[${TRUSTED}].dhcp.reservations[0].ipv6`,
      "the segment has no IPv6 prefix",
    );
  });

  it("rejects an IPv6 reservation outside the segment's prefix: the client would get an unroutable address", () => {
    expectRejected(
      devWith(`segments[${TRUSTED}].dhcp.reservations[0].ipv6`, "fd12:3456:789a:21::10"),
      `router:segments[${TRUSTED}].dhcp.reservations[0].ipv6`,
      "fd12:3456:789a:21::10 is outside fd12:3456:789a:20::/64",
    );
  });
});

describe("the trunk a segment rides on", () => {
  it("rejects a segment on an unknown link: its VLAN would be created on nothing", () => {
    expectRejected(
      devWith(`segments[${GUEST}].link`, "lan9"),
      `router:segments[${GUEST}].link`,
      'unknown link "lan9" (allowed: lan0)',
    );
  });

  it("rejects a segment on a WAN link: the LAN would be tagged onto the internet uplink", () => {
    expectRejected(
      devWith(`segments[${GUEST}].link`, "wan0"),
      `router:segments[${GUEST}].link`,
      '"wan0" is a WAN link (allowed: a trunk: lan0)',
    );
  });

  it("rejects a segment when no trunk exists: there is no link to carry its VLAN", () => {
    expectRejected(devWithout(`links[${LAN0}]`), `router:segments[${MGMT}].link`, "no trunk link carries this segment");
  });

  it("rejects a segment without link when several trunks exist: the program would have to guess", () => {
    expectRejected(
      devWithSecondTrunk(),
      `router:segments[${MGMT}].link`,
      "several trunks exist (allowed: name one of lan0, lan1)",
    );
  });
});

describe("zones of segments", () => {
  it("rejects a segment in an unknown zone: no firewall policy would apply to it", () => {
    expectRejected(
      devWith(`segments[${GUEST}].zone`, "visitors"),
      `router:segments[${GUEST}].zone`,
      /unknown zone "visitors" \(allowed: [^)]*\bmgmt\b[^)]*\bguest\b/,
    );
  });

  it("rejects a segment in the WAN zone: its hosts would be treated as the internet", () => {
    expectRejected(
      devWith(`segments[${GUEST}].zone`, "wan"),
      `router:segments[${GUEST}].zone`,
      '"wan" is the zone of a WAN link',
    );
  });
});

describe("links and NICs", () => {
  it("rejects a NIC alias longer than 15 characters: the kernel cannot name the link", () => {
    expectRejected(
      devWith(`node.nics[${NIC_LAN0}].alias`, "lan0-core-switch"),
      `router:node.nics[${NIC_LAN0}].alias`,
      "is longer than 15 characters",
    );
  });

  it("rejects a bond name longer than 15 characters: the kernel cannot create the bond", () => {
    expectRejected(
      devWith(`links[${LAN0}]`, { name: "bond-core-switch", role: "trunk", bond: { members: ["lan0"] } }),
      `router:links[${LAN0}].name`,
      "is longer than 15 characters",
    );
  });

  it("rejects a VLAN whose derived link name exceeds 15 characters: verylongtrunk.4000 cannot be created", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.node.nics[NIC_LAN0].alias = "verylongtrunk";
      s.links[LAN0].name = "verylongtrunk";
      s.segments[GUEST].vlan = 4000;
    });
    expectRejected(
      raw,
      `router:segments[${GUEST}].vlan`,
      'the VLAN link name "verylongtrunk.4000" is longer than 15 characters',
    );
  });

  it.each([
    [`node.nics[${NIC_LAN0}].mac`, "00:1a:2b:3c:4d"],
    [`node.nics[${NIC_LAN0}].mac`, "00-1a-2b-3c-4d-02"],
    [`segments[${TRUSTED}].dhcp.reservations[0].mac`, "00:1a:2b:00:20:0g"],
  ])("rejects the malformed MAC at %s (%s): no link or client would ever match it", (path, mac) => {
    expectRejected(devWith(path, mac), `router:${path}`, "is not a MAC address");
  });

  it("rejects two NICs with one alias: the second would silently rename the first", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.node.nics.push({ alias: "wan0", mac: "02:00:5e:00:02:01" });
    });
    const last = (raw.node as { nics: unknown[] }).nics.length - 1;
    expectRejected(raw, `router:node.nics[${last}].alias`, `duplicate NIC alias "wan0" (also at nics[${NIC_WAN0}]`);
  });

  it("rejects two NICs with one MAC, also spelt in another case: one physical port cannot have two roles", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.node.nics.push({ alias: "lan9", mac: s.node.nics[NIC_WAN0].mac.toUpperCase() });
    });
    const last = (raw.node as { nics: unknown[] }).nics.length - 1;
    expectRejected(raw, `router:node.nics[${last}].mac`, `duplicate MAC 00:1a:2b:3c:4d:01 (also at nics[${NIC_WAN0}]`);
  });

  it("rejects a link that is neither a NIC alias nor a bond: it would configure a link that never appears", () => {
    expectRejected(
      devWith(`links[${LAN0}].name`, "eth7"),
      `router:links[${LAN0}].name`,
      /"eth7" is neither a NIC alias nor a bond \(allowed: [^)]*\blan0\b[^)]*, or add a bond section\)/,
    );
  });

  it("rejects a bond member that is not a NIC alias: the bond would come up degraded or empty", () => {
    expectRejected(
      devWith(`links[${LAN0}]`, { name: "bond0", role: "trunk", bond: { members: ["lan0", "lan9"] } }),
      `router:links[${LAN0}].bond.members[1]`,
      /"lan9" is not a NIC alias \(allowed: [^)]*\blan0\b/,
    );
  });

  it("rejects a NIC in two bonds: a port can be enslaved only once", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.links[LAN0] = { name: "bond0", role: "trunk", bond: { members: ["lan0"] } };
      s.links.push({ name: "bond1", role: "trunk", bond: { members: ["lan0"] } });
    });
    const last = (raw.links as unknown[]).length - 1;
    expectRejected(raw, `router:links[${last}].bond.members[0]`, `"lan0" is already a member of links[${LAN0}]`);
  });

  it("rejects addresses on a trunk: the untagged LAN would get an address outside every segment's policy", () => {
    expectRejected(
      devWith(`links[${LAN0}].ipv4`, { mode: "static", address: "10.99.0.1/24", gateway: "10.99.0.254" }),
      `router:links[${LAN0}].ipv4`,
      "a trunk carries only VLANs",
    );
  });
});

describe("WAN links", () => {
  it("rejects a site without WAN: the router would have no uplink", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.links = s.links.filter((l) => l.role !== "wan");
    });
    expectRejected(raw, "router:links", "no WAN link");
  });

  it("rejects a WAN with neither IPv4 nor IPv6: the uplink would carry nothing", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.links[WAN0].ipv4 = { mode: "none" };
      s.links[WAN0].ipv6 = { mode: "none" };
    });
    expectRejected(raw, `router:links[${WAN0}]`, "WAN link has neither IPv4 nor IPv6");
  });

  it("rejects a WAN in a management zone: the router's management would face the internet", () => {
    expectRejected(
      devWith(`links[${WAN0}].zone`, "mgmt"),
      `router:links[${WAN0}].zone`,
      'management zone "mgmt" would expose',
    );
  });

  it("rejects two WANs with one priority: both default routes would get the same metric", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.node.nics.push({ alias: "wan9", mac: "02:00:5e:00:03:01" });
      s.links.push({ name: "wan9", role: "wan", priority: s.links[WAN0].priority });
    });
    const last = (raw.links as unknown[]).length - 1;
    expectRejected(
      raw,
      `router:links[${last}].priority`,
      `WAN priority ${String(view(raw).links[WAN0].priority)} is also used by links[${WAN0}]`,
    );
  });

  it.each([
    ["203.0.113.0/24", "the network address"],
    ["203.0.113.255/24", "the broadcast address"],
  ])("rejects the static WAN address %s (%s): no host may use it, the uplink would never work", (address, what) => {
    expectRejected(
      devWith(`links[${WAN0}].ipv4`, { mode: "static", address, gateway: "203.0.113.1" }),
      `router:links[${WAN0}].ipv4.address`,
      `${address.split("/")[0]} is ${what} of 203.0.113.0/24, which no host may use (allowed: a host address, 203.0.113.1–203.0.113.254`,
    );
  });

  it("rejects a static WAN gateway that is the broadcast address of the WAN subnet: it is no router", () => {
    expectRejected(
      devWith(`links[${WAN0}].ipv4`, { mode: "static", address: "203.0.113.10/24", gateway: "203.0.113.255" }),
      `router:links[${WAN0}].ipv4.gateway`,
      "203.0.113.255 is the broadcast address of 203.0.113.0/24",
    );
  });

  it("rejects the subnet-router anycast address as a static IPv6 WAN address", () => {
    expectRejected(
      devWith(`links[${WAN0}].ipv6`, { mode: "static", address: "2001:db8:5::/64", gateway: "2001:db8:5::1" }),
      `router:links[${WAN0}].ipv6.address`,
      "2001:db8:5:: is the subnet-router anycast address of 2001:db8:5::/64",
    );
  });

  it("accepts both addresses of a /31 point-to-point WAN (RFC 3021), which has no network or broadcast address", () => {
    expectValid(devWith(`links[${WAN0}].ipv4`, { mode: "static", address: "203.0.113.0/31", gateway: "203.0.113.1" }));
  });

  it("rejects a WAN link put into a LAN zone at the link's zone, and only there", () => {
    const r = parseSite(devWith(`links[${WAN0}].zone`, "trusted"));
    if (r.ok) return expect.fail("a WAN link in the trusted zone parsed");
    expect(r.issues.map((i) => i.path)).toEqual([`router:links[${WAN0}].zone`]);
    expectIssue(r, `router:links[${WAN0}].zone`, '"trusted" is a LAN zone (segments trusted)');
  });

  it("rejects a static WAN gateway outside the WAN subnet: the default route would be unreachable", () => {
    expectRejected(
      devWith(`links[${WAN0}].ipv4`, { mode: "static", address: "203.0.113.10/24", gateway: "198.51.100.1" }),
      `router:links[${WAN0}].ipv4.gateway`,
      "198.51.100.1 is outside 203.0.113.10/24",
    );
  });
});

describe("the data plane's static lists", () => {
  const blocklist = (...cidrs: string[]) => devWith("dataplane.blocklist", cidrs);

  it("rejects a blocklist entry covering a WAN's static gateway: the guard would drop the router's own upstream", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.links[WAN0].ipv4 = { mode: "static", address: "203.0.113.10/24", gateway: "203.0.113.1" };
      (s as unknown as { dataplane: { blocklist: string[] } }).dataplane.blocklist.push("203.0.113.0/25");
    });
    const last = (view(raw) as unknown as { dataplane: { blocklist: string[] } }).dataplane.blocklist.length - 1;
    expectRejected(
      raw,
      `router:dataplane.blocklist[${last}]`,
      `203.0.113.0/25 covers 203.0.113.1, the static gateway of WAN wan0 (links[${WAN0}].ipv4.gateway)`,
    );
  });

  it("rejects a blocklist entry covering a WAN's IPv6 static gateway", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.links[WAN0].ipv6 = { mode: "static", address: "2001:db8:ff::10/64", gateway: "2001:db8:ff::1" };
    });
    expectRejected(
      setAt(raw, "dataplane.blocklist", ["2001:db8::/32"]),
      "router:dataplane.blocklist[0]",
      `covers 2001:db8:ff::1, the static gateway of WAN wan0 (links[${WAN0}].ipv6.gateway)`,
    );
  });

  it("rejects a blocklist entry covering a probe target: the WAN's health probes would fail and take it down", () => {
    const issue = expectRejected(
      blocklist("45.155.205.0/24", "1.1.1.0/24"),
      "router:dataplane.blocklist[1]",
      `1.1.1.0/24 covers 1.1.1.1, a probe target of WAN wan0 (links[${WAN0}].probe.targets[0])`,
    );
    expect(issue.message).toMatch(/allowed: prefixes that leave out the WAN gateways, probe targets/);
  });

  it("rejects a blocklist entry covering a default probe target of a WAN that names none", () => {
    const raw = edited(devSiteRaw(), (s) => {
      delete s.links[WAN0].probe;
    });
    expectRejected(
      setAt(raw, "dataplane.blocklist", ["9.9.9.0/24"]),
      "router:dataplane.blocklist[0]",
      `a probe target of WAN wan0 (links[${WAN0}].probe.targets[1])`,
    );
  });

  it("rejects a blocklist entry covering an upstream resolver of the router: it could resolve no name", () => {
    expectRejected(
      blocklist("2606:4700::/32"),
      "router:dataplane.blocklist[0]",
      "covers 2606:4700:4700::1111, an upstream resolver of the router (dns.upstreams[2])",
    );
  });

  it.each(["0.0.0.0/0", "::/0"])("rejects %s in the blocklist: every source would be dropped", (cidr) => {
    expectRejected(blocklist(cidr), "router:dataplane.blocklist[0]", `${cidr} covers every address`);
  });

  it.each(["0.0.0.0/0", "::/0"])(
    "rejects %s in the allowlist: every source would pass the guard unfiltered",
    (cidr) => {
      expectRejected(
        devWith("dataplane.allowlist", ["192.0.2.0/24", cidr]),
        "router:dataplane.allowlist[1]",
        `${cidr} lets every source past the guard`,
      );
    },
  );

  it("reports every offending entry at once, and accepts prefixes next to the lifelines", () => {
    const r = parseSite(blocklist("1.1.1.0/24", "9.9.9.9/32", "1.1.2.0/24", "9.9.8.0/24"));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const WAN1 = indexOf(dev, "links", "wan1");
    // 1.1.1.1 and 9.9.9.9 are probe targets of both WANs and upstream resolvers
    expect(r.issues.map((i) => `${i.path} ${/\(([^)]+)\)/.exec(i.message)?.[1]}`).sort()).toEqual(
      [
        `router:dataplane.blocklist[0] links[${WAN0}].probe.targets[0]`,
        `router:dataplane.blocklist[0] links[${WAN1}].probe.targets[0]`,
        "router:dataplane.blocklist[0] dns.upstreams[0]",
        `router:dataplane.blocklist[1] links[${WAN0}].probe.targets[1]`,
        `router:dataplane.blocklist[1] links[${WAN1}].probe.targets[1]`,
        "router:dataplane.blocklist[1] dns.upstreams[1]",
      ].sort(),
    );
    expectValid(blocklist("1.1.2.0/24", "9.9.8.0/24", "1.0.0.0/24"));
  });
});

describe("management", () => {
  it("rejects a site without management zone: nothing could reach the router's own API", () => {
    expectRejected(devWith(`zones[${MGMT_ZONE}].management`, false), "router:zones", "no management zone");
  });

  it("rejects a site whose management zone holds no segment: the router would be unreachable", () => {
    expectRejected(
      devWith(`segments[${MGMT}].zone`, "trusted"),
      "router:segments",
      "no segment is in a management zone (mgmt)",
    );
  });

  it("says so also when router:node is missing, beside that problem (every problem at once)", () => {
    const raw = deleteAt(devWith(`segments[${MGMT}].zone`, "trusted"), "node");
    expectRejected(raw, "router:segments", "no segment is in a management zone (mgmt)");
    expectRejected(raw, "router:node", "is required");
  });

  it.each([
    ["10.10.0.2", "a client's address in the management segment"],
    ["10.20.0.1", "the router's address in a non-management segment"],
  ])("rejects managementAddress %s (%s): talosctl and kubectl would talk to the wrong host", (address) => {
    expectRejected(
      devWith("node.managementAddress", address),
      "router:node.managementAddress",
      "is not the router's address on a management segment (allowed: 10.10.0.1, fd12:3456:789a:10::1)",
    );
  });

  it("accepts the management segment's IPv6 gateway in upper case as managementAddress, in canonical form", () => {
    const site = expectValid(devWith("node.managementAddress", "FD12:3456:789A:10::1"));
    expect(site.node.managementAddress).toBe("fd12:3456:789a:10::1");
    expect(planSite(site).managementSegment).toBe("mgmt");
  });
});

describe("IPv6-only segments", () => {
  /** The guest segment without IPv4, DHCPv6 handing out its addresses. */
  const ipv6Only = () =>
    edited(devSiteRaw(), (s) => {
      delete s.segments[GUEST].ipv4;
      s.segments[GUEST].dhcpv6 = { enabled: true };
    });

  it("accepts a segment without ipv4 and plans it without IPv4 and without DHCPv4", () => {
    const plan = planSite(expectValid(ipv6Only()));
    const guest = plan.segments.find((x) => x.name === "guest")!;
    expect(guest.ipv4).toBeUndefined();
    expect(guest.ipv6?.gatewayCidr).toBe("fd12:3456:789a:40::1/64");
    expect(guest.dhcp).toMatchObject({ enabled: false, pool: undefined });
  });

  it("rejects a segment with neither ipv4 nor ipv6 at the segment: it would have no addresses at all", () => {
    const raw = ipv6Only();
    deleteAt(raw, `segments[${GUEST}].ipv6`);
    deleteAt(raw, `segments[${GUEST}].dhcpv6`);
    expectRejected(raw, `router:segments[${GUEST}]`, "has no addresses (allowed: ipv4.cidr, ipv6.prefix or both");
  });

  it.each([
    ["range", { start: "10.40.0.100", end: "10.40.0.200" }],
    ["dnsServers", ["10.40.0.1"]],
  ])("rejects dhcp.%s on an IPv6-only segment: it is a DHCPv4 setting with nothing to apply to", (key, value) => {
    const raw = ipv6Only();
    setAt(raw, `segments[${GUEST}].dhcp`, { [key]: value });
    expectRejected(
      raw,
      `router:segments[${GUEST}].dhcp.${key}`,
      "is a DHCPv4 setting, but the segment has no IPv4 subnet",
    );
  });

  it("rejects dhcp.enabled: true on an IPv6-only segment", () => {
    const raw = ipv6Only();
    setAt(raw, `segments[${GUEST}].dhcp`, { enabled: true });
    expectRejected(raw, `router:segments[${GUEST}].dhcp.enabled`, "DHCPv4 needs an IPv4 subnet");
  });

  it("rejects an IPv4 reservation on an IPv6-only segment", () => {
    const raw = ipv6Only();
    setAt(raw, `segments[${GUEST}].dhcp`, {
      reservations: [{ name: "tv", mac: "00:1a:2b:00:40:01", ipv4: "10.40.0.9" }],
    });
    expectRejected(raw, `router:segments[${GUEST}].dhcp.reservations[0].ipv4`, "the segment has no IPv4 subnet");
  });

  it("rejects OSPF on an IPv6-only segment: OSPFv2 speaks IPv4", () => {
    const raw = ipv6Only();
    setAt(raw, "routing", { ospf: { routerId: "10.10.0.1", segments: ["guest"] } });
    expectRejected(raw, "router:routing.ospf.segments[0]", 'segment "guest" is IPv6-only, and OSPFv2 speaks IPv4');
  });
});

describe("the install disk", () => {
  it("accepts a model pattern with *, which Talos' disk glob() matches", () => {
    expectValid(devWith("node.installDisk", { model: "Samsung SSD 980*" }));
  });

  it.each(["Samsung SSD 98?", "Samsung SSD [89]80"])(
    "rejects the pattern %s: Talos' glob() knows only *, so the selector would match no disk",
    (model) => {
      expectRejected(
        devWith("node.installDisk", { model }),
        "router:node.installDisk.model",
        "which Talos' disk glob() compares literally, so no disk would match (allowed: * as the only wildcard",
      );
    },
  );
});

describe("Talos", () => {
  it("rejects a Talos version other than 1.14.x: the rendered config format is 1.14's", () => {
    expectRejected(devWith("talos.version", "v1.13.4"), "router:talos.version", "allowed: v1.14.x");
  });

  it("rejects an installer image whose tag differs from the version: the node would install another release", () => {
    const version = String(view(dev).talos.version);
    const other = version === "v1.14.0" ? "v1.14.1" : "v1.14.0";
    const image = String(view(dev).talos.installerImage).replace(/:v[\d.]+$/, `:${other}`);
    expectRejected(
      devWith("talos.installerImage", image),
      "router:talos.installerImage",
      `tag ${other} does not match talos.version ${version}`,
    );
  });
});

describe("upstream resolvers", () => {
  it("rejects a DoT or DoH upstream without tlsServerName: Talos refuses it, as the resolver's certificate could not be checked", () => {
    for (const protocol of ["DoT", "DoH"])
      expectRejected(
        devWith("dns.upstreams[0]", { address: "1.1.1.1", protocol }),
        "router:dns.upstreams[0].tlsServerName",
        `is missing for a ${protocol} upstream`,
      );
  });

  it("rejects tlsServerName on a plain-DNS upstream: Talos refuses it, and it would suggest a check that never happens", () => {
    expectRejected(
      devWith("dns.upstreams[0]", { address: "9.9.9.9", protocol: "Do53", tlsServerName: "dns.quad9.net" }),
      "router:dns.upstreams[0].tlsServerName",
      "is set for a plain-DNS (Do53) upstream",
    );
  });
});

describe("the router's clock at boot", () => {
  it("rejects NTP servers named only by hostname when every upstream resolver is encrypted: the router could not set its clock, check the resolvers' certificates or finish booting", () => {
    expectRejected(
      devWith("ntp.servers", ["time.cloudflare.com", "0.pool.ntp.org"]),
      "router:ntp.servers",
      "names NTP servers only by hostname while every router:dns.upstreams entry is encrypted",
    );
  });

  it("accepts hostnames beside one NTP server by address, or beside a plain-DNS upstream", () => {
    expectValid(devWith("ntp.servers", ["2606:4700:f1::1", "time.cloudflare.com"]));
    expectValid(
      edited(devSiteRaw(), (s) => {
        s.ntp.servers = ["time.cloudflare.com"];
        s.dns.upstreams.push({ address: "9.9.9.9", protocol: "Do53" });
      }),
    );
  });
});

describe("registry credentials", () => {
  it("rejects a site without a registry: the services image and the data-plane extension would have nowhere to go", () => {
    const raw = devWithout("registry");
    delete raw.registryPassword;
    expectRejected(raw, "router:registry", "network-services image and the data-plane extension are published there");
  });

  it("rejects a registry username without registryPassword: image pulls would fail on the box", () => {
    expectRejected(
      devWithout("registryPassword"),
      "router:registryPassword",
      "is not set but router:registry.username is",
    );
  });

  it("rejects registryPassword without a registry username: the secret would be silently unused", () => {
    expectRejected(
      devWithout("registry.username"),
      "router:registryPassword",
      "is set but router:registry.username is not",
    );
  });

  it("never shows the value of registryPassword in any message, whatever else is wrong", () => {
    const secret = "hunter2-Sup3r-s3cret-value";
    const cases: RawSite[] = [
      setAt(devWithout("registry.username"), "registryPassword", secret),
      setAt(devWith(`segments[${IOT}].vlan`, "30"), "registryPassword", secret),
      setAt(devWith("registry.password", secret), "registryPassword", secret),
      setAt(devWithout("registry"), "registryPassword", secret),
    ];
    for (const raw of cases) {
      const r = parseSite(raw);
      expect(r.ok).toBe(false);
      const issues = r.ok ? [] : r.issues;
      for (const i of issues) expect(`${i.path} ${i.message}`).not.toContain(secret);
      expect(new SiteValidationError(issues).message).not.toContain(secret);
    }
  });
});

describe("the data plane's XDP mode", () => {
  it("rejects an unknown XDP mode and lists the allowed ones: a typo must not silently pick a mode the NIC cannot run", () => {
    expectRejected(
      devWith("dataplane.xdpMode", "driver"),
      "router:dataplane.xdpMode",
      "is not an XDP mode (allowed: native, native-only, generic)",
    );
  });

  it("accepts native-only, the strict mode that treats a driver without native XDP as an error", () => {
    expect(expectValid(devWith("dataplane.xdpMode", "native-only")).dataplane.xdpMode).toBe("native-only");
  });
});

describe("reporting", () => {
  it("reports every problem at once, so an operator fixes a site in one round", () => {
    const raw = devSiteRaw();
    raw.firewal = {};
    setAt(raw, "site.name", "Lab!");
    setAt(raw, "talos.version", "v1.13.0");
    setAt(raw, `segments[${GUEST}].vlan`, 0);
    setAt(raw, "cluster.serviceCidrs[0]", "10.96.0.1/12");
    setAt(raw, "dns.upstreams[0].address", "one.one.one.one");
    const r = parseSite(raw);
    if (r.ok) return expect.fail("a site with six mistakes parsed");
    const paths = new Set(r.issues.map((i) => i.path));
    expect(r.issues.length).toBeGreaterThanOrEqual(6);
    expect([...paths]).toEqual(
      expect.arrayContaining([
        "router:firewal",
        "router:site.name",
        "router:talos.version",
        `router:segments[${GUEST}].vlan`,
        "router:cluster.serviceCidrs[0]",
        "router:dns.upstreams[0].address",
      ]),
    );
  });

  it("finds a duplicate name whose twin is broken: the name is there to see even where the element fails", () => {
    const raw = devWith(`segments[${IOT}].vlan`, 0);
    type Named = { name: string } & Record<string, unknown>;
    const lists = raw as unknown as { segments: Named[]; links: Named[]; zones: Named[] };
    setAt(raw, `segments[${SERVERS}].name`, lists.segments[IOT].name);
    lists.links.push({ ...structuredClone(lists.links[0]), mtu: "big" });
    lists.zones.push({ name: lists.zones[0].name, management: "yes" });
    const r = parseSite(raw);
    expectIssue(r, `router:segments[${IOT}].vlan`, "is outside 1–4094");
    expectIssue(r, `router:segments[${SERVERS}].name`, `duplicate segment name "${lists.segments[IOT].name}"`);
    expectIssue(r, `router:links[${lists.links.length - 1}].name`, `duplicate link "${lists.links[0].name}"`);
    expectIssue(r, `router:zones[${lists.zones.length - 1}].name`, `duplicate zone "${lists.zones[0].name}"`);
  });

  it("keeps checking the elements of a list that parsed when another element is broken", () => {
    // The iot segment does not parse; the duplicate VLAN between mgmt and servers must still be found.
    const raw = devWith(`segments[${IOT}].vlan`, 0);
    setAt(raw, `segments[${SERVERS}].vlan`, 10);
    const r = parseSite(raw);
    expectIssue(r, `router:segments[${IOT}].vlan`, "is outside 1–4094");
    expectIssue(r, `router:segments[${SERVERS}].vlan`, "duplicate VLAN id 10 on lan0");
  });

  it("checks every segment, forward and rule that parsed when others fail to parse: the rest would appear only on the next run", () => {
    const raw = devWith(`segments[${TRUSTED}].vlan`, "20");
    setAt(raw, `segments[${IOT}].zone`, "nowhere");
    setAt(raw, "portForwards[0].to", "10.99.0.5");
    setAt(raw, "firewall.rules[0].action", "allow");
    setAt(raw, "firewall.rules[1].from", "nowhere");
    const r = parseSite(raw);
    expectIssue(r, `router:segments[${TRUSTED}].vlan`, "expected a number");
    expectIssue(r, `router:segments[${IOT}].zone`, 'unknown zone "nowhere"');
    expectIssue(r, "router:portForwards[0].to", "10.99.0.5 is outside every segment");
    expectIssue(r, "router:firewall.rules[0].action", "is not an action");
    // The broken rule is left out, and the next one keeps its own index in the report.
    expectIssue(r, "router:firewall.rules[1].from", 'unknown zone "nowhere"');
  });

  it("checks an element with an unknown key like any other, so the misspelt key does not hide its other problems", () => {
    const raw = devWith(`segments[${GUEST}].vlanId`, 40);
    setAt(raw, `segments[${GUEST}].ipv4.gateway`, "10.40.0.0");
    const r = parseSite(raw);
    expectIssue(r, `router:segments[${GUEST}].vlanId`, "unknown key");
    expectIssue(r, `router:segments[${GUEST}].ipv4.gateway`, "is not a host address of 10.40.0.0/24");
  });

  it("checks the links against every NIC alias given, also one whose NIC fails to parse", () => {
    const raw = devWith(`node.nics[${NIC_LAN0}].mac`, "00:1a:2b:3c:4d");
    setAt(raw, `links[${WAN0}].name`, "ghost0");
    const r = parseSite(raw);
    expectIssue(r, `router:node.nics[${NIC_LAN0}].mac`, "is not a MAC address");
    expectIssue(r, `router:links[${WAN0}].name`, '"ghost0" is neither a NIC alias nor a bond');
    // lan0's NIC is broken, not unknown: the trunk named after it is not reported.
    if (!r.ok) expect(r.issues.filter((i) => i.path === `router:links[${LAN0}].name`)).toEqual([]);
  });

  it("checks the management path even when other keys have problems: a lockout would otherwise show up last", () => {
    const raw = devWith("talos.version", "v1.13.0");
    const rules = getAt(raw, "firewall.rules") as unknown[];
    rules.push({ name: "lock", from: "mgmt", to: "router", protocol: "tcp", ports: [50000], action: "drop" });
    const r = parseSite(raw);
    expectIssue(r, "router:talos.version", "allowed: v1.14.x");
    expectIssue(r, `router:firewall.rules[${rules.length - 1}]`, "cuts the management path: tcp/50000");
  });

  it("does not report a reference to an element that failed to parse as unknown", () => {
    const raw = devWith(`zones[${indexOf(dev, "zones", "guest")}].services`, ["telnet"]);
    const r = parseSite(raw);
    if (r.ok) return expect.fail("the broken site parsed");
    expect(r.issues.map((i) => i.path)).toEqual([`router:zones[${indexOf(dev, "zones", "guest")}].services[0]`]);
  });

  it("lists issues sorted by path, with list indexes in numeric order, so the report reads like the config", () => {
    const issues: SiteIssue[] = [
      { path: "router:talos.version", message: "b" },
      { path: "router:segments[10].vlan", message: "c" },
      { path: "router:cluster.podCidrs[0]", message: "d" },
      { path: "router:segments[2].vlan", message: "z" },
      { path: "router:segments[2].vlan", message: "a" },
    ];
    expect(formatIssues(issues).split("\n")).toEqual([
      "  router:cluster.podCidrs[0]: d",
      "  router:segments[2].vlan: a",
      "  router:segments[2].vlan: z",
      "  router:segments[10].vlan: c",
      "  router:talos.version: b",
    ]);
  });

  it("formats the issues of a parsed site in path order", () => {
    const raw = devWith("talos.version", "v1.13.0");
    setAt(raw, `segments[${SERVERS}].vlan`, 0);
    setAt(raw, "cluster.podCidrs[0]", "10.244.0.1/16");
    const r = parseSite(raw);
    if (r.ok) return expect.fail("a broken site parsed");
    const paths = formatIssues(r.issues)
      .split("\n")
      .map((l) => l.trim().split(": ")[0]);
    expect(paths).toEqual(["router:cluster.podCidrs[0]", `router:segments[${SERVERS}].vlan`, "router:talos.version"]);
  });
});

describe("defaults of a valid site", () => {
  const site = expectValid(devSiteRaw());
  const plan = planSite(site);
  const iot = plan.segments.find((s) => s.name === "iot")!;

  it("gives a segment without dhcp section DHCP on, a one-day lease and no reservations", () => {
    expect(site.segments[IOT].dhcp).toMatchObject({ enabled: true, leaseTime: 86_400, reservations: [] });
    expect(site.segments[IOT].dhcp.range).toBeUndefined();
  });

  it("makes the first host address the IPv4 gateway and <prefix>::1 the IPv6 gateway", () => {
    expect(iot.ipv4?.gateway).toBe("10.30.0.1");
    expect(iot.ipv4?.gatewayCidr).toBe("10.30.0.1/23");
    expect(iot.ipv6?.gateway).toBe("fd12:3456:789a:30::1");
    expect(iot.ipv6?.gatewayCidr).toBe("fd12:3456:789a:30::1/64");
  });

  it("makes the upper half of the subnet, without broadcast, the DHCP pool", () => {
    expect(iot.dhcp.pool).toEqual({ start: "10.30.1.0", end: "10.30.1.254", size: 255 });
  });

  it("fills the node's optional settings with their safe defaults", () => {
    expect(site.node.wipeDisk).toBe(false);
    expect(site.node.allowWipeOnDestroy).toBe(false);
    expect(site.node.certSANs).toEqual([]);
    expect(site.cluster.dnsDomain).toBe("cluster.local");
  });

  it("stores MACs and IPv6 text in canonical lower case", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.node.nics[NIC_WAN0].mac = s.node.nics[NIC_WAN0].mac.toUpperCase();
      s.segments[IOT].ipv6 = { prefix: "FD12:3456:789A:0030::/64" };
    });
    const parsed = expectValid(raw);
    expect(parsed.node.nics[NIC_WAN0].mac).toBe("00:1a:2b:3c:4d:01");
    expect(parsed.segments[IOT].ipv6?.prefix).toBe("fd12:3456:789a:30::/64");
  });
});

describe("rules the site model does not enforce yet (each test documents a reported bug)", () => {
  it("rejects a segment MTU above its trunk's MTU: the kernel refuses a VLAN larger than its parent link", () => {
    expect(view(dev).links[LAN0].mtu).toBe(1500);
    expectRejected(devWith(`segments[${GUEST}].mtu`, 9000), `router:segments[${GUEST}].mtu`, "1500");
  });

  it("rejects a static WAN gateway equal to the router's own WAN address: the default route would point at itself", () => {
    expectRejected(
      devWith(`links[${WAN0}].ipv4`, { mode: "static", address: "203.0.113.10/24", gateway: "203.0.113.10" }),
      `router:links[${WAN0}].ipv4.gateway`,
      "203.0.113.10",
    );
  });

  it("does not claim that 0 is allowed when a size must be positive: the message would contradict the rejection", () => {
    expectRejected(
      devWith("node.installDisk.minSizeGiB", 0),
      "router:node.installDisk.minSizeGiB",
      /allowed: (> 0|≥ 1|[^)]* from 1 to)/,
    );
  });

  it("rejects a disk match the operator-side check cannot evaluate: the install would pick a disk nobody checked", () => {
    expectRejected(
      devWith("node.installDisk", { match: 'disk.model.matches("^Sam")' }),
      "router:node.installDisk.match",
      /unsupported method .* at column 12/,
    );
    expectRejected(
      devWith("node.installDisk", { match: "disk.size > 100 * GiB" }),
      "router:node.installDisk.match",
      "unsigned",
    );
    expectValid(
      devWith("node.installDisk", {
        match: '(disk.model == "A" || disk.serial.startsWith("S3")) && disk.size >= 64u * GiB',
      }),
    );
  });

  it("rejects a maintenance certificate fingerprint that talosctl would not parse: the pin would never match", () => {
    expectRejected(
      devWith("node.maintenanceCertFingerprint", "ab:cd:ef"),
      "router:node.maintenanceCertFingerprint",
      "base64",
    );
    expectValid(devWith("node.maintenanceCertFingerprint", "pLkYHFzO3b0u0VJ1VbOfT1xRjzN3L2H5hD0w6mqf0xU="));
  });
});
