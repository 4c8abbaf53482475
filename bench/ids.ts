/**
 * IDS benchmark: TCP throughput (iperf3, one stream) from the internet host to the dev site's forwarded host
 * (the first TCP port forward: the internet host connects to the primary WAN's address, the router forwards to
 * the host in the servers segment) through the virtual appliance with the XDP guard and the dev policy (the
 * loader as app.start() runs it), in three configurations measured in the same run, interleaved round by round
 * (the order alternates, so drift hits all alike):
 *
 *   Suricata off  no Suricata process: the guard, the ruleset, conntrack and the DNAT alone
 *   Suricata IDS  Suricata in IDS mode on the primary WAN (AF_PACKET, `--af-packet=<wan>`) with the dev site's
 *                 rendered suricata.yaml (paths moved into the run's directory), its local rules and a generated
 *                 set of `--rules` more (bench/ids-rules.ts), started anew for each round and measured once its
 *                 engine runs
 *   Suricata IDS + IPS  the same, and the dev site's inline pair (wan → servers, the forward's path): the forward
 *                 chain hands the flow to NFQUEUE and a second Suricata (`-q` per queue, the same files) gives the
 *                 verdicts; queue rules and the second process exist only during these rounds
 *
 * Then, with Suricata running, the offered rate in steps (`iperf3 -b`) with Suricata's capture counters
 * (kernel packets and drops of its AF_PACKET socket, read through its command socket with suricatasc) for each:
 * the highest step without a capture drop is the maximum rate without drops.
 *
 * Every configuration runs with the site's other stacks beside it, as the appliance's e2e areas run them (issue 17:
 * "everything on"): the network services' pods, the DNS stack's pods (dnsdist with its lists, Unbound, Knot, the
 * DDNS daemon, the stats collector; the test internet's DNS behind them) and the observability stack's pods
 * (Prometheus scraping the loader and the node exporter, Alertmanager, the log store and collector, the flow
 * exporters on every link). `--services none` runs the network services' pods alone.
 *
 * Deviations from the rendered file: `--set stats.interval=1` (the counters reach the command socket once an
 * interval; the rendered 10 s would blur the rounds), and `-k none` (no checksum validation). The namespaces' veths hand frames
 * on with checksums left to offload, which Suricata would count as invalid and not reassemble, inspecting less
 * than on a real NIC. The nftables IPS queue cannot load on this machine's kernel (test/helpers/nft-queue.ts), so
 * the inline row takes the stack's iptables-nft rendering of the same queue (ids/ips.iptables: NFQUEUE with bypass and
 * fanout over the site's queues; IPv4 only, as the flow is) with a second Suricata reading those queues (`-q` per
 * queue, as the DaemonSet's suricata-ips runs), beside the IDS one: its queue counters are the kernel's (packets
 * queued, dropped) and its own (packets decoded). Goals (issue 17): ≥ 1 Gbit/s with Suricata on and
 * 0 capture drops at 1 Gbit/s offered. Prints a Markdown table and writes bench/results/ids.json. Needs root.
 *
 *   npm run bench:ids [-- --runs 5] [--seconds 5] [--rules 30000] [--steps 100M,150M,200M,250M,300M,400M,500M,1G,2G]
 *                     [--services all|none]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { planIds } from "../components/ids-stack/plan";
import { suricataFiles, type IdsPaths } from "../components/ids-stack/suricata";
import { Appliance, ROOT } from "../test/e2e/lib/appliance";
import { forwardTarget } from "../test/e2e/lib/areas/common";
import { startInternetDns } from "../test/e2e/lib/areas/dns-internet";
import { type Daemon, inNs, run } from "../test/e2e/lib/exec";
import { dnsPod, networkServicePod, observabilityPod } from "../test/e2e/lib/pods";
import { internetSource } from "../test/e2e/lib/internet";
import { renderSite } from "../test/e2e/lib/rendered";
import { sleep, waitFor } from "../test/helpers/wait";
import { generatedRules } from "./ids-rules";
import { machine, median, pairedMedian } from "./lib";

type Mode = "Suricata off" | "Suricata IDS" | "Suricata IDS + IPS";
const MODES: Mode[] = ["Suricata off", "Suricata IDS", "Suricata IDS + IPS"];

interface Capture {
  packets: number;
  drops: number;
}

/** The inline queue over a round: what the kernel queued and dropped, and what the IPS process decoded. */
interface Queue {
  /** Packets the forward chain handed to the queues (the kernel's packet ids, which count every one offered). */
  queued: number;
  /** Dropped by the kernel: queue full without fail-open, or no room in the socket (queue_dropped + user_dropped). */
  drops: number;
  /**
   * Packets the IPS process decoded (its decoder.pkts); queued − inspected passed uninspected (under fail-open, which
   * the rendered configuration no longer uses: those packets are now kernel drops).
   */
  inspected: number;
}

/**
 * The kernel's NFQUEUE counters of a namespace, summed over its queues: /proc/net/netfilter/nfnetlink_queue, one
 * line per bound queue: queue number, peer portid, queue total, copy mode, copy range, queue_dropped, user_dropped,
 * id sequence, 1 (linux net/netfilter/nfnetlink_queue.c, seq_show).
 */
async function queueCounters(router: string): Promise<{ queued: number; drops: number }> {
  const r = await run(inNs(router, ["cat", "/proc/net/netfilter/nfnetlink_queue"]));
  let queued = 0;
  let drops = 0;
  for (const line of r.stdout.split("\n").filter((l) => l.trim())) {
    const f = line.trim().split(/\s+/).map(Number);
    drops += f[5] + f[6];
    queued += f[7];
  }
  return { queued, drops };
}

interface Step {
  offered: string;
  receivedBps: number;
  capture: Capture;
}

type Counters = { capture?: Record<string, number>; decoder?: Record<string, number> };

/**
 * What `pick` takes from a Suricata process's counters (suricatasc dump-counters through its command socket),
 * waited for: "stats not yet synchronized" (NOK) until the first stats interval after the engine started.
 */
async function counters<T>(router: string, socket: string, what: string, pick: (c: Counters) => T | undefined) {
  let last = "";
  return waitFor(
    `Suricata's ${what}`,
    async () => {
      const r = await run(inNs(router, ["suricatasc", "-c", "dump-counters", socket]), {
        timeoutMs: 20_000,
        allowFail: true,
      });
      last = r.stdout;
      const j = JSON.parse(r.stdout || "{}") as { return?: string; message?: Counters };
      return j.return === "OK" && j.message ? pick(j.message) : undefined;
    },
    30_000,
    500,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; suricatasc dump-counters said:\n${last.slice(0, 2000)}`);
  });
}

/** Suricata's capture counters (totals over its AF_PACKET threads). */
function capture(router: string, socket: string): Promise<Capture> {
  return counters(router, socket, "capture counters", (c) =>
    c.capture?.kernel_packets === undefined
      ? undefined
      : { packets: c.capture.kernel_packets, drops: c.capture.kernel_drops ?? 0 },
  );
}

/** Packets a Suricata process decoded (its decoder.pkts). */
function decoded(router: string, socket: string): Promise<number> {
  return counters(router, socket, "decoder counter", (c) => c.decoder?.pkts);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "5" },
      seconds: { type: "string", default: "5" },
      rules: { type: "string", default: "30000" },
      steps: { type: "string", default: "100M,150M,200M,250M,300M,400M,500M,1G,2G" },
      services: { type: "string", default: "all" },
    },
  });
  if (values.services !== "all" && values.services !== "none")
    throw new Error(`--services: ${values.services} is not one of all, none`);
  const stacks = values.services === "all";
  const runs = Number(values.runs);
  const seconds = Number(values.seconds);
  const ruleCount = Number(values.rules);
  if (process.getuid?.() !== 0) throw new Error("the IDS benchmark needs root (network namespaces, XDP, AF_PACKET)");
  const loadAtStart = loadavg();

  const rendered = await renderSite();
  const { site, plan } = rendered;
  const pf = site.portForwards.find((p) => p.protocol === "tcp" && !String(p.port).includes("-"));
  if (!pf) throw new Error("the dev site has no TCP port forward to measure through");
  const app = new Appliance({
    prefix: `bench-ids${process.env.ROUTER_E2E_TAG ?? ""}`,
    rendered,
    // the flow is iperf3 on the forwarded host; no probe services are needed
    ports: { tcp: [], udp: [] },
    beforeLoader: stacks ? [startInternetDns] : [],
    pods: (name) => networkServicePod(name) || (stacks && (dnsPod(name) || observabilityPod(name))),
  });
  await app.start();
  const pods = [...app.pods.running.keys()].sort();
  // "everything on" holds only while every pod beside the data plane runs: checked after they settled and at the end
  const alive = (when: string) => {
    const gone = [...app.pods.running].filter(([, d]) => d.exited);
    if (gone.length)
      throw new Error(`${when}, pods exited: ${gone.map(([n, d]) => `${n}\n${d.log().slice(-1500)}`).join("\n")}`);
  };
  await sleep(5000);
  alive("before the rounds");
  const samples = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const steps: Step[] = [];
  const captures = new Map<Mode, Capture[]>(MODES.map((m) => [m, []]));
  const queues: Queue[] = [];
  let loadSeconds: number[] = [];
  let loadedRules = 0;
  try {
    const wan = app.wans[0];
    const target = forwardTarget(app, pf);
    if (!target?.addr4 || !wan.addr4) throw new Error(`no host holds ${pf.to}, or the WAN has no address`);
    const port = pf.toPort ?? Number(pf.port);
    const source = internetSource(4, 0);

    // Suricata's files as rendered, in the run's directory
    const dir = join(app.work, "ids");
    const paths: IdsPaths = {
      config: join(dir, "etc"),
      rules: join(dir, "rules"),
      data: join(dir, "data"),
      logs: join(dir, "logs"),
      run: join(dir, "run"),
      alerts: join(dir, "alerts"),
      share: "/etc/suricata",
    };
    for (const d of Object.values(paths).slice(0, 6)) mkdirSync(d, { recursive: true });
    const files = suricataFiles(site, planIds(site, plan), paths);
    for (const [name, text] of files) writeFileSync(join(paths.config, name), text);
    writeFileSync(join(paths.rules, "suricata.rules"), files.get("local.rules")! + generatedRules(ruleCount));
    const socket = join(paths.run, "ids.socket");
    const ipsSocket = join(paths.run, "ips.socket");
    const queueRules = rendered.files.get("ids/ips.iptables");
    if (!queueRules) throw new Error("the dev site's render has no ids/ips.iptables (no inline pair)");
    const [firstQueue, lastQueue] = planIds(site, plan).queues;
    const queueArgs = Array.from({ length: lastQueue - firstQueue + 1 }, (_, i) => ["-q", String(firstQueue + i)]);

    let suricata: Daemon | undefined;
    let ips: Daemon | undefined;
    /** One Suricata process on the run's files: IDS on the WAN, or IPS on the site's queues; waits for its engine. */
    const engine = async (kind: "ids" | "ips"): Promise<Daemon> => {
      const t0 = Date.now();
      const logs = join(paths.logs, kind);
      mkdirSync(logs, { recursive: true });
      const d = app.daemons.start(
        `suricata-${kind}-${Date.now()}`,
        inNs(app.router, [
          ...["suricata", "-c", join(paths.config, "suricata.yaml")],
          ...(kind === "ids" ? [`--af-packet=${wan.wan.name}`] : queueArgs.flat()),
          ...["-l", logs, "--set", `unix-command.filename=${kind === "ids" ? socket : ipsSocket}`],
          ...["--set", "stats.interval=1", "-k", "none"],
        ]),
        join(app.work, `suricata-${kind}-${Date.now()}.log`),
      );
      await waitFor(
        `Suricata's ${kind} engine`,
        () => {
          if (d.exited) throw new Error(`Suricata (${kind}) exited:\n${d.log().slice(-3000)}`);
          return d.log().includes("Engine started");
        },
        180_000,
        200,
      );
      if (kind === "ids") loadSeconds.push((Date.now() - t0) / 1000);
      const stats = await run(
        inNs(app.router, ["suricatasc", "-c", "ruleset-stats", kind === "ids" ? socket : ipsSocket]),
      );
      loadedRules = (JSON.parse(stats.stdout) as { message: { rules_loaded: number }[] }).message[0].rules_loaded;
      if (loadedRules < ruleCount) throw new Error(`Suricata loaded ${loadedRules} rules, not ≥ ${ruleCount}`);
      return d;
    };
    const startSuricata = async (): Promise<void> => {
      suricata = await engine("ids");
    };
    /** The inline pair: the IPS process first, then the queue rules (bypass: no verdicts are waited for before). */
    const startIps = async (): Promise<void> => {
      ips = await engine("ips");
      await run(inNs(app.router, ["iptables-restore", "--noflush"]), { input: queueRules });
    };
    const stopSuricata = async () => {
      for (const op of ["-F", "-X"]) await run(inNs(app.router, ["iptables", "-t", "security", op]));
      for (const d of [ips, suricata]) if (d && !d.exited) await d.stop("SIGTERM", 10_000);
      suricata = undefined;
      ips = undefined;
    };

    app.daemons.start(
      "iperf3-server",
      inNs(target.ns, ["iperf3", "-s", "-B", target.addr4, "-p", String(port)]),
      join(app.work, "iperf3-server.log"),
    );
    await sleep(500);
    const iperf = async (bitrate = "0"): Promise<number> => {
      const argv = ["iperf3", "-c", wan.addr4!, "-p", String(port), "-B", source, "-b", bitrate];
      // the server takes one test at a time and may still be closing the last one ("server is busy"): try again
      let error = "";
      for (let attempt = 0; attempt < 3; attempt++) {
        const r = await run(inNs(app.inet, [...argv, "-t", String(seconds), "-J"]), {
          timeoutMs: (seconds + 20) * 1000,
          allowFail: true,
        });
        const j = JSON.parse(r.stdout || "{}") as {
          error?: string;
          end?: { sum_received?: { bits_per_second: number } };
        };
        if (j.end?.sum_received) return j.end.sum_received.bits_per_second;
        error = j.error ?? r.stderr;
        await sleep(1000);
      }
      throw new Error(`iperf3 failed three times: ${error}`);
    };
    const round = async (m: Mode): Promise<number> => {
      await stopSuricata();
      if (m !== "Suricata off") await startSuricata();
      if (m === "Suricata IDS + IPS") await startIps();
      const before = m !== "Suricata off" ? await capture(app.router, socket) : undefined;
      const queueBefore = ips
        ? { ...(await queueCounters(app.router)), inspected: await decoded(app.router, ipsSocket) }
        : undefined;
      const bps = await iperf();
      if (before) {
        await sleep(2500); // the counters are synchronised once a stats interval (1 s here)
        const after = await capture(app.router, socket);
        if (after.packets - before.packets < 1000)
          throw new Error(`Suricata captured ${after.packets - before.packets} packets of the flow`);
        captures.get(m)!.push({ packets: after.packets - before.packets, drops: after.drops - before.drops });
      }
      if (queueBefore) {
        const k = await queueCounters(app.router);
        const q = {
          queued: k.queued - queueBefore.queued,
          drops: k.drops - queueBefore.drops,
          inspected: (await decoded(app.router, ipsSocket)) - queueBefore.inspected,
        };
        if (q.inspected < 1000) throw new Error(`the IPS process decoded ${q.inspected} packets of the flow`);
        queues.push(q);
      }
      await stopSuricata();
      return bps;
    };

    // Forwarding works and the port is the forward's (a warm-up of each configuration), then the rounds
    for (const m of MODES) await round(m);
    loadSeconds = [];
    for (const c of captures.values()) c.length = 0;
    queues.length = 0;
    for (let i = 0; i < runs; i++) {
      const order = i % 2 ? [...MODES].reverse() : MODES;
      for (const m of order) {
        const bps = await round(m);
        samples.get(m)!.push(bps);
        console.error(`round ${i + 1}/${runs} ${m}: ${(bps / 1e6).toFixed(0)} Mbit/s`);
      }
    }

    // The offered rate in steps, one Suricata for all of them
    await startSuricata();
    for (const offered of values.steps.split(",")) {
      const before = await capture(app.router, socket);
      const bps = await iperf(offered);
      await sleep(2500);
      const after = await capture(app.router, socket);
      const c = { packets: after.packets - before.packets, drops: after.drops - before.drops };
      steps.push({ offered, receivedBps: bps, capture: c });
      console.error(`offered ${offered}: ${(bps / 1e6).toFixed(0)} Mbit/s, ${c.packets} captured, ${c.drops} dropped`);
    }
    await stopSuricata();
    alive("after the rounds and steps");
  } finally {
    await app.stop();
  }
  report({
    runs,
    seconds,
    ruleCount,
    loadedRules,
    loadSeconds,
    samples,
    captures,
    queues,
    steps,
    loadAtStart,
    pf: pf.name,
    pods,
  });
}

interface Figures {
  runs: number;
  seconds: number;
  ruleCount: number;
  loadedRules: number;
  loadSeconds: number[];
  samples: Map<Mode, number[]>;
  /** Suricata IDS's capture over each measured round of a mode. */
  captures: Map<Mode, Capture[]>;
  /** The inline queue over each measured round. */
  queues: Queue[];
  steps: Step[];
  loadAtStart: number[];
  pf: string;
  /** The pods that ran beside the data plane in every configuration. */
  pods: string[];
}

/** Bits per second of an iperf3 rate (`500M`, `1G`, `0` for unlimited). */
function rate(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)$/.exec(s);
  if (!m) throw new Error(`--steps: ${s} is not a rate like 500M or 1G`);
  return Number(m[1]) * { "": 1, K: 1e3, M: 1e6, G: 1e9 }[m[2] as "" | "K" | "M" | "G"];
}

function report(f: Figures): void {
  const off = median(f.samples.get("Suricata off")!);
  const on = median(f.samples.get("Suricata IDS")!);
  const paired = pairedMedian(f.samples.get("Suricata IDS")!, f.samples.get("Suricata off")!);
  const inline = median(f.samples.get("Suricata IDS + IPS")!);
  const pairedInline = pairedMedian(f.samples.get("Suricata IDS + IPS")!, f.samples.get("Suricata off")!);
  const sum = <T>(xs: T[], k: (x: T) => number) => xs.reduce((a, x) => a + k(x), 0);
  const queue: Queue = {
    queued: sum(f.queues, (q) => q.queued),
    drops: sum(f.queues, (q) => q.drops),
    inspected: sum(f.queues, (q) => q.inspected),
  };
  const captureOf = (m: Mode): Capture => ({
    packets: sum(f.captures.get(m)!, (c) => c.packets),
    drops: sum(f.captures.get(m)!, (c) => c.drops),
  });
  // the highest step below which no step dropped
  let maxClean = 0;
  for (const s of [...f.steps].sort((a, b) => rate(a.offered) - rate(b.offered))) {
    if (s.capture.drops > 0) break;
    maxClean = rate(s.offered);
  }
  const at1G = f.steps.find((s) => rate(s.offered) === 1e9);
  const goals = {
    throughput: { medianMbps: on / 1e6, goalMbps: 1000, met: on >= 1e9 },
    throughputInline: { medianMbps: inline / 1e6, goalMbps: 1000, met: inline >= 1e9 },
    dropsAt1G: { drops: at1G?.capture.drops, goal: 0, met: at1G !== undefined && at1G.capture.drops === 0 },
  };
  const result = {
    machine: machine(f.loadAtStart),
    method: {
      runs: f.runs,
      secondsPerRun: f.seconds,
      flow: `one TCP stream, iperf3 from an internet source to the primary WAN's address, port forward ${f.pf} to the servers segment`,
      rules: { generated: f.ruleCount, loaded: f.loadedRules },
      suricataStartSeconds: f.loadSeconds,
      podsAlongside: f.pods,
    },
    medianMbps: { off: off / 1e6, ids: on / 1e6, idsIps: inline / 1e6 },
    samples: Object.fromEntries(MODES.map((m) => [m, f.samples.get(m)])),
    ratio: { ofMedians: on / off, perRound: paired },
    ratioInline: { ofMedians: inline / off, perRound: pairedInline },
    captureOverRounds: Object.fromEntries(MODES.slice(1).map((m) => [m, f.captures.get(m)])),
    queueOverRounds: f.queues,
    steps: f.steps,
    maxRateWithoutDropsMbps: maxClean / 1e6,
    goals,
  };
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(join(ROOT, "bench/results/ids.json"), `${JSON.stringify(result, null, 2)}\n`);
  const mbps = (x: number) => `${(x / 1e6).toFixed(0)} Mbit/s`;
  const m = result.machine;
  console.log(
    `IDS throughput: internet → forwarded host (${f.pf}), TCP (iperf3, one stream), median of ${f.runs} interleaved ` +
      `runs of ${f.seconds} s, ${m.cpus} CPUs (${m.model}), kernel ${m.kernel}; Suricata IDS on the primary WAN with ` +
      `${f.loadedRules} rules (start to engine running: median ${median(f.loadSeconds).toFixed(1)} s); beside it in every ` +
      `configuration: ${f.pods.join(", ")}\n`,
  );
  console.log(
    "| configuration | median | samples (Mbit/s) | ratio of medians | ratio per round (median) | capture drops | queue: queued / kernel drops / uninspected | goal | met |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  const drops = (c: Capture) => `${c.drops} of ${c.packets}`;
  const samples = (x: Mode) =>
    f.samples
      .get(x)!
      .map((s) => (s / 1e6).toFixed(0))
      .join(", ");
  console.log(`| Suricata off | ${mbps(off)} | ${samples("Suricata off")} | 1.00 | 1.00 | — | — | — | — |`);
  console.log(
    `| Suricata IDS | ${mbps(on)} | ${samples("Suricata IDS")} | ${(on / off).toFixed(2)} × off | ` +
      `${paired.toFixed(2)} × off | ${drops(captureOf("Suricata IDS"))} | — | ≥ 1000 Mbit/s | ` +
      `${goals.throughput.met ? "yes" : "**no**"} |`,
  );
  console.log(
    `| Suricata IDS + IPS (inline pair) | ${mbps(inline)} | ${samples("Suricata IDS + IPS")} | ` +
      `${(inline / off).toFixed(2)} × off | ${pairedInline.toFixed(2)} × off | ${drops(captureOf("Suricata IDS + IPS"))} | ` +
      `${queue.queued} / ${queue.drops} / ${queue.queued - queue.inspected} | ≥ 1000 Mbit/s | ` +
      `${goals.throughputInline.met ? "yes" : "**no**"} |`,
  );
  console.log("\n| offered (iperf3 -b) | received | captured packets | capture drops |");
  console.log("|---|---|---|---|");
  for (const s of f.steps)
    console.log(`| ${s.offered} | ${mbps(s.receivedBps)} | ${s.capture.packets} | ${s.capture.drops} |`);
  console.log(
    `\nmax offered rate without capture drops: ${maxClean ? mbps(maxClean) : "none of the steps"}; ` +
      `0 drops at 1 Gbit/s offered: ${goals.dropsAt1G.met ? "yes" : `**no** (${at1G?.capture.drops ?? "not measured"})`}`,
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
