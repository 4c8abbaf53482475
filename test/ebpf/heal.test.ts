/**
 * The loader heals by itself and survives a killed process, with the real loader on a pair of network namespaces
 * (the WAN a veth, a segment a second one):
 * - an XDP attach refused because another program holds the WAN through a BPF link (an operator's tool): the
 *   loader reports degraded, never touches that program, retries on a timer with a doubling delay (logging the
 *   problem once), and attaches by itself once the program is gone — releasing a BPF link sends no netlink
 *   event, so only the timer can notice; the nftables ruleset stays in force throughout;
 * - SIGKILL with its pins surviving (the Talos path: bpffs outlives an extension-service restart): a new loader on
 *   the same bpffs replaces its own XDP link in place, with no frame from a blocklisted or dynamically blocked
 *   source delivered while a probe sends them in a loop across the restart, keeps the dynamic blocklist's entry
 *   (its tables are pinned and reused, DESIGN decision 11 and dataplane.h) and reports ok;
 * - a reload that loads new programs (another [ratelimit] slots) moves the dynamic block with them, again with no
 *   blocked frame delivered while the links switch;
 * - programs that could not be loaded at the start (bpffs mounted only later) are loaded by the same timer, with no
 *   SIGHUP.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import {
  BUILD,
  BUILD_COMMANDS,
  FIXTURES,
  LOADER,
  TOOLS,
  buildEbpf,
  ensureBpffs,
  inNetns,
  ip,
  jsonLines,
  loaderHealth,
  parseMetrics,
  replaceFile,
  sendFrames,
  sleep,
  spawnInNetns,
  startLoaderIn,
  stopProcess,
  tempDir,
  udpSink,
  waitFor,
} from "./lib";

const t = tier("ebpf-heal", {
  root: true,
  commands: [...BUILD_COMMANDS, "ip", "nsenter", "curl", "nft", "setpriv", "/usr/bin/python3", "mount", "umount"],
});

const ID = process.pid % 100000;
const NS = { rtr: `dphr${ID}`, peer: `dphp${ID}` };
const PIN = `/sys/fs/bpf/router-dataplane-heal-${process.pid}`;
const PORT = 22000 + (process.pid % 1000);
const WAN = "81.2.69.1";
const CLEAN = "8.8.8.8";
const BLOCKED = "185.220.101.5"; // 185.220.101.0/24 in the blocklist fixture
const DYN = "45.80.1.66"; // in no list: blocked only through the dynamic blocklist
const AGENT_UID = 65534;
/** The loader's first retry delay and its cap (main.c ATTACH_RETRY_FIRST_S, ATTACH_RETRY_MAX_S). */
const FIRST_RETRY_S = 5;

interface LogLine {
  level: string;
  event: string;
  msg: string;
}

interface Health {
  status: string;
  reasons: { reason: string; message: string }[];
  ruleset: string;
  interfaces: { interface: string; attached: boolean; mode: string; error: string | null }[];
}

const RULESET = `table inet router {
	comment "heal test ruleset"
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
	}
}
`;

describe.skipIf(!t.ok)("the loader heals a refused XDP attach and survives SIGKILL with its pins", () => {
  let dir = "";
  let conf = "";
  let log = "";
  let loader: ChildProcess | undefined;
  let wanMac = "";
  const children: ChildProcess[] = [];

  const events = () => jsonLines<LogLine>(log);
  const metrics = () => parseMetrics(inNetns(NS.rtr, "curl", ["-sf", `http://127.0.0.1:${PORT}/metrics`]));
  const metric = (name: string) => metrics().get(name) ?? 0;
  const wanLink = () => ip("-n", NS.rtr, "link", "show", "wan0");
  const routerTable = () =>
    spawnSync("nsenter", [`--net=/run/netns/${NS.rtr}`, "nft", "list", "table", "inet", "router"], {
      encoding: "utf8",
    }).stdout;

  const health = () => loaderHealth<Health>(NS.rtr, PORT);

  async function start(): Promise<void> {
    loader = await startLoaderIn(NS.rtr, [LOADER, "--config", conf], {
      log: () => log,
      onLog: (d) => (log += d),
      ready: () => health() !== undefined,
    });
  }

  /** Spoofed UDP frames from src to the router's WAN address. */
  const send = (src: string, tag: number, count: number, pps: number) =>
    sendFrames(NS.peer, { ifname: "wanp", dstMac: wanMac, src, dst: WAN, tag, count, pps });

  /** Holds bench_pass at XDP on wan0 through a BPF link (generic mode) until stopped; resolves once attached. */
  async function holdForeign(): Promise<{ child: ChildProcess; progId: number }> {
    const child = spawnInNetns(NS.rtr, join(TOOLS, "xdp_hold"), [join(BUILD, "bench_pass.bpf.o"), "wan0", "--generic"]);
    children.push(child);
    let out = "";
    child.stdout?.on("data", (d) => (out += d));
    await waitFor("the foreign program", () => out.includes('"ready"') || child.exitCode !== null);
    const line = jsonLines<{ ready: boolean; prog_id?: number; why?: string }>(out)[0];
    if (!line?.ready) throw new Error(`xdp_hold failed: ${out}`);
    return { child, progId: line.prog_id! };
  }

  /** The id of our guard's program on wan0, or undefined when it does not run there. */
  const guardProg = () => wanLink().match(/prog\/xdp id (\d+) name wan_guard/)?.[1];

  /**
   * Sends count frames at pps from each of sources (tag: its place in the list, from 1) while during() runs, and
   * returns per source the frames sent, those that reached the router (received) and the distinct ones.
   */
  async function delivered(
    sources: string[],
    count: number,
    pps: number,
    during: () => Promise<unknown> = async () => undefined,
  ): Promise<Record<string, { sent: number; received: number; distinct: number }>> {
    const sink = await udpSink(NS.rtr, children);
    const traffic = Promise.all(sources.map((src, i) => send(src, i + 1, count, pps)));
    await during();
    const sent = await traffic;
    const got = await sink.stop();
    return Object.fromEntries(
      sources.map((src, i) => {
        const g = got[String(i + 1)];
        return [src, { sent: sent[i], received: g?.received ?? 0, distinct: g?.distinct ?? 0 }];
      }),
    );
  }

  /** What the probe saw, as the report gives it. */
  const describeDelivery = (d: Awaited<ReturnType<typeof delivered>>) =>
    `clean ${d[CLEAN].distinct}/${d[CLEAN].sent}, blocklisted ${d[BLOCKED].received}/${d[BLOCKED].sent}, ` +
    `dynamically blocked ${d[DYN].received}/${d[DYN].sent}`;

  beforeAll(async () => {
    buildEbpf("loader");
    buildEbpf("tests");
    ensureBpffs();
    dir = tempDir("dp-heal-");
    chmodSync(dir, 0o755); // the block agent's uid reaches its socket below
    mkdirSync(join(dir, "state"));
    mkdirSync(join(dir, "block"));
    for (const ns of Object.values(NS)) {
      spawnSync("ip", ["netns", "del", ns]);
      ip("netns", "add", ns);
      // no duplicate address detection: no address event comes late to set off an attach the test does not time
      inNetns(ns, "sysctl", ["-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
    }
    ip("link", "add", "wan0", "netns", NS.rtr, "type", "veth", "peer", "name", "wanp", "netns", NS.peer);
    ip("link", "add", "lan0.10", "netns", NS.rtr, "type", "veth", "peer", "name", "lanp", "netns", NS.peer);
    for (const [ns, dev] of [
      [NS.rtr, "lo"],
      [NS.rtr, "wan0"],
      [NS.rtr, "lan0.10"],
      [NS.peer, "lo"],
      [NS.peer, "wanp"],
      [NS.peer, "lanp"],
    ])
      ip("-n", ns, "link", "set", dev, "up");
    ip("-n", NS.rtr, "addr", "add", `${WAN}/24`, "dev", "wan0");
    ip("-n", NS.rtr, "addr", "add", "192.168.10.1/24", "dev", "lan0.10");
    inNetns(NS.rtr, "sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.wan0.rp_filter=0"]);
    wanMac = (JSON.parse(ip("-n", NS.rtr, "-j", "link", "show", "wan0")) as { address: string }[])[0].address;
    writeFileSync(join(dir, "router.nft"), RULESET);
    conf = join(dir, "dataplane.conf");
    writeFileSync(
      conf,
      `[global]
pin_root = ${PIN}
metrics_address = 127.0.0.1
metrics_port = ${PORT}
nft_ruleset = ${join(dir, "router.nft")}
state_dir = ${join(dir, "state")}

[interface wan0]
role = wan
xdp_mode = native

[interface lan0.10]
role = segment
segment = trusted
segment_id = 10

[tables]
block = ${join(FIXTURES, "tables/block.txt")}

[dynamic_block]
socket = ${join(dir, "block", "block.sock")}
agent_uid = ${AGENT_UID}
duration = 1h
`,
    );
    chmodSync(join(dir, "block"), 0o777);
  }, 600_000);

  const lateBpffs = () => join(dir, "late-bpffs");

  afterAll(async () => {
    await stopProcess(loader);
    // the links pinned there go before the mount does
    rmSync(join(lateBpffs(), "pins"), { recursive: true, force: true });
    spawnSync("umount", [lateBpffs()]);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const ns of Object.values(NS)) spawnSync("ip", ["netns", "del", ns]);
    rmSync(PIN, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let foreign: { child: ChildProcess; progId: number } | undefined;
  /** Mono times (ms) at which the loader's attach attempt counter on wan0 was first seen at n. */
  const seenAt = new Map<number, number>();
  let started = 0;

  /** Polls the attempt counter every 100 ms until it reaches n; records when each value was first seen. */
  async function attemptsReach(n: number, timeoutMs: number): Promise<void> {
    await waitFor(
      `attach attempt ${n} on wan0`,
      () => {
        const a = metric('router_dataplane_attach_attempts_total{interface="wan0"}');
        if (!seenAt.has(a)) seenAt.set(a, performance.now());
        return a >= n;
      },
      timeoutMs,
      100,
    );
  }

  it("started while another program holds the WAN through a BPF link: degraded, that program untouched, the ruleset in, retried on a timer and logged once", async () => {
    foreign = await holdForeign();
    await start();
    started = performance.now();
    const h = health()!;
    expect(h.code).toBe(503);
    expect(h.body.reasons.map((r) => r.reason)).toEqual(["attach"]);
    expect(h.body.reasons[0].message).toMatch(/wan0: cannot attach XDP \(native mode\)/);
    expect(h.body.ruleset).toBe("applied");
    expect(h.body.interfaces.find((i) => i.interface === "lan0.10")).toMatchObject({ attached: true });
    expect(metric('router_dataplane_degraded{reason="attach"}')).toBe(1);
    expect(metric('router_dataplane_attach_attempts_total{interface="wan0"}')).toBe(1);
    expect(metric('router_dataplane_attach_failures_total{interface="wan0"}')).toBe(1);
    // the first retry, after the first delay: still refused, the foreign program still there
    await attemptsReach(2, (FIRST_RETRY_S + 3) * 1000);
    expect(metric('router_dataplane_attach_failures_total{interface="wan0"}')).toBe(2);
    expect(wanLink()).toMatch(new RegExp(`prog/xdp id ${foreign.progId} name bench_pass`));
    expect(metric('router_dataplane_degraded{reason="attach"}')).toBe(1);
    expect(health()!.code).toBe(503);
    expect(routerTable()).toContain("heal test ruleset");
    // the problem is logged once, not per retry; the segment that runs ours is not attached again
    expect(events().filter((e) => e.event === "bpf_degraded" && e.msg.startsWith("wan0:")).length).toBe(1);
    expect(events().filter((e) => e.event === "attach" && e.msg.startsWith("lan0.10:")).length).toBe(2);
    // segments count their attempts too
    expect(metric('router_dataplane_attach_attempts_total{interface="lan0.10"}')).toBe(1);
    expect(metric('router_dataplane_attach_failures_total{interface="lan0.10"}')).toBe(0);
  }, 60_000);

  it("attaches by itself within the next (doubled) delay once the foreign program's link is released, and reports ok", async () => {
    expect(foreign).toBeDefined();
    const released = performance.now();
    await stopProcess(foreign!.child);
    expect(wanLink()).not.toMatch(/prog\/xdp/);
    // the delay after the first retry is twice the first
    await waitFor("the guard on the WAN", () => guardProg() !== undefined, (2 * FIRST_RETRY_S + 4) * 1000, 100);
    const healed = performance.now();
    await attemptsReach(3, 2000);
    expect(metric('router_dataplane_attach_failures_total{interface="wan0"}')).toBe(2);
    expect(metric('router_dataplane_degraded{reason="attach"}')).toBe(0);
    const h = health()!;
    expect(h.code).toBe(200);
    expect(h.body.status).toBe("ok");
    expect(h.body.interfaces.find((i) => i.interface === "wan0")).toMatchObject({ attached: true, mode: "native" });
    await waitFor("the recovery in the log", () => events().some((e) => e.event === "attach_recovered"));
    expect(
      events()
        .filter((e) => e.event === "attach_recovered")
        .map((e) => e.msg),
    ).toEqual(["wan0: the programs run on it again (retry timer; 2 of 3 attempts failed)"]);
    expect(events().filter((e) => e.event === "bpf_degraded").length).toBe(1);
    expect(routerTable()).toContain("heal test ruleset");
    // the retries' spacing: the first delay, then twice it
    const second = (seenAt.get(2)! - started) / 1000;
    const third = (seenAt.get(3)! - seenAt.get(2)!) / 1000;
    console.log(
      `attach retries: 1st retry ${second.toFixed(2)} s after the start, 2nd ${third.toFixed(2)} s after it; ` +
        `guard on the WAN ${((healed - released) / 1000).toFixed(2)} s after the foreign link was released`,
    );
    expect(second).toBeGreaterThan(FIRST_RETRY_S - 1);
    expect(second).toBeLessThan(FIRST_RETRY_S + 3);
    expect(third).toBeGreaterThan(2 * FIRST_RETRY_S - 1);
    expect(third).toBeLessThan(2 * FIRST_RETRY_S + 3);
    // the guard works
    const d = await delivered([CLEAN, BLOCKED], 100, 1000);
    expect(d[CLEAN].distinct).toBe(100);
    expect(d[BLOCKED].received).toBe(0);
  }, 60_000);

  it("killed (SIGKILL) and started again on the same bpffs: its XDP link replaced in place with no blocked frame delivered, the dynamic block kept, ok", async () => {
    // the block agent names a source; the loader blocks it
    inNetns(NS.rtr, "setpriv", [
      ...["--reuid", String(AGENT_UID), "--regid", String(AGENT_UID), "--clear-groups", "/usr/bin/python3", "-c"],
      "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(sys.argv[2].encode(), sys.argv[1])",
      join(dir, "block", "block.sock"),
      `block ${DYN} 1`,
    ]);
    await waitFor("the dynamic block", () => metric("router_dataplane_dynamic_block_entries") === 1);
    const progBefore = guardProg();
    expect(progBefore).toBeDefined();
    const drops = (reason: string) => metric(`router_dataplane_drop_packets_total{reason="${reason}"}`);
    const dropsBefore = { blocklist: drops("blocklist"), dynamic: drops("dynamic") };
    const from = log.length;
    let killed = 0;
    let restarted = 0;
    // 3 s of each source at 2000 frames/s while the loader is killed and started again
    const d = await delivered([CLEAN, BLOCKED, DYN], 6000, 2000, async () => {
      await sleep(500);
      killed = performance.now();
      loader!.kill("SIGKILL");
      await new Promise((r) => loader!.once("close", r));
      // between the two loaders the pinned link keeps the guard on the WAN
      expect(guardProg()).toBe(progBefore);
      await start();
      restarted = performance.now();
    });
    console.log(
      `SIGKILL restart: ${((restarted - killed) / 1000).toFixed(2)} s from the kill to the new loader's /health; ` +
        `delivered during the restart: ${describeDelivery(d)}`,
    );
    expect([d[CLEAN].sent, d[BLOCKED].sent, d[DYN].sent]).toEqual([6000, 6000, 6000]);
    expect(d[BLOCKED].received).toBe(0);
    expect(d[DYN].received).toBe(0);
    expect(d[CLEAN].distinct).toBe(6000);
    const after = jsonLines<LogLine>(log.slice(from));
    expect(after.some((e) => e.event === "xdp_mode_change")).toBe(false);
    expect(after.filter((e) => e.event === "bpf_degraded").map((e) => e.msg)).toEqual([]);
    expect(after.some((e) => e.event === "attach" && e.msg === "wan0: xdp@wan0 (updated in place)")).toBe(true);
    expect(after.some((e) => e.msg === "1 blocked sources taken over from the previous programs")).toBe(true);
    expect(guardProg()).not.toBe(progBefore);
    expect(metric("router_dataplane_dynamic_block_entries")).toBe(1);
    // the counters are pinned and reused too: every drop across the restart is in them, nothing went back
    expect(drops("blocklist")).toBeGreaterThanOrEqual(dropsBefore.blocklist + 6000);
    expect(drops("dynamic")).toBeGreaterThanOrEqual(dropsBefore.dynamic + 6000);
    const h = health()!;
    expect(h.code).toBe(200);
    expect(h.body.status).toBe("ok");
    expect(routerTable()).toContain("heal test ruleset");
    // the kept entry still blocks, the clean source still passes
    const again = await delivered([CLEAN, DYN], 100, 1000);
    expect(again[CLEAN].distinct).toBe(100);
    expect(again[DYN].received).toBe(0);
  }, 60_000);

  it("a reload that loads new programs (another [ratelimit] slots) carries the dynamic block over with no blocked frame delivered", async () => {
    expect(metric("router_dataplane_dynamic_block_entries")).toBe(1);
    const progBefore = guardProg();
    expect(progBefore).toBeDefined();
    const from = log.length;
    const d = await delivered([CLEAN, BLOCKED, DYN], 4000, 2000, async () => {
      await sleep(500);
      replaceFile(conf, `${readFileSync(conf, "utf8")}\n[ratelimit]\nslots = 65536\n`);
      await waitFor("the reload", () => jsonLines<LogLine>(log.slice(from)).some((e) => e.event === "reloaded"));
    });
    console.log(`reload onto new programs: delivered ${describeDelivery(d)}`);
    const after = jsonLines<LogLine>(log.slice(from));
    // new programs, the same (reused) tables: the block is marked in their summary before the link moves
    expect(guardProg()).not.toBe(progBefore);
    expect(after.some((e) => e.msg === "1 blocked sources taken over from the previous programs")).toBe(true);
    expect(d[BLOCKED].received).toBe(0);
    expect(d[DYN].received).toBe(0);
    expect(d[CLEAN].distinct).toBe(4000);
    expect(metric("router_dataplane_dynamic_block_entries")).toBe(1);
    expect(health()!.body.status).toBe("ok");
  }, 60_000);

  it("loads the programs by itself once a bpffs that was missing at the start is mounted (no SIGHUP)", async () => {
    await stopProcess(loader);
    rmSync(PIN, { recursive: true, force: true }); // our links go: the WAN runs nothing
    expect(guardProg()).toBeUndefined();
    mkdirSync(lateBpffs());
    replaceFile(
      conf,
      readFileSync(conf, "utf8").replace(`pin_root = ${PIN}`, `pin_root = ${join(lateBpffs(), "pins")}`),
    );
    const from = log.length;
    await start();
    // the loader found no bpffs before it answered: its retry timer started before this moment
    const answered = performance.now();
    const h = health()!;
    expect(h.code).toBe(503);
    expect(h.body.reasons.map((r) => r.reason)).toEqual(["bpf"]);
    expect(h.body.reasons[0].message).toMatch(/is not on a bpf filesystem/);
    expect(h.body.ruleset).toBe("applied");
    const mounted = performance.now();
    expect(spawnSync("mount", ["-t", "bpf", "bpf", lateBpffs()]).status).toBe(0);
    // By the retry timer's round after the one next due, at the latest (rounds 5 s after the failure, then 10,
    // 20, 40 … later), with 3 s of lateness: the timer, not a signal, must bring the programs in, and on a
    // machine loaded by the whole suite a round ran more than 4 s late. The failure came before the loader
    // answered, so counting from then is late enough. The exact spacing is the retry test's above.
    const elapsed = (mounted - answered) / 1000;
    let due = FIRST_RETRY_S;
    let delay = FIRST_RETRY_S;
    while (due < elapsed) due += delay *= 2;
    await waitFor("the programs", () => health()?.body.status === "ok", (due + 2 * delay - elapsed + 3) * 1000, 100);
    console.log(`programs loaded ${((performance.now() - mounted) / 1000).toFixed(2)} s after the bpffs was mounted`);
    await waitFor("the recovery in the log", () =>
      jsonLines<LogLine>(log.slice(from)).some((e) => e.event === "bpf_recovered"),
    );
    expect(jsonLines<LogLine>(log.slice(from)).filter((e) => e.event === "sighup")).toEqual([]);
    expect(guardProg()).toBeDefined();
    const d = await delivered([CLEAN, BLOCKED], 100, 1000);
    expect(d[CLEAN].distinct).toBe(100);
    expect(d[BLOCKED].received).toBe(0);
  }, 60_000);
});
