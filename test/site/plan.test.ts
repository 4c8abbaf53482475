/**
 * Table tests of the pure planning functions (gateways, DHCP pools, link names, the whole plan of the dev site)
 * and of the address arithmetic they stand on.
 */
import { describe, expect, it } from "vitest";
import {
  canonicalAddress,
  canonicalCidr,
  compareAddresses,
  contains,
  familyOf,
  isAddress,
  isCidr,
  isNetworkAligned,
  netmask4,
  nthAddress,
  overlaps,
  prefixSize,
} from "../../components/site/ip";
import {
  defaultDhcpRange,
  planSite,
  segmentGateway4,
  segmentGateway6,
  segmentParent,
  vlanLinkName,
} from "../../components/site/plan";
import { devSiteRaw, edited, expectValid, indexOf, view } from "../helpers/site-fixtures";

describe("segmentGateway4", () => {
  it.each([
    [{ cidr: "10.10.0.0/24" }, "10.10.0.1"],
    [{ cidr: "10.30.0.0/23" }, "10.30.0.1"],
    [{ cidr: "192.168.100.4/30" }, "192.168.100.5"],
    [{ cidr: "10.10.0.0/24", gateway: "10.10.0.254" }, "10.10.0.254"],
  ])("plans %j with the router at %s", (ipv4, gateway) => {
    expect(segmentGateway4({ ipv4 })).toBe(gateway);
  });
});

describe("segmentGateway6", () => {
  it.each([
    [{ prefix: "fd12:3456:789a:10::/64" }, "fd12:3456:789a:10::1"],
    [{ prefix: "fd00::/64" }, "fd00::1"],
    [{ prefix: "fd00::/64", gateway: "fd00::fe" }, "fd00::fe"],
  ])("plans %j with the router at %s", (ipv6, gateway) => {
    expect(segmentGateway6({ ipv6 })).toBe(gateway);
  });

  it("plans no IPv6 gateway for a segment without IPv6", () => {
    expect(segmentGateway6({ ipv6: undefined })).toBeUndefined();
  });
});

describe("defaultDhcpRange", () => {
  it.each([
    ["10.10.0.0/24", "10.10.0.128", "10.10.0.254"],
    ["10.30.0.0/23", "10.30.1.0", "10.30.1.254"],
    ["10.0.0.0/16", "10.0.128.0", "10.0.255.254"],
    ["192.168.100.4/30", "192.168.100.6", "192.168.100.6"],
  ])("pools the upper half of %s without broadcast: %s–%s", (cidr, start, end) => {
    expect(defaultDhcpRange(cidr)).toEqual({ start, end });
  });
});

describe("vlanLinkName", () => {
  it.each([
    ["lan0", 10, "lan0.10"],
    ["bond0", 4094, "bond0.4094"],
    ["verylongtrunk", 4000, "verylongtrunk.4000"],
  ])("names VLAN %s on %s as %s", (parent, vlan, name) => {
    expect(vlanLinkName(parent, vlan)).toBe(name);
  });
});

describe("segmentParent", () => {
  const links = [
    { name: "wan0", role: "wan" as const },
    { name: "lan0", role: "trunk" as const },
  ];

  it("puts a segment without link on the only trunk", () => {
    expect(segmentParent({ links }, {})).toBe("lan0");
  });

  it("keeps the link a segment names", () => {
    expect(segmentParent({ links }, { link: "lan1" })).toBe("lan1");
  });

  it("gives no parent when several trunks exist and the segment names none", () => {
    expect(segmentParent({ links: [...links, { name: "lan1", role: "trunk" }] }, {})).toBeUndefined();
  });
});

describe("planSite on the dev site", () => {
  const raw = view(devSiteRaw());
  const site = expectValid(devSiteRaw());
  const plan = planSite(site);
  const wanLinks = raw.links.filter((l) => l.role === "wan");

  it("finds the management segment carrying the management address", () => {
    expect(plan.managementSegment).toBe("mgmt");
    expect(plan.managementAddress).toBe("10.10.0.1");
    expect(plan.maintenanceAddress).toBe("192.168.1.150");
  });

  it("names the host from node.hostname and the site domain", () => {
    expect(plan.hostname).toBe("lab-rtr1");
    expect(plan.fqdn).toBe("lab-rtr1.lab.home.arpa");
  });

  it("orders segments by VLAN id and names their links <trunk>.<vlan>", () => {
    expect(plan.segments.map((s) => [s.name, s.link])).toEqual([
      ["mgmt", "lan0.10"],
      ["trusted", "lan0.20"],
      ["iot", "lan0.30"],
      ["guest", "lan0.40"],
      ["servers", "lan0.50"],
    ]);
    expect(plan.trunks).toEqual([
      { name: "lan0", mtu: 1500, bond: undefined, vlans: ["lan0.10", "lan0.20", "lan0.30", "lan0.40", "lan0.50"] },
    ]);
  });

  it("lists every kernel link name once, sorted: the WANs, the trunk and one VLAN link per segment", () => {
    const expected = [...wanLinks.map((l) => l.name), "lan0", "lan0.10", "lan0.20", "lan0.30", "lan0.40", "lan0.50"];
    expect(plan.linkNames).toEqual([...expected].sort());
  });

  it("puts WAN links and segment links into their zones", () => {
    const byName = Object.fromEntries(plan.zones.map((z) => [z.name, z]));
    expect(plan.zones.map((z) => z.name)).toEqual([...raw.zones.map((z) => z.name)].sort());
    expect(byName.wan).toMatchObject({
      management: false,
      segments: [],
      links: wanLinks.filter((l) => (l.zone ?? "wan") === "wan").map((l) => l.name),
    });
    expect(byName.mgmt).toMatchObject({ management: true, segments: ["mgmt"], links: ["lan0.10"] });
    expect(byName.iot).toMatchObject({ management: false, segments: ["iot"], links: ["lan0.30"] });
  });

  it("plans each segment's addresses, domain and DHCP pool", () => {
    const iot = plan.segments.find((s) => s.name === "iot")!;
    expect(iot.domain).toBe("iot.lab.home.arpa");
    expect(iot.ipv4).toEqual({
      cidr: "10.30.0.0/23",
      prefixLength: 23,
      network: "10.30.0.0",
      netmask: "255.255.254.0",
      broadcast: "10.30.1.255",
      gateway: "10.30.0.1",
      gatewayCidr: "10.30.0.1/23",
      hosts: 510,
    });
    expect(iot.dhcp.pool).toEqual({ start: "10.30.1.0", end: "10.30.1.254", size: 255 });
  });

  it("sorts a segment's reservations by MAC, so renders do not change when the config is reordered", () => {
    const servers = indexOf(devSiteRaw(), "segments", "servers");
    const reordered = edited(devSiteRaw(), (s) => s.segments[servers].dhcp!.reservations!.reverse());
    const plannedServers = planSite(expectValid(reordered)).segments.find((s) => s.name === "servers")!;
    expect(plannedServers.dhcp.reservations.map((r) => r.mac)).toEqual(["00:1a:2b:00:50:01", "00:1a:2b:00:50:02"]);
  });

  it("orders the WANs by priority with route metric 1000 + priority, the DHCP/SLAAC uplink wan0 first", () => {
    expect(plan.wans.map((w) => w.name)).toEqual(
      [...wanLinks].sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0)).map((l) => l.name),
    );
    for (const w of plan.wans) expect(w.routeMetric).toBe(1000 + w.priority);
    expect(plan.wans[0]).toMatchObject({
      name: "wan0",
      zone: "wan",
      priority: 10,
      routeMetric: 1010,
      ipv4: { mode: "dhcp" },
      ipv6: { mode: "slaac" },
    });
  });
});

describe("planSite with several WANs", () => {
  /** Dev site with WANs wan0…wanN-1 only; `priorities[i]` is the priority of wan<i> (undefined: none set). */
  function withWans(priorities: (number | undefined)[]) {
    return expectValid(
      edited(devSiteRaw(), (s) => {
        const oldWans = new Set(s.links.filter((l) => l.role === "wan").map((l) => l.name));
        s.links = s.links.filter((l) => l.role !== "wan");
        s.node.nics = s.node.nics.filter((n) => !oldWans.has(n.alias));
        priorities.forEach((priority, i) => {
          s.node.nics.push({ alias: `wan${i}`, mac: `02:00:5e:00:04:0${i}` });
          s.links.push({ name: `wan${i}`, role: "wan", ...(priority === undefined ? {} : { priority }) });
        });
        // These WANs do no NAT66, so the dev site's IPv6 forward to a unique local address could not work.
        for (const f of s.portForwards ?? []) delete f.ipv6;
      }),
    );
  }

  it("orders WANs by priority, lowest first, with increasing route metrics", () => {
    const plan = planSite(withWans([30, 10, 20]));
    expect(plan.wans.map((w) => [w.name, w.routeMetric])).toEqual([
      ["wan1", 1010],
      ["wan2", 1020],
      ["wan0", 1030],
    ]);
  });

  it("prefers WANs in config order when none sets a priority", () => {
    const plan = planSite(withWans([undefined, undefined, undefined]));
    expect(plan.wans.map((w) => [w.name, w.routeMetric])).toEqual([
      ["wan0", 1100],
      ["wan1", 1101],
      ["wan2", 1102],
    ]);
  });

  it("gives every WAN its own route metric when only some set a priority: equal metrics make the default route a coin toss", () => {
    // wan0 has no priority (it defaults to 100 + its position, 100); wan1 sets 100 explicitly. The site parses.
    const plan = planSite(withWans([undefined, 100]));
    const metrics = plan.wans.map((w) => w.routeMetric);
    expect(new Set(metrics).size, `route metrics ${metrics.join(", ")}`).toBe(plan.wans.length);
  });
});

describe("ip: overlaps", () => {
  it.each([
    ["10.0.0.0/24", "10.0.0.0/24", true],
    ["10.0.0.0/16", "10.0.42.0/24", true],
    ["10.0.42.0/24", "10.0.0.0/16", true],
    ["10.0.0.0/24", "10.0.1.0/24", false],
    ["10.0.0.0/25", "10.0.0.128/25", false],
    ["0.0.0.0/0", "192.0.2.0/24", true],
    ["fd00::/56", "fd00:0:0:ff::/64", true],
    ["fd00::/64", "fd00:0:0:1::/64", false],
    ["10.0.0.0/8", "::/0", false],
  ])("%s and %s overlap: %s", (a, b, expected) => {
    expect(overlaps(a, b)).toBe(expected);
  });
});

describe("ip: contains", () => {
  it.each([
    ["10.0.0.0/24", "10.0.0.0", true],
    ["10.0.0.0/24", "10.0.0.255", true],
    ["10.0.0.0/24", "10.0.1.0", false],
    ["10.0.0.0/24", "9.255.255.255", false],
    ["fd00::/64", "fd00::ffff:ffff:ffff:ffff", true],
    ["fd00::/64", "fd00:0:0:1::", false],
    ["10.0.0.0/24", "::ffff:10.0.0.1", false],
    ["fd00::/64", "10.0.0.1", false],
  ])("%s contains %s: %s", (cidr, address, expected) => {
    expect(contains(cidr, address)).toBe(expected);
  });
});

describe("ip: nthAddress", () => {
  it.each([
    ["10.0.0.0/24", 0, "10.0.0.0"],
    ["10.0.0.0/24", 1, "10.0.0.1"],
    ["10.0.0.0/24", -1, "10.0.0.255"],
    ["10.0.0.0/24", -2, "10.0.0.254"],
    ["10.0.0.0/23", 256, "10.0.1.0"],
    ["10.0.0.0/30", 3, "10.0.0.3"],
    ["10.0.0.0/30", -4, "10.0.0.0"],
    ["fd00::/64", 1, "fd00::1"],
    ["fd00::/64", -1, "fd00::ffff:ffff:ffff:ffff"],
    ["fd00::/64", 65536n, "fd00::1:0"],
  ])("counts %s by %s to %s", (cidr, offset, address) => {
    expect(nthAddress(cidr, offset)).toBe(address);
  });

  it.each([
    ["10.0.0.0/30", 4],
    ["10.0.0.0/30", -5],
    ["fd00::/127", 2],
  ])("refuses to count %s by %s, past its end", (cidr, offset) => {
    expect(() => nthAddress(cidr, offset)).toThrow(/is outside/);
  });
});

describe("ip: canonical text", () => {
  it.each([
    ["FD00:0010:0000::0001", "fd00:10::1"],
    ["2001:DB8::A", "2001:db8::a"],
    ["fd00:0:0:0:0:0:0:1", "fd00::1"],
    ["10.0.0.1", "10.0.0.1"],
  ])("writes the address %s as %s", (input, canonical) => {
    expect(canonicalAddress(input)).toBe(canonical);
  });

  it.each([
    ["FD00:10:0::/64", "fd00:10::/64"],
    ["10.0.0.1/24", "10.0.0.0/24"],
  ])("writes the prefix %s as %s", (input, canonical) => {
    expect(canonicalCidr(input)).toBe(canonical);
  });
});

describe("ip: isNetworkAligned", () => {
  it.each([
    ["10.0.0.0/24", true],
    ["10.0.0.1/24", false],
    ["10.0.1.0/23", false],
    ["10.0.2.0/23", true],
    ["fd00:10::/64", true],
    ["fd00:10::1/64", false],
    ["0.0.0.0/0", true],
  ])("%s is network-aligned: %s", (cidr, expected) => {
    expect(isNetworkAligned(cidr)).toBe(expected);
  });
});

describe("ip: recognising text", () => {
  it.each([
    ["10.0.0.1", 4],
    ["fd00::1", 6],
    ["10.0.0.0/24", 4],
    ["not-an-ip", undefined],
    ["10.0.0.256", undefined],
  ])("%s is of family %s", (text, family) => {
    expect(familyOf(text)).toBe(family);
  });

  it.each([
    ["10.0.0.1", undefined, true],
    ["10.0.0.1", 6, false],
    ["10.0.0.1/32", undefined, false],
    ["fd00::1%eth0", undefined, false],
  ] as const)("%s is an address (family %s): %s", (text, family, expected) => {
    expect(isAddress(text, family)).toBe(expected);
  });

  it.each([
    ["10.0.0.0/24", 4, true],
    ["10.0.0.0/33", undefined, false],
    ["10.0.0.0", undefined, false],
    ["fd00::/129", undefined, false],
    ["fd00::/64", 4, false],
  ] as const)("%s is a CIDR (family %s): %s", (text, family, expected) => {
    expect(isCidr(text, family)).toBe(expected);
  });
});

describe("ip: sizes and order", () => {
  it.each([
    ["10.0.0.0/24", 256n],
    ["10.0.0.0/30", 4n],
    ["fd00::/64", 1n << 64n],
  ])("%s holds %s addresses", (cidr, size) => {
    expect(prefixSize(cidr)).toBe(size);
  });

  it.each([
    [0, "0.0.0.0"],
    [23, "255.255.254.0"],
    [24, "255.255.255.0"],
    [30, "255.255.255.252"],
    [32, "255.255.255.255"],
  ])("writes a /%s netmask as %s", (length, mask) => {
    expect(netmask4(length)).toBe(mask);
  });

  it("compares addresses numerically, not as text", () => {
    expect(["10.0.0.10", "10.0.0.9", "10.0.0.100"].sort(compareAddresses)).toEqual([
      "10.0.0.9",
      "10.0.0.10",
      "10.0.0.100",
    ]);
    expect(compareAddresses("fd00::1", "fd00::1")).toBe(0);
  });
});
