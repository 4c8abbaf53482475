/**
 * BFD as Talos' BGP speaks it: GoBGP at the version Talos pins (tools/gobgp), with a BFD neighbour, against a
 * scripted neighbour written from RFC 5880 alone (tools/bfd-neighbour.mjs) in a namespace of its own.
 *
 * README ("The network layer") tells operators to give a BGP neighbour's BFD session a fixed local address and
 * interface, because this GoBGP can stay in Init for good when the neighbour replaces its session (a new
 * discriminator) while GoBGP is in Init: FRR's `neighbor X bfd` does that once BGP comes up. This file holds that
 * advice to the pinned version: the normal three-way handshake comes Up; the replaced session is never taken up.
 * When Talos moves to a GoBGP that discards packets from an unbound discriminator (v4.8.0: Init then expires and
 * binds the new session), the second test fails, and the advice and this test can go.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { GOBGPD, gobgpConfig } from "../e2e/lib/talos-bgp";
import { tier } from "../helpers/tier";
import { Netns } from "./netns";

const t = tier("GoBGP's BFD against a scripted neighbour", {
  root: true,
  commands: ["ip", "node"],
  files: [GOBGPD],
  hint: "npm run build:tools",
});

const ROUTER = "10.77.0.1";
const NEIGHBOUR = "10.77.0.2";
const SCRIPT = join(__dirname, "tools", "bfd-neighbour.mjs");

interface Received {
  t: number;
  state: string;
  poll: boolean;
  my: number;
  your: number;
}
interface Step {
  ms: number;
  state: "down" | "init" | "up";
  my: number;
  your: "zero" | "learned";
}

describe.skipIf(!t.ok)("Talos' BGP (GoBGP, the pinned version) and BFD", () => {
  let lab: Netns | undefined;
  afterEach(() => lab?.close());

  /** Starts gobgpd with one passive BFD neighbour, plays `plan` as that neighbour, returns what GoBGP sent. */
  async function play(plan: Step[]): Promise<Received[]> {
    lab = new Netns("gbfd");
    lab.add("r", "n");
    lab.link("r", "eth0", "n", "eth0");
    lab.exec("r", ["ip", "address", "add", `${ROUTER}/24`, "dev", "eth0"]);
    lab.exec("n", ["ip", "address", "add", `${NEIGHBOUR}/24`, "dev", "eth0"]);
    const conf = join(lab.dir, "gobgpd.toml");
    writeFileSync(
      conf,
      gobgpConfig({
        name: "default",
        localASN: 65001,
        routerID: ROUTER,
        neighbors: [{ address: NEIGHBOUR, peerASN: 65002, bfd: {} }],
      }),
    );
    await lab.background(
      "r",
      [GOBGPD, "-f", conf, "-p", "--pprof-disable", "--api-hosts=127.0.0.1:50152"],
      /Insert BFD peer/,
    );
    const r = spawnSync(
      "ip",
      ["netns", "exec", lab.name("n"), "node", SCRIPT, NEIGHBOUR, ROUTER, JSON.stringify(plan)],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout.trim().split("\n").pop()!) as Received[];
  }

  const A = 0x0a0a0a0a;
  const B = 0x0b0b0b0b;
  /** GoBGP starts its BFD client and server on a 1 s tick; 4 s of Down packets put it in Init towards A. */
  const downFromA: Step = { ms: 4000, state: "down", my: A, your: "zero" };

  /**
   * Plays 4 s of Down from A, then `next`; checks that GoBGP answered A with Init during the first step and returns
   * what it sent from `settle` ms into `next` on.
   */
  async function afterInitTowardsA(next: Step, settle: number): Promise<Received[]> {
    const got = await play([downFromA, next]);
    const before = got.filter((p) => p.t < downFromA.ms);
    expect(
      before.some((p) => p.state === "init" && p.your === A),
      JSON.stringify(before),
    ).toBe(true);
    return got.filter((p) => p.t >= downFromA.ms + settle);
  }

  it("answers a neighbour's Down with Init for its discriminator, and comes Up on the neighbour's Up", async () => {
    const last = await afterInitTowardsA({ ms: 3000, state: "up", my: A, your: "learned" }, 1500);
    expect(last.length, "GoBGP keeps sending once Up").toBeGreaterThan(0);
    expect(
      last.every((p) => p.state === "up" && p.your === A),
      JSON.stringify(last),
    ).toBe(true);
  }, 30_000);

  it("stays in Init towards the old discriminator when the neighbour replaces its session while GoBGP is in Init (the README's BFD advice)", async () => {
    // the replacement keeps sending Down, Your Discriminator zero, for three detection times (3 x 1 s)
    const after = await afterInitTowardsA({ ms: 9000, state: "down", my: B, your: "zero" }, 1000);
    expect(after.length, "GoBGP keeps sending").toBeGreaterThan(4);
    // RFC 5880 6.8.6 has the session learn B from the first of these packets; this GoBGP neither learns it nor
    // lets Init expire, so the new session (which drops packets for A) never hears it
    expect(
      after.filter((p) => !(p.state === "init" && p.your === A)),
      "GoBGP packets other than Init towards the replaced session",
    ).toEqual([]);
  }, 30_000);
});
