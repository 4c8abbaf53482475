/** The zone policy's meaning: what the router does with a new connection, on the dev site's policy. */
import { describe, expect, it } from "vitest";
import { evaluate, zoneMatrix, servicePorts, type Flow } from "../../components/site/policy";
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
      "guests cannot bypass the router's DNS",
      flow({ from: "guest", to: "wan", src: "10.40.0.9", dst: "9.9.9.9", proto: "udp", port: 53 }),
      "reject",
      "rule:no-guest-dns-bypass",
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
    expect(m.get("iot")!.get("servers")).toEqual({ verdict: "drop", rules: ["iot-streams-to-nas"] });
    expect(m.get("guest")!.get("wan")).toEqual({ verdict: "accept", rules: ["no-guest-dns-bypass"] });
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
