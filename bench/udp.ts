/**
 * UDP reply benchmark: one UDP flow from one internet source to a LAN client that started it (`iperf3 -u -R`: the
 * trusted client opens the flow through the router's NAT, then the internet host sends), through the virtual
 * appliance of the dev site, in two configurations measured in the same run, interleaved round by round (the
 * order alternates, so drift hits both alike):
 *
 *   guard detached  the loader stopped: its XDP guard goes with its bpffs; the ruleset, conntrack and NAT stay
 *   XDP_PASS only   the guard detached and a program that passes every frame attached natively to the WAN in its
 *                   place (informational): on a veth, attaching any XDP program moves the link's receive path to
 *                   NAPI, which costs by itself; this row shows that share apart from the guard's
 *   guard attached  the loader running the dev site's configuration: the guard on the WANs at the site's default
 *                   rate limits (UDP 5,000 packets/s per source, burst 10,000), which a single flow from one
 *                   server exceeds many times over; its replies must not be charged (conntrack lookup)
 *   guard, no limit the same loader with the UDP limit out of the flow's reach (informational): the guard and the
 *                   segment programs without a single conntrack lookup, so the lookups' share shows apart
 *
 * Each round reports what the client received (iperf3's receiver side) and, with the guard, how the guard's own
 * counters moved (frames passed as conntrack replies, UDP frames dropped over the limit). Goal: the median with
 * the guard ≥ 0.9 × the median without. Prints a Markdown table and writes bench/results/udp.json. Needs root.
 *
 *   npm run bench:udp [-- --runs 7] [--seconds 5] [--bitrate 0] [--length 1448]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Appliance, ROOT } from "../test/e2e/lib/appliance";
import { metrics } from "../test/e2e/lib/checks";
import { inNs, run } from "../test/e2e/lib/exec";
import { sleep, waitFor } from "../test/helpers/wait";
import { INTERNET } from "../test/e2e/lib/internet";
import { hostConfig, renderSite } from "../test/e2e/lib/rendered";
import { EXTENSION_NAME } from "../components/dataplane/loader-config";
import { machine, median, pairedMedian } from "./lib";

type Mode = "guard detached" | "XDP_PASS only" | "guard attached" | "guard, no limit";
const MODES: Mode[] = ["guard detached", "XDP_PASS only", "guard attached", "guard, no limit"];
const GUARDED: Mode[] = ["guard attached", "guard, no limit"];
const PASS_OBJECT = join(ROOT, "ebpf/build/bench_pass.bpf.o");

interface Sample {
  receivedBps: number;
  sentBps: number;
  lostPercent: number;
  packets: number;
  /** Guard counters over the round (attached only). */
  conntrackReplies?: number;
  ratelimitUdpDrops?: number;
}

interface IperfEnd {
  end: {
    sum: { bits_per_second: number; lost_percent: number; packets: number };
    sum_received: { bits_per_second: number };
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "7" },
      seconds: { type: "string", default: "5" },
      bitrate: { type: "string", default: "0" },
      length: { type: "string", default: "1448" },
    },
  });
  const runs = Number(values.runs);
  const seconds = Number(values.seconds);
  if (process.getuid?.() !== 0) throw new Error("the UDP benchmark needs root (network namespaces, XDP)");
  const loadAtStart = loadavg();

  const rendered = await renderSite();
  const limit = rendered.site.dataplane.rateLimits.udp;
  const files = hostConfig(rendered).extensionFiles.get(EXTENSION_NAME)!;
  const confPath = [...files.keys()].find((p) => p.endsWith("dataplane.conf"))!;
  const unlimited = files
    .get(confPath)!
    .replace(/^udp_rate = \d+$/m, "udp_rate = 100000000")
    .replace(/^udp_burst = \d+$/m, "udp_burst = 1000000");
  if (unlimited === files.get(confPath)) throw new Error(`${confPath} has no udp_rate to raise`);
  const app = new Appliance({
    prefix: `bench-udp${process.env.ROUTER_E2E_TAG ?? ""}`,
    rendered,
    // the flow is iperf3 on the internet host; no probe services are needed
    ports: { tcp: [], udp: [] },
  });
  await app.start();
  const samples = new Map<Mode, Sample[]>(MODES.map((m) => [m, []]));
  const state: string[] = [];
  try {
    const client = app.client("trusted");
    const wan = app.wans[0].wan.name;
    app.daemons.start(
      "iperf3-server",
      inNs(app.inet, ["iperf3", "-s", "-B", INTERNET.server4, "-p", "5202"]),
      join(app.work, "iperf3-server.log"),
    );
    await sleep(500);

    const setMode = async (mode: Mode): Promise<boolean> => {
      if (app.loader && !app.loader.exited) await app.loader.stop("SIGTERM");
      app.exec(app.router, ["ip", "link", "set", "dev", wan, "xdpdrv", "off"], { allowFail: true });
      if (mode === "XDP_PASS only")
        app.exec(app.router, ["ip", "link", "set", "dev", wan, "xdpdrv", "obj", PASS_OBJECT, "sec", "xdp"]);
      if (GUARDED.includes(mode)) {
        // startLoader waits until the loader has applied the ruleset
        await app.startLoader(mode === "guard, no limit" ? new Map([[confPath, unlimited]]) : new Map());
        await waitFor(
          "the loader's metrics",
          async () =>
            (await metrics(app).catch(() => new Map())).has("router_dataplane_reloads_total") ? true : undefined,
          20_000,
        );
      }
      const xdp = / xdp /.test(app.exec(app.router, ["ip", "link", "show", "dev", wan]).stdout);
      const table = app.exec(app.router, ["nft", "list", "table", "inet", "router"], { allowFail: true }).status === 0;
      if (xdp !== (mode !== "guard detached") || !table)
        throw new Error(`${mode}: wrong state (XDP on ${wan}: ${xdp}, table inet router: ${table})`);
      return xdp;
    };

    const iperf = async (mode: Mode): Promise<Sample> => {
      const before = GUARDED.includes(mode) ? await metrics(app) : undefined;
      const argv = [
        "iperf3",
        "-c",
        INTERNET.server4,
        "-p",
        "5202",
        "-B",
        client.addr4!,
        "-u",
        "-R",
        "-b",
        values.bitrate,
        "-l",
        values.length,
        "-t",
        String(seconds),
        "-J",
      ];
      const r = await run(inNs(client.ns, argv), { timeoutMs: (seconds + 20) * 1000 });
      const j = JSON.parse(r.stdout) as IperfEnd;
      const s: Sample = {
        receivedBps: j.end.sum_received.bits_per_second,
        sentBps: j.end.sum.bits_per_second,
        lostPercent: j.end.sum.lost_percent,
        packets: j.end.sum.packets,
      };
      if (before) {
        const after = await metrics(app);
        const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
        s.conntrackReplies = delta('router_dataplane_xdp_passed_packets_total{reason="conntrack_reply"}');
        s.ratelimitUdpDrops = delta('router_dataplane_drop_packets_total{reason="ratelimit_udp"}');
        if (after.get("router_dataplane_conntrack_replies") !== 1)
          throw new Error("the guard runs without conntrack lookups: the benchmark would measure the fallback");
      }
      return s;
    };

    // one warm-up round per configuration, then the interleaved rounds
    for (const m of MODES) {
      const xdp = await setMode(m);
      state.push(`${m}: XDP on ${wan} ${xdp ? "attached" : "off"}, table inet router loaded`);
      await iperf(m);
    }
    for (let i = 0; i < runs; i++) {
      const order = MODES.map((_, k) => MODES[(k + i) % MODES.length]);
      for (const m of order) {
        await setMode(m);
        const s = await iperf(m);
        samples.get(m)!.push(s);
        console.error(
          `round ${i + 1}/${runs} ${m}: received ${(s.receivedBps / 1e6).toFixed(0)} Mbit/s ` +
            `(sent ${(s.sentBps / 1e6).toFixed(0)}, lost ${s.lostPercent.toFixed(1)} %)` +
            (s.conntrackReplies !== undefined
              ? `, ${s.conntrackReplies} conntrack replies, ${s.ratelimitUdpDrops} UDP drops over the limit`
              : ""),
        );
      }
    }
  } finally {
    await app.stop();
  }

  const received = (m: Mode) => samples.get(m)!.map((s) => s.receivedBps);
  const med = (m: Mode) => median(received(m));
  const detached = med("guard detached");
  const attached = med("guard attached");
  const ratio = attached / detached;
  const paired = pairedMedian(received("guard attached"), received("guard detached"));
  const pairedPass = pairedMedian(received("XDP_PASS only"), received("guard detached"));
  const pairedNoLimit = pairedMedian(received("guard, no limit"), received("guard detached"));
  const guarded = samples.get("guard attached")!;
  // what the limit alone would let through: rate × datagram size
  const capBps = limit.rate * Number(values.length) * 8;
  const result = {
    machine: machine(loadAtStart),
    method: {
      runs,
      secondsPerRun: seconds,
      flow: `one UDP flow, iperf3 -u -R -b ${values.bitrate} -l ${values.length}: the trusted client opens it to ${INTERNET.server4}:5202 through the router's NAT, the internet host sends`,
      udpLimit: limit,
      state,
    },
    medianReceivedMbps: {
      detached: detached / 1e6,
      xdpPassOnly: med("XDP_PASS only") / 1e6,
      attached: attached / 1e6,
      attachedNoLimit: med("guard, no limit") / 1e6,
    },
    samples: Object.fromEntries(MODES.map((m) => [m, samples.get(m)])),
    limitAloneWouldAllowMbps: capBps / 1e6,
    guardCounters: {
      conntrackRepliesMedian: median(guarded.map((s) => s.conntrackReplies ?? 0)),
      ratelimitUdpDropsMedian: median(guarded.map((s) => s.ratelimitUdpDrops ?? 0)),
    },
    pairedRatio: {
      attachedVsDetached: paired,
      xdpPassOnlyVsDetached: pairedPass,
      noLimitVsDetached: pairedNoLimit,
      note: "median over rounds of the ratio within a round",
    },
    goals: { attachedVsDetached: { ratio, goal: 0.9, met: ratio >= 0.9 } },
  };
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(join(ROOT, "bench/results/udp.json"), `${JSON.stringify(result, null, 2)}\n`);

  console.log(
    `UDP reply flow: iperf3 -u -R (one flow, internet host → trusted client), median of ${runs} interleaved runs ` +
      `of ${seconds} s, ${result.machine.cpus} CPUs (${result.machine.model}), kernel ${result.machine.kernel}; ` +
      `UDP limit ${limit.rate}/s per source (burst ${limit.burst})\n`,
  );
  console.log(
    "| configuration | median received | samples (Mbit/s) | ratio of medians | ratio per round (median) | goal | met |",
  );
  console.log("|---|---|---|---|---|---|---|");
  const row = (m: Mode, r: string, p: string, goal: string, met: string) =>
    console.log(
      `| ${m} | ${(med(m) / 1e6).toFixed(0)} Mbit/s | ${samples
        .get(m)!
        .map((s) => (s.receivedBps / 1e6).toFixed(0))
        .join(", ")} | ${r} | ${p} | ${goal} | ${met} |`,
    );
  row("guard detached", "1.00", "1.00", "—", "—");
  row(
    "XDP_PASS only",
    `${(med("XDP_PASS only") / detached).toFixed(2)} × detached`,
    `${pairedPass.toFixed(2)} × detached`,
    "— (the veth's XDP path alone)",
    "—",
  );
  row(
    "guard, no limit",
    `${(med("guard, no limit") / detached).toFixed(2)} × detached`,
    `${pairedNoLimit.toFixed(2)} × detached`,
    "— (no conntrack lookups)",
    "—",
  );
  row(
    "guard attached",
    `${ratio.toFixed(2)} × detached`,
    `${paired.toFixed(2)} × detached`,
    "≥ 0.9 × detached",
    ratio >= 0.9 ? "yes" : "**no**",
  );
  console.log(
    `\nguard counters per run (median): ${result.guardCounters.conntrackRepliesMedian} frames passed as conntrack ` +
      `replies, ${result.guardCounters.ratelimitUdpDropsMedian} UDP frames dropped over the limit; the limit alone ` +
      `would pass ${(capBps / 1e6).toFixed(0)} Mbit/s of ${values.length}-byte datagrams`,
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
