/**
 * A subnet reached through a static route is inside, in a kernel: the dev site with a route to 172.20.99.0/24
 * via 10.20.0.254 (an inside router on the trusted segment) and a port forward to a camera behind it. The
 * router namespace runs the rendered ruleset with the route installed as Talos installs a VLANConfig route;
 * the inside router and the branch host behind it, a guest client and the internet have namespaces of their own.
 *   - the branch host reaches the internet masqueraded to the router's public address (it used to leave with its
 *     private source address, which no reply ever finds);
 *   - the forward delivers to the camera behind the inside router;
 *   - the branch prefix may be sourced only from the segment whose subnet holds the route's next hop: the same
 *     source sent from the guest segment is dropped before connection tracking.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderRuleset } from "../../components/dataplane/nftables";
import { zoneOfAddress } from "../../components/site/policy";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { Netns } from "./netns";

const t = tier("a routed inside prefix in a kernel", { root: true, commands: ["ip", "nft", "node"] });

const PUBLIC = "203.0.113.2";
const UPSTREAM = "203.0.113.1";
const CAMERA = "172.20.99.7";

const dev = devSite((raw) => {
  raw.routes = [{ destination: "172.20.99.0/24", gateway: "10.20.0.254", description: "branch behind the lab switch" }];
  raw.portForwards.push({ name: "branch-cam", protocol: "tcp", port: 8554, to: CAMERA });
});

describe.skipIf(!t.ok)("a prefix routed to the inside, in a kernel", () => {
  const lab = new Netns("rp");

  beforeAll(async () => {
    lab.add("rtr", "inet", "lanrtr", "branch", "guest");
    lab.link("rtr", "wan0", "inet", "eth0");
    lab.link("rtr", "lan0.20", "lanrtr", "eth0");
    lab.link("lanrtr", "eth1", "branch", "eth0");
    lab.link("rtr", "lan0.40", "guest", "eth0");
    for (const ns of ["rtr", "lanrtr"]) lab.exec(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    const route = dev.plan.segments.find((s) => s.name === "trusted")!.routes[0];
    lab.ip("rtr", [
      `address add ${PUBLIC}/24 dev wan0`,
      "address add 10.20.0.1/24 dev lan0.20",
      "address add 10.40.0.1/24 dev lan0.40",
      `route add default via ${UPSTREAM}`,
      // The route as the trusted segment's VLANConfig carries it.
      `route add ${route.destination} via ${route.gateway} dev lan0.20`,
    ]);
    lab.ip("inet", [`address add ${UPSTREAM}/24 dev eth0`]);
    lab.ip("lanrtr", [
      "address add 10.20.0.254/24 dev eth0",
      "address add 172.20.99.1/24 dev eth1",
      "route add default via 10.20.0.1",
    ]);
    lab.ip("branch", [`address add ${CAMERA}/24 dev eth0`, "route add default via 172.20.99.1"]);
    lab.ip("guest", [
      "address add 10.40.0.50/24 dev eth0",
      "address add 172.20.99.8/32 dev lo",
      "route add default via 10.40.0.1",
    ]);
    lab.nft("rtr", renderRuleset(dev.site, dev.plan, dev.policy));
    await lab.serve("inet", "internet", [80]);
    await lab.serve("branch", "camera", [8554]);
  }, 60_000);

  afterAll(() => lab.close());

  it("puts the branch prefix in the zone of the segment its next hop is on", () => {
    expect(zoneOfAddress(dev.policy, CAMERA)).toBe("trusted");
  });

  it("masquerades the branch host to the router's public address on its way to the internet", () => {
    expect(lab.probe("branch", UPSTREAM, 80)).toEqual({ kind: "reached", answer: `internet ${PUBLIC}` });
  });

  it("delivers a port forward to a host behind the inside router", () => {
    expect(lab.probe("inet", PUBLIC, 8554)).toEqual({ kind: "reached", answer: `camera ${UPSTREAM}` });
  });

  it("drops the branch prefix sourced from another segment, while the guest's own address passes", () => {
    expect(lab.probe("guest", UPSTREAM, 80, "10.40.0.50").kind).toBe("reached");
    expect(lab.probe("guest", UPSTREAM, 80, "172.20.99.8").kind).toBe("dropped");
  });
});
