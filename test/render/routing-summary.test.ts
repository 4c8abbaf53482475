/**
 * What SUMMARY.md tells a reviewer about routing and port forwards: the WANs each forward listens on, and the
 * routing section the network-services layer publishes — static routes and where they lead, OSPF's area and
 * neighbours and what it redistributes, BGP's neighbours, and what the firewall opens for them. Expectations are
 * written by hand from the site below.
 */
import { describe, expect, it } from "vitest";
import { renderDataplaneSummary } from "../../components/dataplane/summary";
import { renderServicesSummary } from "../../components/network-services/summary";
import { SECTION } from "../../components/summary";
import { devSite } from "../helpers/dev-site";

/** The dev site (servers 10.50.0.0/24 on lan0.50, storage 10.20.0.0/24, WANs wan0 and wan1) with routing. */
const routed = devSite((raw) => {
  raw.routes = [
    { destination: "172.20.99.0/24", gateway: "10.50.0.253", metric: 20 },
    { destination: "198.51.100.0/24", gateway: "10.50.0.252" },
  ];
  raw.routing = {
    ospf: { routerId: "10.10.0.1", segments: ["servers"], redistribute: ["static"] },
    bgp: {
      asn: 65010,
      routerId: "10.10.0.1",
      neighbors: [
        { address: "10.50.0.254", asn: 65020, bfd: true },
        { address: "10.50.0.250", asn: 65030, description: "lab" },
      ],
      advertise: ["servers"],
    },
  };
  raw.portForwards[0].wans = ["wan0"];
});

function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(heading);
  expect(start, `${heading} in\n${markdown}`).toBeGreaterThanOrEqual(0);
  const next = markdown.indexOf("\n##", start + heading.length);
  return markdown.slice(start, next < 0 ? undefined : next);
}

function routingMarkdown(s: typeof routed): string {
  const sections = renderServicesSummary(s.site, s.plan, []).sections.filter((x) => x.order === SECTION.routing);
  expect(sections).toHaveLength(1);
  return sections[0].markdown;
}

describe("SUMMARY.md: port forwards", () => {
  it("shows the WANs each forward listens on, all of them when it names none", () => {
    const md = renderDataplaneSummary(routed.site, routed.plan, routed.policy)
      .sections.map((x) => x.markdown)
      .join("\n");
    const table = section(md, "### Port forwards");
    expect(table).toContain("| name | protocol | public port | on WANs | to | sources | hairpin |");
    // limited to wan0, which takes its address by DHCP: the hairpin answers at wan0's address only (the outside
    // reaches it on wan0 only), whatever the lease
    expect(table).toContain(
      "| nas-https | tcp | 443 | wan0 | 10.50.0.10 / [fd12:3456:789a:50::10] | any | at wan0's address (DHCP) |",
    );
    expect(table).toContain("| wireguard | udp | 51820 | wan0, wan1 (all) | 10.50.0.11 | any | no |");
  });

  it("names the IPv6 host's port where the router moves it, as for the IPv4 host", () => {
    const moved = devSite((raw) => {
      raw.portForwards.push(
        // wan0 masquerades IPv6 (NAT66): the router moves the port, as for IPv4
        { name: "nas-alt", protocol: "tcp", port: 9443, to: "10.50.0.10", toPort: 443, ipv6: "fd12:3456:789a:50::10" },
      );
    });
    const table = section(
      renderDataplaneSummary(moved.site, moved.plan, moved.policy)
        .sections.map((x) => x.markdown)
        .join("\n"),
      "### Port forwards",
    );
    expect(table).toContain(
      "| nas-alt | tcp | 9443 | wan0, wan1 (all) | 10.50.0.10:443 / [fd12:3456:789a:50::10]:443 |",
    );
    // no toPort: both hosts at the public port, no port written
    expect(table).toContain("| nas-https | tcp | 443 | wan0, wan1 (all) | 10.50.0.10 / [fd12:3456:789a:50::10] |");
  });
});

describe("SUMMARY.md: the routing section", () => {
  const md = routingMarkdown(routed);

  it("lists each static route with where it leads and what the site makes of it", () => {
    const table = section(md, "### Static routes");
    expect(table).toContain(
      "| 172.20.99.0/24 | 10.50.0.253 | segment servers (zone servers) | 20 | the site's own: NATed to the WANs, its hosts in the segment's zone |",
    );
    expect(table).toContain(
      "| 198.51.100.0/24 | 10.50.0.252 | segment servers (zone servers) | — | inside, public: routed as is, its hosts in the segment's zone |",
    );
  });

  it("names OSPF's router id, area, neighbour segments, the prefixes it redistributes and what it installs", () => {
    expect(section(md, "### OSPF")).toContain(
      "Router id 10.10.0.1, area 0.0.0.0. Neighbours on: servers. Redistributed: static routes: 172.20.99.0/24, 198.51.100.0/24.",
    );
    expect(section(md, "### OSPF")).toContain(
      "Installs from OSPF only routes inside 10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12, 192.168.0.0/16; never the default route, nor a route inside 10.10.0.0/24, 10.20.0.0/24, 10.30.0.0/23, 10.40.0.0/24, 10.50.0.0/24, 10.244.0.0/16, 10.96.0.0/12 (the router's own subnets and cluster networks).",
    );
  });

  it("says how OSPF packets are authenticated, and while a key rolls over which key is sent", () => {
    const authenticated = (authentication: Record<string, unknown>) =>
      devSite((raw) => {
        raw.routing = { ospf: { routerId: "10.10.0.1", segments: ["servers"], authentication } };
        raw.ospfKey = "the key of the area, 16+";
        if (authentication.next) raw.ospfNextKey = "the next key of the area";
      });
    expect(section(routingMarkdown(routed), "### OSPF")).toContain(
      "No authentication: any host on those segments can speak OSPF to the router (set routing.ospf.authentication).",
    );
    expect(section(routingMarkdown(authenticated({ keyId: 3 })), "### OSPF")).toContain(
      "Authentication: hmac-sha256, key id 3 on every packet of those segments (the key is the secret router:ospfKey; a packet without it is dropped).",
    );
    const rolling = section(
      routingMarkdown(authenticated({ keyId: 3, next: { keyId: 4, algorithm: "hmac-sha512" } })),
      "### OSPF",
    );
    expect(rolling).toContain(
      'Authentication: hmac-sha256, key id 3 (sent and accepted); hmac-sha512, key id 4 (accepted, not sent) on every packet of those segments (the keys are the secrets router:ospfKey and router:ospfNextKey; a packet with neither is dropped). The key is changing: see docs/operations.md, "Change the OSPF key".',
    );
    expect(rolling).not.toContain("the key of the area");
  });

  it("lists the BGP neighbours with their AS and BFD", () => {
    const bgp = section(md, "### BGP");
    expect(bgp).toContain("AS 65010, router id 10.10.0.1; advertises the segments servers.");
    expect(bgp).toContain("| 10.50.0.254 | 65020 | yes | — |");
    expect(bgp).toContain("| 10.50.0.250 | 65030 | no | lab |");
  });

  it("tells the reviewer how the BFD neighbours must configure their side, and only when one uses BFD", () => {
    const bgp = section(md, "### BGP");
    expect(bgp).toMatch(/BFD neighbours \(10\.50\.0\.254\): .*local address and interface/);
    expect(bgp).toContain("`peer ROUTER local-address SELF interface IF`");
    const withoutBfd = devSite((raw) => {
      raw.routing = {
        bgp: { asn: 65010, routerId: "10.10.0.1", neighbors: [{ address: "10.50.0.250", asn: 65030 }], advertise: [] },
      };
    });
    expect(section(routingMarkdown(withoutBfd), "### BGP")).not.toContain("BFD neighbours");
  });

  it("says what the firewall opens for routing, from whom and on which link", () => {
    const rows = section(md, "### What the firewall opens for routing")
      .split("\n")
      .filter((l) => l.startsWith("| ") && !l.startsWith("| protocol"));
    expect(rows).toEqual([
      "| OSPF (IP protocol 89) | 10.50.0.0/24 | lan0.50 | 224.0.0.5, 224.0.0.6, 10.50.0.1 |",
      "| BGP (TCP 179) | 10.50.0.254 | lan0.50 | the router |",
      "| BFD (UDP 3784, 4784) | 10.50.0.254 | lan0.50 | the router |",
      "| BGP (TCP 179) | 10.50.0.250 | lan0.50 | the router |",
    ]);
  });

  it("says so when the site has no routes and no routing protocol", () => {
    const plain = devSite((raw) => {
      raw.routes = [];
      raw.routing = {};
    });
    expect(routingMarkdown(plain)).toBe(
      "## Routing\n\nNo static routes.\n\nNo dynamic routing (router:routing has neither OSPF nor BGP).\n",
    );
  });
});
