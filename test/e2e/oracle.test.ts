/**
 * The e2e's independent policy oracle (lib/oracle.ts) on hand-written tables: each row is what the documented
 * policy means for one connection on a small hand-written site, worked out by hand, not by running code.
 */
import { describe, expect, it } from "vitest";
import { rawSiteConfig } from "../../components/site/load";
import { parseSite } from "../../components/site/parse";
import type { Site } from "../../components/site/schema";
import { devStack } from "../helpers/stacks";
import { PolicyOracle, within, type OracleFlow } from "./lib/oracle";

/**
 * Zones: wan (uplink "fiber", NAT66) and "cable" (zone isp, no NAT66); mgmt (management), home, kids, iot, dmz.
 * Segments: mgmt 10.70.10.0/24, home 10.70.20.0/24 + 2a02:c207:9:20::/64, kids 10.70.30.0/24, iot 10.70.40.0/24
 * and 10.70.41.0/24 (two segments), dmz 10.70.60.0/24 + fd70:60::/64. Routes: 10.80.0.0/16 via a dmz host,
 * 10.80.5.0/24 via a home host, 198.51.100.0/24 (public) via a home host.
 * Routing: OSPF on home; BGP neighbours 10.70.60.2 (dmz, BFD) and 10.70.30.2 (kids).
 */
function handSite(): Site {
  const cfg = devStack((raw) => {
    raw.node = {
      hostname: "t",
      managementAddress: "10.70.10.1",
      installDisk: { type: "ssd" },
      nics: [
        { alias: "fiber", mac: "00:1a:2b:3c:7a:01" },
        { alias: "cable", mac: "00:1a:2b:3c:7a:02" },
        { alias: "lan0", mac: "00:1a:2b:3c:7a:03" },
      ],
    };
    raw.links = [
      { name: "fiber", role: "wan", priority: 10, nat: { ipv4: "masquerade", ipv6: "masquerade" } },
      { name: "cable", role: "wan", zone: "isp", priority: 20, ipv6: { mode: "none" } },
      { name: "lan0", role: "trunk" },
    ];
    raw.segments = [
      { name: "mgmt", vlan: 10, zone: "mgmt", ipv4: { cidr: "10.70.10.0/24" } },
      {
        name: "home",
        vlan: 20,
        zone: "home",
        ipv4: { cidr: "10.70.20.0/24" },
        ipv6: { prefix: "2a02:c207:9:20::/64" },
      },
      { name: "kids", vlan: 30, zone: "kids", ipv4: { cidr: "10.70.30.0/24" } },
      { name: "iot-a", vlan: 40, zone: "iot", ipv4: { cidr: "10.70.40.0/24" } },
      { name: "iot-b", vlan: 41, zone: "iot", ipv4: { cidr: "10.70.41.0/24" } },
      { name: "dmz", vlan: 60, zone: "dmz", ipv4: { cidr: "10.70.60.0/24" }, ipv6: { prefix: "fd70:60::/64" } },
    ];
    raw.zones = [
      { name: "wan", services: ["ping"] },
      { name: "isp" },
      { name: "mgmt", management: true },
      { name: "home", services: ["dhcp", "dns"] },
      { name: "kids", services: ["dhcp"] },
      { name: "iot" },
      { name: "dmz", services: [] },
    ];
    raw.firewall = {
      defaultAction: "reject",
      addressGroups: [{ name: "cams", addresses: ["10.70.40.20", "10.70.41.0/28"] }],
      policies: [
        { from: "mgmt", to: "any", action: "accept" },
        { from: "home", to: "any", action: "accept" },
        { from: "home", to: "kids", action: "drop" },
        { from: "any", to: "kids", action: "accept" },
        { from: "any", to: "any", action: "drop" },
        { from: "kids", to: "iot", action: "reject" },
        { from: "iot", to: "any", action: "drop" },
      ],
      rules: [
        { name: "kids-web", from: "kids", to: "wan", protocol: "tcp", ports: [80, "443-444"], action: "accept" },
        { name: "kids-no-web-to-dmz", from: "kids", to: "dmz", protocol: "tcp+udp", ports: [443], action: "reject" },
        { name: "kids-dmz", from: "kids", to: "dmz", action: "accept" },
        {
          name: "home-cams",
          from: "home",
          to: "iot",
          protocol: "tcp",
          ports: [554],
          destination: ["@cams"],
          action: "reject",
        },
        { name: "v4-only-source", from: "home", to: "dmz", source: ["10.70.20.0/25"], action: "reject" },
        { name: "no-dns-for-kids", from: "kids", to: "router", protocol: "udp", ports: [53], action: "reject" },
        {
          name: "no-tcp-dns-upper-home",
          from: "home",
          to: "router",
          protocol: "tcp",
          ports: [53],
          source: ["10.70.20.128/25"],
          destination: ["10.70.20.1"],
          action: "reject",
        },
        { name: "no-icmp", from: "any", to: "any", protocol: "icmp", action: "drop" },
      ],
    };
    raw.portForwards = [
      { name: "web", protocol: "tcp", port: "8000-8009", to: "10.70.60.10", toPort: 9000, ipv6: "fd70:60::10" },
      { name: "vpn", protocol: "udp", port: 1194, to: "10.70.60.11", wans: ["cable"], hairpin: false },
      { name: "admin", protocol: "tcp", port: 2222, to: "10.70.60.12", toPort: 22, sources: ["81.2.69.160/27"] },
      { name: "www6", protocol: "tcp", port: 443, to: "10.70.20.15", ipv6: "2a02:c207:9:20::15", wans: ["fiber"] },
      {
        name: "cam6",
        protocol: "tcp",
        port: 8443,
        to: "10.70.20.16",
        toPort: 443,
        ipv6: "2a02:c207:9:20::16",
        wans: ["fiber"],
        hairpin: false,
      },
    ];
    raw.mdns = { reflect: [{ name: "cast", zones: ["home", "iot"] }] };
    raw.routes = [
      { destination: "10.80.0.0/16", gateway: "10.70.60.254" },
      { destination: "10.80.5.0/24", gateway: "10.70.20.254" },
      { destination: "198.51.100.0/24", gateway: "10.70.20.253" },
    ];
    raw.routing = {
      ospf: { routerId: "10.70.10.1", segments: ["home"] },
      bgp: {
        asn: 65001,
        routerId: "10.70.10.1",
        neighbors: [
          { address: "10.70.60.2", asn: 65002, bfd: true },
          { address: "10.70.30.2", asn: 65003 },
        ],
      },
    };
    raw.ids = undefined; // the dev site's IDS names its own segments; the zone policy is what the oracle models
    // the router's DNS: home forced by redirect, iot forced by reject, mgmt encrypted; kids has no
    // dns service, so the router serves (and forces) nothing there
    raw.dns = {
      ...(raw.dns as object),
      zones: [
        { zone: "home", force: "redirect" },
        { zone: "iot", force: "reject" },
        { zone: "mgmt", encrypted: true },
      ],
    };
  });
  const r = parseSite(rawSiteConfig(cfg.values));
  if (!r.ok) throw new Error(JSON.stringify(r.issues, null, 1));
  return r.site;
}

const oracle = new PolicyOracle(handSite());
const WAN4 = "81.23.10.2";
const CABLE4 = "89.44.20.2";
const WAN6 = "2a02:c207:1:10::2";
const NET = "93.184.216.34";

type Row = [
  string,
  Partial<OracleFlow> & Pick<OracleFlow, "from" | "to">,
  string,
  string,
  { address: string; port?: number }?,
];

function flow(f: Row[1]): OracleFlow {
  return { proto: "tcp", port: 8080, src: "10.70.20.50", dst: "10.70.60.50", ...f };
}

describe("the independent policy oracle", () => {
  it.each<Row>([
    // rules: first match, ports, protocols, addresses
    [
      "a rule's port list admits a port of its range",
      flow({ from: "kids", to: "wan", src: "10.70.30.5", dst: NET, port: 444 }),
      "accept",
      "rule:kids-web",
    ],
    [
      "…and nothing outside it: the policies decide (any>any)",
      flow({ from: "kids", to: "wan", src: "10.70.30.5", dst: NET, port: 445 }),
      "drop",
      "policy:any>any",
    ],
    [
      "the first matching rule wins over a later one",
      flow({ from: "kids", to: "dmz", src: "10.70.30.5", port: 443, proto: "udp" }),
      "reject",
      "rule:kids-no-web-to-dmz",
    ],
    [
      "a later rule decides what the earlier does not match",
      flow({ from: "kids", to: "dmz", src: "10.70.30.5", port: 22 }),
      "accept",
      "rule:kids-dmz",
    ],
    [
      "a rule with ports never matches ICMP",
      flow({ from: "kids", to: "dmz", src: "10.70.30.5", proto: "icmp", port: undefined }),
      "accept",
      "rule:kids-dmz",
    ],
    [
      "a rule without protocol matches ICMP",
      flow({ from: "home", to: "wan", proto: "icmp", port: undefined, dst: NET }),
      "drop",
      "rule:no-icmp",
    ],
    [
      "a group's address is a destination",
      flow({ from: "home", to: "iot", dst: "10.70.40.20", port: 554 }),
      "reject",
      "rule:home-cams",
    ],
    [
      "a group's prefix is a destination",
      flow({ from: "home", to: "iot", dst: "10.70.41.9", port: 554 }),
      "reject",
      "rule:home-cams",
    ],
    [
      "outside the group the policy decides",
      flow({ from: "home", to: "iot", dst: "10.70.41.99", port: 554 }),
      "accept",
      "policy:home>any",
    ],
    [
      "a source list of one family does not match the other family",
      flow({ from: "home", to: "dmz", src: "2a02:c207:9:20::50", dst: "fd70:60::50" }),
      "accept",
      "policy:home>any",
    ],
    [
      "a source list matches inside its prefix",
      flow({ from: "home", to: "dmz", src: "10.70.20.100" }),
      "reject",
      "rule:v4-only-source",
    ],
    ["…and not outside it", flow({ from: "home", to: "dmz", src: "10.70.20.200" }), "accept", "policy:home>any"],
    // policies by specificity, intra-zone, default
    ["zone→zone beats zone→any", flow({ from: "home", to: "kids", dst: "10.70.30.9" }), "drop", "policy:home>kids"],
    [
      "zone→any beats any→zone",
      flow({ from: "iot", to: "kids", src: "10.70.40.9", dst: "10.70.30.9" }),
      "drop",
      "policy:iot>any",
    ],
    [
      "any→zone beats any→any",
      flow({ from: "dmz", to: "kids", src: "10.70.60.9", dst: "10.70.30.9" }),
      "accept",
      "policy:any>kids",
    ],
    [
      "any→any where nothing more specific",
      flow({ from: "dmz", to: "home", src: "10.70.60.9", dst: "10.70.20.9" }),
      "drop",
      "policy:any>any",
    ],
    [
      "within a zone a matching policy still decides",
      flow({ from: "iot", to: "iot", src: "10.70.40.9", dst: "10.70.41.9" }),
      "drop",
      "policy:iot>any",
    ],
    [
      "the WAN has no policy of its own: any→any",
      flow({ from: "wan", to: "dmz", src: NET, dst: "10.70.60.9", via: "fiber" }),
      "drop",
      "policy:any>any",
    ],
    // the router
    [
      "a rule to the router comes first",
      flow({ from: "kids", to: "router", src: "10.70.30.5", dst: "10.70.30.1", proto: "udp", port: 53 }),
      "reject",
      "rule:no-dns-for-kids",
    ],
    [
      "a rule to any zone is not a rule to the router",
      flow({ from: "home", to: "router", dst: "10.70.20.1", proto: "icmp", port: undefined }),
      "drop",
      "input-default",
    ],
    [
      "the management zone reaches the Talos API",
      flow({ from: "mgmt", to: "router", src: "10.70.10.5", dst: "10.70.10.1", port: 50000 }),
      "accept",
      "management",
    ],
    [
      "…and the data plane's metrics",
      flow({ from: "mgmt", to: "router", src: "10.70.10.5", dst: "10.70.10.1", port: 9430 }),
      "accept",
      "management",
    ],
    [
      "…but not the kubelet",
      flow({ from: "mgmt", to: "router", src: "10.70.10.5", dst: "10.70.10.1", port: 10250 }),
      "drop",
      "input-default",
    ],
    [
      "another zone does not reach the Kubernetes API, at any address",
      flow({ from: "home", to: "router", dst: "10.70.10.1", port: 6443 }),
      "drop",
      "input-default",
    ],
    [
      "a zone without services listed gets the defaults: ping",
      flow({ from: "mgmt", to: "router", src: "10.70.10.5", dst: "10.70.10.1", proto: "icmp", port: undefined }),
      "accept",
      "service:ping",
    ],
    [
      "…and NTP",
      flow({ from: "iot", to: "router", src: "10.70.40.5", dst: "10.70.40.1", proto: "udp", port: 123 }),
      "accept",
      "service:udp/123",
    ],
    [
      "listed services replace the defaults: no NTP",
      flow({ from: "home", to: "router", dst: "10.70.20.1", proto: "udp", port: 123 }),
      "drop",
      "input-default",
    ],
    [
      "DNS over TCP with dns",
      flow({ from: "home", to: "router", dst: "10.70.20.1", port: 53 }),
      "accept",
      "service:tcp/53",
    ],
    [
      "DHCPv6 with dhcp",
      flow({ from: "kids", to: "router", src: "10.70.30.5", dst: "10.70.30.1", proto: "udp", port: 547 }),
      "accept",
      "service:udp/547",
    ],
    [
      "mDNS in a reflection group",
      flow({ from: "home", to: "router", dst: "10.70.20.1", proto: "udp", port: 5353 }),
      "accept",
      "service:udp/5353",
    ],
    [
      "no mDNS outside one",
      flow({ from: "kids", to: "router", src: "10.70.30.5", dst: "10.70.30.1", proto: "udp", port: 5353 }),
      "drop",
      "input-default",
    ],
    [
      "an empty service list: nothing",
      flow({ from: "dmz", to: "router", src: "10.70.60.5", dst: "10.70.60.1", proto: "udp", port: 53 }),
      "drop",
      "input-default",
    ],
    [
      "a WAN zone with ping answers ping",
      flow({
        from: "wan",
        to: "router",
        src: NET,
        dst: WAN4,
        proto: "icmp",
        port: undefined,
        via: "fiber",
        wanAddressOf: "fiber",
      }),
      "accept",
      "service:ping",
    ],
    [
      "a WAN zone without services answers nothing",
      flow({
        from: "isp",
        to: "router",
        src: NET,
        dst: CABLE4,
        proto: "icmp",
        port: undefined,
        via: "cable",
        wanAddressOf: "cable",
      }),
      "drop",
      "input-default",
    ],
  ])("%s", (_name, f, verdict, by) => {
    expect(oracle.decide(flow(f))).toMatchObject({ verdict, by });
  });

  it.each<Row>([
    [
      "a forward's range maps onto toPort at the same offset",
      flow({ from: "wan", to: "router", src: NET, dst: WAN4, port: 8003, via: "fiber", wanAddressOf: "fiber" }),
      "accept",
      "forward:web",
      { address: "10.70.60.10", port: 9003 },
    ],
    [
      "a forward listens on every WAN by default",
      flow({ from: "isp", to: "router", src: NET, dst: CABLE4, port: 8000, via: "cable", wanAddressOf: "cable" }),
      "accept",
      "forward:web",
      { address: "10.70.60.10", port: 9000 },
    ],
    [
      "a forward on one WAN only is not on the other",
      flow({
        from: "wan",
        to: "router",
        src: NET,
        dst: WAN4,
        proto: "udp",
        port: 1194,
        via: "fiber",
        wanAddressOf: "fiber",
      }),
      "drop",
      "input-default",
    ],
    [
      "…and is on its own",
      flow({
        from: "isp",
        to: "router",
        src: NET,
        dst: CABLE4,
        proto: "udp",
        port: 1194,
        via: "cable",
        wanAddressOf: "cable",
      }),
      "accept",
      "forward:vpn",
      { address: "10.70.60.11", port: 1194 },
    ],
    [
      "a forward's protocol must match",
      flow({
        from: "isp",
        to: "router",
        src: NET,
        dst: CABLE4,
        proto: "tcp",
        port: 1194,
        via: "cable",
        wanAddressOf: "cable",
      }),
      "drop",
      "input-default",
    ],
    [
      "a source-restricted forward admits its sources",
      flow({
        from: "wan",
        to: "router",
        src: "81.2.69.170",
        dst: WAN4,
        port: 2222,
        via: "fiber",
        wanAddressOf: "fiber",
      }),
      "accept",
      "forward:admin",
      { address: "10.70.60.12", port: 22 },
    ],
    [
      "…and no one else",
      flow({
        from: "wan",
        to: "router",
        src: "81.2.69.200",
        dst: WAN4,
        port: 2222,
        via: "fiber",
        wanAddressOf: "fiber",
      }),
      "drop",
      "input-default",
    ],
    [
      "a global IPv6 target is a pinhole through the forward's WAN",
      flow({ from: "wan", to: "home", src: "2a00:1450::1", dst: "2a02:c207:9:20::15", port: 443, via: "fiber" }),
      "accept",
      "pinhole:www6",
      { address: "2a02:c207:9:20::15", port: 443 },
    ],
    [
      "…and not on another port",
      flow({ from: "wan", to: "home", src: "2a00:1450::1", dst: "2a02:c207:9:20::15", port: 444, via: "fiber" }),
      "drop",
      "policy:any>any",
    ],
    [
      "a global IPv6 target with toPort is reached at its own address on the public port, moved to toPort",
      flow({ from: "wan", to: "home", src: "2a00:1450::1", dst: "2a02:c207:9:20::16", port: 8443, via: "fiber" }),
      "accept",
      "pinhole:cam6",
      { address: "2a02:c207:9:20::16", port: 443 },
    ],
    [
      "…while its own port stays closed to the WAN",
      flow({ from: "wan", to: "home", src: "2a00:1450::1", dst: "2a02:c207:9:20::16", port: 443, via: "fiber" }),
      "drop",
      "policy:any>any",
    ],
    [
      "a ULA target is reached at the NAT66 WAN's address, its port moved to toPort like the IPv4 host's",
      flow({
        from: "wan",
        to: "router",
        src: "2a00:1450::1",
        dst: WAN6,
        port: 8001,
        via: "fiber",
        wanAddressOf: "fiber",
      }),
      "accept",
      "forward6:web",
      { address: "fd70:60::10", port: 9001 },
    ],
    [
      "hairpin: an inside client at the public address",
      flow({ from: "kids", to: "router", src: "10.70.30.5", dst: WAN4, port: 8005, wanAddressOf: "fiber" }),
      "accept",
      "hairpin:web",
      { address: "10.70.60.10", port: 9005 },
    ],
    [
      "no hairpin where the forward turns it off: the router's own input decides",
      flow({ from: "home", to: "router", dst: CABLE4, proto: "udp", port: 1194, wanAddressOf: "cable" }),
      "drop",
      "input-default",
    ],
    [
      "no hairpin for a client that is not one of the forward's sources",
      flow({ from: "mgmt", to: "router", src: "10.70.10.5", dst: WAN4, port: 2222, wanAddressOf: "fiber" }),
      "drop",
      "input-default",
    ],
    [
      "hairpin at the address of the DHCP WAN a forward is limited to",
      flow({ from: "home", to: "router", dst: WAN4, port: 443, wanAddressOf: "fiber" }),
      "accept",
      "hairpin:www6",
      { address: "10.70.20.15", port: 443 },
    ],
    [
      "no hairpin at the address of a WAN the forward does not listen on",
      flow({ from: "home", to: "router", dst: CABLE4, port: 443, wanAddressOf: "cable" }),
      "drop",
      "input-default",
    ],
    [
      "a routed connection to a forward's inside host is the policy's business",
      flow({ from: "kids", to: "dmz", src: "10.70.30.5", dst: "10.70.60.10", port: 9000 }),
      "accept",
      "rule:kids-dmz",
    ],
    // dynamic routing: what the routing section opens, to its peers only
    [
      "OSPF from a host of an OSPF segment",
      flow({ from: "home", to: "router", src: "10.70.20.7", dst: "224.0.0.5", proto: "ospf", port: undefined }),
      "accept",
      "routing:ospf",
    ],
    [
      "no OSPF from a segment that does not speak it",
      flow({ from: "kids", to: "router", src: "10.70.30.7", dst: "224.0.0.5", proto: "ospf", port: undefined }),
      "drop",
      "input-default",
    ],
    [
      "no OSPF from an OSPF segment's address arriving from another zone",
      flow({ from: "dmz", to: "router", src: "10.70.20.7", dst: "224.0.0.5", proto: "ospf", port: undefined }),
      "drop",
      "input-default",
    ],
    [
      "BGP from a neighbour, before a rule that would refuse it",
      flow({ from: "kids", to: "router", src: "10.70.30.2", dst: "10.70.30.1", port: 179 }),
      "accept",
      "routing:bgp",
    ],
    [
      "no BGP from a host beside the neighbour",
      flow({ from: "dmz", to: "router", src: "10.70.60.3", dst: "10.70.60.1", port: 179 }),
      "drop",
      "input-default",
    ],
    [
      "BFD from a neighbour that uses it",
      flow({ from: "dmz", to: "router", src: "10.70.60.2", dst: "10.70.60.1", proto: "udp", port: 3784 }),
      "accept",
      "routing:bfd",
    ],
    [
      "no BFD from a neighbour that does not",
      flow({ from: "kids", to: "router", src: "10.70.30.2", dst: "10.70.30.1", proto: "udp", port: 4784 }),
      "drop",
      "input-default",
    ],
    [
      "a neighbour gets nothing else from the routing section",
      flow({ from: "dmz", to: "router", src: "10.70.60.2", dst: "10.70.60.1", port: 22 }),
      "drop",
      "input-default",
    ],
  ])("%s", (_name, f, verdict, by, deliverTo) => {
    expect(oracle.decide(flow(f))).toEqual({ verdict, by, ...(deliverTo ? { deliverTo } : {}) });
  });

  it.each<[string, Row[1], Partial<ReturnType<PolicyOracle["decide"]>>]>([
    [
      "a redirect zone's DNS to an internet server is answered by the router",
      { from: "home", to: "wan", dst: NET, proto: "udp", port: 53 },
      { verdict: "accept", by: "dns-redirect:home service:udp/53", answeredByRouter: true },
    ],
    [
      "over IPv6 too, at the router's address in the client's segment",
      { from: "home", to: "wan", src: "2a02:c207:9:20::50", dst: "2001:db8::53", proto: "udp", port: 53 },
      { verdict: "accept", by: "dns-redirect:home service:udp/53", answeredByRouter: true },
    ],
    [
      "a redirected query is decided at the segment's router address: a rule to the router applies",
      { from: "home", to: "wan", src: "10.70.20.200", dst: NET, proto: "tcp", port: 53 },
      { verdict: "reject", by: "dns-redirect:home rule:no-tcp-dns-upper-home", answeredByRouter: true },
    ],
    [
      "a redirect zone's query to another zone's host is redirected as well",
      { from: "home", to: "dmz", dst: "10.70.60.53", proto: "udp", port: 53 },
      { verdict: "accept", by: "dns-redirect:home service:udp/53", answeredByRouter: true },
    ],
    [
      "a redirect zone's DoT to another server is rejected (it cannot be answered in that server's name)",
      { from: "home", to: "wan", dst: NET, proto: "tcp", port: 853 },
      { verdict: "reject", by: "dns-force-redirect:home" },
    ],
    [
      "a redirect zone's other traffic is the policy's business",
      { from: "home", to: "wan", dst: NET, proto: "tcp", port: 443 },
      { verdict: "accept", by: "policy:home>any" },
    ],
    [
      "a reject zone's DNS to an internet server is rejected before its policy drops it",
      { from: "iot", to: "wan", src: "10.70.41.5", dst: NET, proto: "udp", port: 53 },
      { verdict: "reject", by: "dns-force-reject:iot" },
    ],
    [
      "a reject zone's DoT is rejected",
      { from: "iot", to: "dmz", src: "10.70.40.5", dst: "10.70.60.10", proto: "tcp", port: 853 },
      { verdict: "reject", by: "dns-force-reject:iot" },
    ],
    [
      "a reject zone still asks the router",
      { from: "iot", to: "router", src: "10.70.40.5", dst: "10.70.40.1", proto: "udp", port: 53 },
      { verdict: "accept", by: "service:udp/53" },
    ],
    [
      "a zone without the dns service is not forced",
      { from: "kids", to: "wan", src: "10.70.30.5", dst: NET, proto: "udp", port: 53 },
      { verdict: "drop", by: "policy:any>any" },
    ],
    [
      "an encrypted zone reaches DoH on the router",
      { from: "mgmt", to: "router", src: "10.70.10.5", dst: "10.70.10.1", port: 443 },
      { verdict: "accept", by: "dns-encrypted:tcp/443" },
    ],
    [
      "an encrypted zone reaches DoT at any router address",
      { from: "mgmt", to: "router", src: "10.70.10.5", dst: "10.70.20.1", port: 853 },
      { verdict: "accept", by: "dns-encrypted:tcp/853" },
    ],
    [
      "a zone without encrypted DNS does not",
      { from: "home", to: "router", dst: "10.70.20.1", port: 443 },
      { verdict: "drop", by: "input-default" },
    ],
    [
      "DoH on the router is TCP only",
      { from: "mgmt", to: "router", src: "10.70.10.5", dst: "10.70.10.1", proto: "udp", port: 443 },
      { verdict: "drop", by: "input-default" },
    ],
  ])("DNS: %s", (_name, f, want) => {
    expect(oracle.decide(flow(f))).toEqual(want);
  });

  it.each<[string, string | undefined, boolean]>([
    ["10.70.20.9", "home", true],
    ["2a02:c207:9:20::9", "home", true],
    ["fd70:60::9", "dmz", true],
    // behind a route via a dmz host: the dmz's, and the site's own (private)
    ["10.80.9.9", "dmz", true],
    // the longer route wins: via a home host
    ["10.80.5.9", "home", true],
    // a public prefix behind an inside route: inside, but not translated
    ["198.51.100.9", "home", false],
    ["172.20.1.1", undefined, false],
    ["93.184.216.34", undefined, false],
  ])("%s is in zone %s, the site's own: %s", (addr, zone, internal) => {
    expect({ zone: oracle.zoneOf(addr), internal: oracle.isInternal(addr) }).toEqual({ zone, internal });
  });

  it.each<[string, string, boolean]>([
    ["10.0.0.0/8", "10.255.1.2", true],
    ["10.0.0.0/8", "11.0.0.1", false],
    ["10.70.20.0/25", "10.70.20.127", true],
    ["10.70.20.0/25", "10.70.20.128", false],
    ["10.70.20.5", "10.70.20.5", true],
    ["0.0.0.0/0", "203.0.113.9", true],
    ["2a02:c207:9:20::/64", "2a02:c207:9:20:ffff:ffff:ffff:ffff", true],
    ["2a02:c207:9:20::/64", "2a02:c207:9:21::1", false],
    ["fc00::/7", "fd70:60::10", true],
    ["fc00::/7", "fe80::1", false],
    ["::/0", "2001:db8::1", true],
    ["10.0.0.0/8", "::ffff:10.0.0.1", false],
    ["2a02:c207:9:20::15", "2a02:c207:9:20:0:0:0:15", true],
  ])("%s holds %s: %s", (ref, addr, want) => {
    expect(within(ref, addr)).toBe(want);
  });
});
