/**
 * Port forwards and their hairpin in a kernel: the dev site's rendered ruleset (plus one forward that lists an
 * inside prefix among its sources) runs in a router namespace with the internet, a trusted client, a guest
 * client and the NAS in namespaces of their own; real TCP connections are made to the router's public address.
 * A forward publishes its host to its sources, through the WAN and through the hairpin alike:
 *   - the guest zone, which the policy keeps from the servers (rejected when it connects directly), reaches the
 *     open forward at the public address, and the NAS sees the router as the peer;
 *   - a forward limited to the office's range refuses every inside client at the public address, while the
 *     office reaches it from the internet and another internet host does not;
 *   - a forward listing the guest prefix serves the guest client and not the trusted one.
 * Each outcome is also what the policy's `evaluate` says, so the summary and the end-to-end oracle read the
 * same meaning the kernel enforces.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderRuleset } from "../../components/dataplane/nftables";
import { evaluate, type Flow } from "../../components/site/policy";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { Netns } from "./netns";

const t = tier("port forwards and hairpin in a kernel", { root: true, commands: ["ip", "nft", "node"] });

const PUBLIC = "203.0.113.2";
const UPSTREAM = "203.0.113.1";
const OFFICE = "81.2.69.170";
const STRANGER = "198.51.100.7";
const TRUSTED = "10.20.0.50";
const GUEST = "10.40.0.50";
const NAS = "10.50.0.10";

const dev = devSite((raw) => {
  raw.portForwards.push({
    name: "guest-portal",
    protocol: "tcp",
    port: 9443,
    to: NAS,
    sources: ["81.2.69.160/27", "10.40.0.0/24"],
  });
});

describe.skipIf(!t.ok)("port forwards and their hairpin in a kernel", () => {
  const lab = new Netns("hp");

  beforeAll(async () => {
    lab.add("rtr", "inet", "trusted", "guest", "nas");
    lab.link("rtr", "wan0", "inet", "eth0");
    lab.link("rtr", "lan0.20", "trusted", "eth0");
    lab.link("rtr", "lan0.40", "guest", "eth0");
    lab.link("rtr", "lan0.50", "nas", "eth0");
    lab.exec("rtr", ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.ip("rtr", [
      `address add ${PUBLIC}/24 dev wan0`,
      "address add 10.20.0.1/24 dev lan0.20",
      "address add 10.40.0.1/24 dev lan0.40",
      "address add 10.50.0.1/24 dev lan0.50",
      `route add default via ${UPSTREAM}`,
    ]);
    lab.ip("inet", [
      `address add ${UPSTREAM}/24 dev eth0`,
      `address add ${OFFICE}/32 dev lo`,
      `address add ${STRANGER}/32 dev lo`,
    ]);
    lab.ip("trusted", [`address add ${TRUSTED}/24 dev eth0`, "route add default via 10.20.0.1"]);
    lab.ip("guest", [`address add ${GUEST}/24 dev eth0`, "route add default via 10.40.0.1"]);
    lab.ip("nas", [`address add ${NAS}/24 dev eth0`, "route add default via 10.50.0.1"]);
    lab.nft("rtr", renderRuleset(dev.site, dev.plan, dev.policy));
    await lab.serve("nas", "nas", [443, 5001, 9443]);
  }, 60_000);

  afterAll(() => lab.close());

  /** What the kernel did, next to what the policy says for the same flow. */
  function check(ns: string, from: string, src: string, dst: string, port: number) {
    const got = lab.probe(ns, dst, port, src);
    const to = dst === PUBLIC ? "router" : "servers";
    const flow: Flow = { from, to, proto: "tcp", port, src, dst, ...(from === "wan" ? { wan: "wan0" } : {}) };
    const policy = evaluate(dev.policy, flow).verdict;
    return {
      got: got.kind,
      policy: { accept: "reached", drop: "dropped", reject: "rejected" }[policy],
      answer: got.answer,
    };
  }

  it("keeps the guest zone from the servers when it connects directly (the policy rejects guest → servers)", () => {
    const r = check("guest", "guest", GUEST, NAS, 443);
    expect(r.got).toBe("rejected");
    expect(r.policy).toBe("rejected");
  });

  it("lets the guest client use the open forward at the public address, the NAS seeing the router as the peer", () => {
    const r = check("guest", "guest", GUEST, PUBLIC, 443);
    expect([r.got, r.answer]).toEqual(["reached", "nas 10.50.0.1"]);
    expect(r.policy).toBe("reached");
  });

  it("refuses every inside client the forward limited to the office's range, through the hairpin", () => {
    for (const [ns, src] of [
      ["guest", GUEST],
      ["trusted", TRUSTED],
    ]) {
      const r = check(ns, ns, src, PUBLIC, 8443);
      expect(r.got, `${ns} through the hairpin`).toBe("dropped");
      expect(r.policy, `the policy for ${ns}`).toBe("dropped");
    }
  });

  it("serves the office from the internet on that forward and no other internet host", () => {
    const office = check("inet", "wan", OFFICE, PUBLIC, 8443);
    expect([office.got, office.answer]).toEqual(["reached", `nas ${OFFICE}`]);
    expect(office.policy).toBe("reached");
    const stranger = check("inet", "wan", STRANGER, PUBLIC, 8443);
    expect(stranger.got).toBe("dropped");
    expect(stranger.policy).toBe("dropped");
  });

  it("serves an inside prefix a forward lists through the hairpin, and only that one", () => {
    const guest = check("guest", "guest", GUEST, PUBLIC, 9443);
    expect([guest.got, guest.policy]).toEqual(["reached", "reached"]);
    const trusted = check("trusted", "trusted", TRUSTED, PUBLIC, 9443);
    expect([trusted.got, trusted.policy]).toEqual(["dropped", "dropped"]);
  });
});
