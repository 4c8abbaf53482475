/** The zone policy's meaning: what the router does with a new connection, on the dev site's policy. */
import { describe, expect, it } from "vitest";
import { evaluate, zoneMatrix, zoneOfAddress, servicePorts, type Flow } from "../../components/site/policy";
import { parseSite } from "../../components/site/parse";
import { devRaw, devSite } from "../helpers/dev-site";

const { policy } = devSite();
const flow = (f: Partial<Flow> & Pick<Flow, "from" | "to">): Flow => ({
  proto: "tcp",
  port: 80,
  src: "10.20.0.50",
  dst: "10.50.0.99",
  ...f,
});

describe("the zone policy", () => {
  it.each<[string, Flow, string, string]>([
    [
      "trusted reaches the internet",
      flow({ from: "trusted", to: "wan", dst: "8.8.8.8" }),
      "accept",
      "policy:trusted>wan",
    ],
    ["trusted reaches the servers", flow({ from: "trusted", to: "servers" }), "accept", "policy:trusted>servers"],
    [
      "iot cannot reach trusted (no policy: the default)",
      flow({ from: "iot", to: "trusted", src: "10.30.0.9", dst: "10.20.0.9" }),
      "drop",
      "default",
    ],
    [
      "iot records to the NAS on SMB",
      flow({ from: "iot", to: "servers", src: "10.30.0.9", dst: "10.50.0.10", port: 445 }),
      "accept",
      "rule:iot-streams-to-nas",
    ],
    [
      "iot may not reach the NAS's web UI",
      flow({ from: "iot", to: "servers", src: "10.30.0.9", dst: "10.50.0.10", port: 443 }),
      "drop",
      "default",
    ],
    [
      "iot may not reach another server on SMB",
      flow({ from: "iot", to: "servers", src: "10.30.0.9", dst: "10.50.0.20", port: 445 }),
      "drop",
      "default",
    ],
    [
      "Home Assistant controls IoT devices",
      flow({ from: "servers", to: "iot", src: "10.50.0.11", dst: "10.30.0.9", proto: "udp", port: 5683 }),
      "accept",
      "rule:ha-controls-iot",
    ],
    [
      "another server may not",
      flow({ from: "servers", to: "iot", src: "10.50.0.12", dst: "10.30.0.9" }),
      "drop",
      "default",
    ],
    [
      "guests are rejected everywhere but the internet",
      flow({ from: "guest", to: "trusted", src: "10.40.0.9", dst: "10.20.0.9" }),
      "reject",
      "policy:guest>any",
    ],
    [
      // router:dns forces the guest zone (redirect): the query is answered by the router before any zone rule
      "guests cannot bypass the router's DNS: their queries to another server are answered by the router",
      flow({ from: "guest", to: "wan", src: "10.40.0.9", dst: "9.9.9.9", proto: "udp", port: 53 }),
      "accept",
      "dns:redirect service:udp/53",
    ],
    [
      "guests browse",
      flow({ from: "guest", to: "wan", src: "10.40.0.9", dst: "9.9.9.9", port: 443 }),
      "accept",
      "policy:guest>wan",
    ],
    [
      "the internet is dropped",
      flow({ from: "wan", to: "servers", src: "8.8.8.8", dst: "10.50.0.10", port: 443 }),
      "drop",
      "policy:wan>any",
    ],
    [
      "admins reach the switches' SSH",
      flow({ from: "trusted", to: "mgmt", dst: "10.10.0.2", port: 22 }),
      "accept",
      "rule:admins-reach-switches",
    ],
    [
      "but not other management hosts",
      flow({ from: "trusted", to: "mgmt", dst: "10.10.0.50", port: 22 }),
      "drop",
      "default",
    ],
    [
      "IPv6 to the NAS group matches its IPv6 address",
      flow({ from: "iot", to: "servers", src: "fd12:3456:789a:30::9", dst: "fd12:3456:789a:50::10", port: 554 }),
      "accept",
      "rule:iot-streams-to-nas",
    ],
    [
      "the management zone reaches the Talos API",
      flow({ from: "mgmt", to: "router", src: "10.10.0.9", dst: "10.10.0.1", port: 50000 }),
      "accept",
      "management",
    ],
    [
      "trusted does not",
      flow({ from: "trusted", to: "router", dst: "10.20.0.1", port: 50000 }),
      "drop",
      "input-default",
    ],
    [
      "the WAN does not",
      flow({ from: "wan", to: "router", src: "8.8.8.8", dst: "11.0.1.2", port: 6443 }),
      "drop",
      "input-default",
    ],
    [
      "trusted gets DNS from the router",
      flow({ from: "trusted", to: "router", dst: "10.20.0.1", proto: "udp", port: 53 }),
      "accept",
      "service:udp/53",
    ],
    [
      "guests get no NTP",
      flow({ from: "guest", to: "router", src: "10.40.0.9", dst: "10.40.0.1", proto: "udp", port: 123 }),
      "drop",
      "input-default",
    ],
    [
      "iot gets mDNS (reflection group)",
      flow({ from: "iot", to: "router", src: "10.30.0.9", dst: "10.30.0.1", proto: "udp", port: 5353 }),
      "accept",
      "service:udp/5353",
    ],
    [
      "iot gets no ping answer",
      flow({ from: "iot", to: "router", src: "10.30.0.9", dst: "10.30.0.1", proto: "icmp", port: undefined }),
      "drop",
      "input-default",
    ],
  ])("%s", (_name, f, verdict, by) => {
    expect(evaluate(policy, f)).toMatchObject({ verdict, by });
  });

  it("lists every zone pair in the matrix with the rules that refine it", () => {
    const m = zoneMatrix(policy);
    expect([...m.keys()].sort()).toEqual(["guest", "iot", "mgmt", "servers", "trusted", "wan"]);
    expect(m.get("iot")!.get("servers")).toMatchObject({ verdict: "drop", rules: ["iot-streams-to-nas"] });
    expect(m.get("guest")!.get("wan")).toEqual({ verdict: "accept", rules: ["no-guest-dns-bypass"], forwards: [] });
    expect(m.get("mgmt")!.get("router")!.verdict).toBe("accept");
  });

  it("maps router services to their ports", () => {
    expect(servicePorts(["dhcp", "dns", "ntp", "mdns", "ping"])).toEqual({
      tcp: [53],
      udp: [53, 67, 123, 547, 5353],
      echo: true,
    });
    expect(servicePorts([])).toEqual({ tcp: [], udp: [], echo: false });
  });

  it("refuses a rule that would lock the operator out of the router (anti-lockout)", () => {
    const raw = devRaw();
    raw.registryPassword = "pw";
    raw.firewall.rules.unshift({ name: "lockdown", from: "any", to: "router", protocol: "tcp", action: "drop" });
    const r = parseSite(raw);
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.issues).toEqual(
        expect.arrayContaining([
          {
            path: "router:firewall.rules[0]",
            message: expect.stringMatching(
              /cuts the management path: tcp\/50000 from segment mgmt .* would be dropped .*allowed: rules that leave the Talos API/,
            ),
          },
        ]),
      );
  });

  it("accepts a rule to the router that leaves management alone", () => {
    expect(() =>
      devSite((raw) =>
        raw.firewall.rules.unshift({
          name: "no-iot-dns",
          from: "iot",
          to: "router",
          protocol: "tcp+udp",
          ports: [53],
          action: "reject",
        }),
      ),
    ).not.toThrow();
  });
});

/**
 * Port forwards in the policy's meaning. The dev site publishes nas-https (no source limit) and nas-admin (the
 * office's range 81.2.69.160/27 only) with hairpin on, and wireguard without hairpin; 203.0.113.2 stands for the
 * router's public address (any address of the router that is none of the site's own prefixes).
 */
describe("port forwards", () => {
  const PUBLIC = "203.0.113.2";
  const at = (f: Partial<Flow> & Pick<Flow, "from" | "src">): Flow => ({
    to: "router",
    proto: "tcp",
    dst: PUBLIC,
    ...f,
  });

  it.each<[string, Flow, string, string]>([
    [
      "the internet reaches an open forward",
      at({ from: "wan", src: "8.8.8.8", port: 443 }),
      "accept",
      "forward:nas-https",
    ],
    [
      "the office reaches its admin forward",
      at({ from: "wan", src: "81.2.69.170", port: 8443 }),
      "accept",
      "forward:nas-admin",
    ],
    ["the rest of the internet does not", at({ from: "wan", src: "8.8.8.8", port: 8443 }), "drop", "input-default"],
    [
      "an inside client uses an open forward at the public address (hairpin)",
      at({ from: "trusted", src: "10.20.0.50", port: 443 }),
      "accept",
      "hairpin:nas-https",
    ],
    [
      "also from a zone the policy keeps away from the servers",
      at({ from: "guest", src: "10.40.0.9", port: 443 }),
      "accept",
      "hairpin:nas-https",
    ],
    [
      "but not a forward limited to the office's range: inside clients are not its audience",
      at({ from: "trusted", src: "10.20.0.50", port: 8443 }),
      "drop",
      "input-default",
    ],
    ["nor a guest through it", at({ from: "guest", src: "10.40.0.9", port: 8443 }), "drop", "input-default"],
    [
      "nor a forward without hairpin",
      at({ from: "trusted", src: "10.20.0.50", proto: "udp", port: 51820 }),
      "drop",
      "input-default",
    ],
    [
      "the NAS over IPv6 through wan0's address, the WAN that masquerades IPv6",
      at({ from: "wan", src: "2001:db8:9::1", dst: "2001:db8:1::2", port: 443, wan: "wan0" }),
      "accept",
      "forward6:nas-https",
    ],
    [
      "not through wan1, which does not",
      at({ from: "wan", src: "2001:db8:9::1", dst: "2001:db8:1::2", port: 443, wan: "wan1" }),
      "drop",
      "input-default",
    ],
  ])("%s", (_name, f, verdict, by) => {
    expect(evaluate(policy, f)).toMatchObject({ verdict, by });
  });

  it("offers the hairpin to exactly the inside prefixes a forward lists", () => {
    const { policy: p } = devSite((raw) =>
      raw.portForwards.push({
        name: "guest-portal",
        protocol: "tcp",
        port: 9443,
        to: "10.50.0.10",
        sources: ["81.2.69.160/27", "10.40.0.0/24"],
      }),
    );
    expect(evaluate(p, at({ from: "guest", src: "10.40.0.9", port: 9443 }))).toMatchObject({
      verdict: "accept",
      by: "hairpin:guest-portal",
    });
    expect(evaluate(p, at({ from: "trusted", src: "10.20.0.50", port: 9443 }))).toMatchObject({ verdict: "drop" });
    const m = zoneMatrix(p);
    expect(
      m
        .get("guest")!
        .get("servers")!
        .forwards.map((f) => f.name),
    ).toContain("guest-portal");
    expect(
      m
        .get("trusted")!
        .get("servers")!
        .forwards.map((f) => f.name),
    ).not.toContain("guest-portal");
  });

  it("shows in the zone matrix which zone pairs a forward opens, and to whom", () => {
    const m = zoneMatrix(policy);
    // The internet reaches the servers only through forwards, one of them for the office only.
    expect(m.get("wan")!.get("servers")).toEqual({
      verdict: "drop",
      rules: [],
      forwards: [
        { name: "nas-https", sources: undefined, hairpin: false },
        { name: "wireguard", sources: undefined, hairpin: false },
        { name: "nas-admin", sources: ["81.2.69.160/27"], hairpin: false },
      ],
    });
    // Guests, whom the policy rejects towards the servers, reach the open forward through the hairpin only.
    expect(m.get("guest")!.get("servers")).toEqual({
      verdict: "reject",
      rules: [],
      forwards: [{ name: "nas-https", sources: undefined, hairpin: true }],
    });
    expect(m.get("guest")!.get("trusted")!.forwards).toEqual([]);
  });

  it("puts an address behind a static route in the zone of the segment that holds the route's next hop", () => {
    const { policy: p } = devSite((raw) => {
      raw.routes = [{ destination: "172.20.99.0/24", gateway: "10.20.0.254" }];
    });
    expect(zoneOfAddress(p, "172.20.99.7")).toBe("trusted");
    expect(zoneOfAddress(p, "10.50.0.10")).toBe("servers");
    expect(zoneOfAddress(p, "8.8.8.8")).toBeUndefined();
  });
});
