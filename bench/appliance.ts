/**
 * Appliance throughput benchmark: LAN→WAN TCP throughput (iperf3, a trusted client to the internet host) through
 * the virtual appliance of the dev site, in three configurations measured in the same run, interleaved round by
 * round (the order rotates each round so that drift hits every configuration alike):
 *
 *   plain       the same namespaces and links, plain forwarding: no nftables table (and so none of the node's
 *               forward-gate routing rules, which only that table opens), no XDP or tc programs, no
 *               connection tracking, no NAT (the internet host routes the LAN prefix back through ISP 1)
 *   dev policy  the full rendered stack: the loader with the XDP guard on the WANs and tc on the segments, the
 *               dev site's nftables ruleset (zone policy, conntrack, NAT44 masquerade)
 *   +1000 rules the dev site with 1,000 more firewall rules in the measured zone pair (trusted→wan), each with
 *               a port set, a source prefix that matches the client and destination address sets that do not;
 *               the ruleset reaches them by destination port, so a new connection meets only those naming it
 *   +1000 rules, linear  the same ruleset without the port dispatch: every new connection walks the 1,000 rules
 *               one by one before the pair's accept (the peer for the new-connection rate)
 *
 * ISP 1's anti-spoofing filter is removed for the whole run: plain forwarding sends the client's private
 * address to the ISP. Prints a Markdown table and writes bench/results/appliance.json. Needs root.
 *
 *   npm run bench:appliance [-- --runs 7] [--seconds 5] [--pin]
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { EXTENSION_NAME } from "../components/dataplane/loader-config";
import { renderRuleset } from "../components/dataplane/nftables";
import { compilePolicy } from "../components/site/policy";
import { devStack } from "../test/helpers/stacks";
import { sleep } from "../test/helpers/wait";
import { Appliance, ROOT } from "../test/e2e/lib/appliance";
import { inNs, run } from "../test/e2e/lib/exec";
import { INTERNET } from "../test/e2e/lib/internet";
import { hostConfig, renderSite } from "../test/e2e/lib/rendered";
import { machine, median, pairedMedian } from "./lib";

type Mode = "plain" | "dev policy" | "+1000 rules" | "+1000 rules, linear";
const MODES: Mode[] = ["plain", "dev policy", "+1000 rules", "+1000 rules, linear"];

/** The dev site with `n` more rules in trusted→wan, none of which matches the benchmark's flow. */
function devWithRules(n: number) {
  return devStack((raw) => {
    const fw = raw.firewall as { rules: unknown[]; addressGroups: unknown[] };
    const groups = Array.from({ length: 50 }, (_, g) => ({
      name: `bench-dst-${g}`,
      addresses: Array.from({ length: 8 }, (_, k) => `100.${64 + (g >> 2)}.${(g & 3) * 64 + k * 8}.0/29`),
    }));
    const rules = Array.from({ length: n }, (_, i) => ({
      name: `bench-${String(i).padStart(4, "0")}`,
      from: "trusted",
      to: "wan",
      protocol: i % 2 ? "tcp" : "tcp+udp",
      ports: [1024 + i, `${30000 + 4 * i}-${30002 + 4 * i}`],
      source: ["10.20.0.0/24"],
      destination: [`@bench-dst-${i % 50}`, `198.18.${i >> 8}.${i & 255}`],
      action: i % 3 ? "drop" : "reject",
    }));
    fw.addressGroups = [...fw.addressGroups, ...groups];
    // before the site's own rules: the first match decides, so these are all walked first
    fw.rules = [...rules, ...fw.rules];
  });
}

/**
 * Prints the data-plane ruleset of the dev site with `n` more rules (run in a child process); `linear`: with
 * the port dispatch turned off, every rule walked in turn.
 */
async function printRuleset(n: number, linear: boolean): Promise<void> {
  const r = await renderSite(devWithRules(n));
  const files = hostConfig(r).extensionFiles.get(EXTENSION_NAME)!;
  const rendered = files.get([...files.keys()].find((p) => p.endsWith(".nft"))!)!;
  const text = linear
    ? renderRuleset(r.site, r.plan, compilePolicy(r.site, r.plan), { minDispatchRules: Infinity })
    : rendered;
  if (!linear && text !== renderRuleset(r.site, r.plan, compilePolicy(r.site, r.plan)))
    throw new Error("the program's ruleset differs from renderRuleset's: the linear peer would not be comparable");
  // a pipe is written asynchronously: exit only once all of it is out
  await new Promise<void>((resolve) => process.stdout.write(text, () => resolve()));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "7" },
      seconds: { type: "string", default: "5" },
      pin: { type: "boolean", default: false },
      "print-ruleset": { type: "string" },
      linear: { type: "boolean", default: false },
    },
  });
  if (values["print-ruleset"]) return printRuleset(Number(values["print-ruleset"]), values.linear);
  const runs = Number(values.runs);
  const loadAtStart = loadavg();
  const seconds = Number(values.seconds);
  if (process.getuid?.() !== 0) throw new Error("the appliance benchmark needs root (network namespaces, XDP)");

  const rendered = await renderSite();
  const files = hostConfig(rendered).extensionFiles.get(EXTENSION_NAME)!;
  const rulesetPath = [...files.keys()].find((p) => p.endsWith(".nft"))!;
  // Pulumi's mock runtime runs the program once per process: the second site renders in a child process.
  const heavyRuleset = (linear: boolean) => {
    const argv = ["--import", "tsx", __filename, "--print-ruleset", "1000", ...(linear ? ["--linear"] : [])];
    const text = execFileSync(process.execPath, argv, { encoding: "utf8", cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
    if (!text.trimEnd().endsWith("}")) throw new Error("the ruleset with 1,000 rules came back truncated");
    return text;
  };
  const rulesets: Record<Exclude<Mode, "plain">, string> = {
    "dev policy": files.get(rulesetPath)!,
    "+1000 rules": heavyRuleset(false),
    "+1000 rules, linear": heavyRuleset(true),
  };

  const app = new Appliance({
    prefix: "bench-app",
    rendered,
    // the new-connection rounds connect to the internet host's port 80
    ports: { tcp: [80], udp: [] },
  });
  await app.start();
  const samples = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const connSamples = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const checks: string[] = [];
  try {
    const client = app.client("trusted");
    app.exec(app.wans[0].ns, ["nft", "delete", "table", "inet", "bcp38"]);
    app.daemons.start(
      "iperf3-server",
      inNs(app.inet, ["iperf3", "-s", "-B", INTERNET.server4, "-p", "5201", ...(values.pin ? ["-A", "1"] : [])]),
      join(app.work, "iperf3-server.log"),
    );
    await sleep(500);

    let gateOpen = false;
    const setMode = async (mode: Mode) => {
      if (app.loader && !app.loader.exited) await app.loader.stop("SIGTERM");
      app.exec(app.router, ["nft", "delete", "table", "inet", "router"], { allowFail: true });
      // Plain forwarding has no table to open the node's forward gate: its routing rules go for that mode.
      if (mode === "plain" && !gateOpen) app.talos.removeRoutingRules();
      if (mode !== "plain" && gateOpen) app.talos.routingRules();
      gateOpen = mode === "plain";
      if (mode !== "plain") {
        await app.startLoader(new Map([[rulesetPath, rulesets[mode]]]));
      }
      // what is in the path now
      const link = app.exec(app.router, ["ip", "link", "show", "dev", app.wans[0].wan.name]).stdout;
      const table = app.exec(app.router, ["nft", "list", "chain", "inet", "router", "fwd_trusted_wan"], {
        allowFail: true,
      });
      const xdp = / xdp /.test(link);
      const lines = table.status === 0 ? table.stdout.split("\n") : [];
      const rules = lines.filter((l) => /accept|drop|reject/.test(l) && !/ vmap @/.test(l)).length;
      const lookups = lines.filter((l) => / vmap @/.test(l)).length;
      const want = mode === "plain" ? { xdp: false, table: false } : { xdp: true, table: true };
      const wrong =
        (mode === "+1000 rules" && (lookups === 0 || rules > 1)) || (mode === "+1000 rules, linear" && rules < 1000);
      if (xdp !== want.xdp || (table.status === 0) !== want.table || wrong)
        throw new Error(
          `${mode}: wrong state (xdp ${xdp}, table ${table.status === 0}, ${rules} verdict statements and ${lookups} port-dispatch lookups in trusted→wan)`,
        );
      return { xdp, rules, lookups };
    };

    // New connections per second (informational): only a connection's first packet walks the zone pair's
    // rules, so this is where a rule count shows, not in a long flow's throughput.
    const connectionRate = async (): Promise<number> => {
      const n = 3000;
      const input = Array.from({ length: n }, (_, k) => `c${k} tcp ${INTERNET.server4} 80 ${client.addr4} 2000`).join(
        "\n",
      );
      const started = process.hrtime.bigint();
      const r = await run(inNs(client.ns, [app.netprobe, "probe", "--parallel", "64", "--gap-us", "0"]), {
        input: `${input}\n`,
        timeoutMs: 120_000,
      });
      const secs = Number(process.hrtime.bigint() - started) / 1e9;
      const ok = r.stdout.split("\n").filter((l) => / reached internet tcp 80 /.test(l)).length;
      if (ok !== n) throw new Error(`connection rate: ${n - ok} of ${n} connections failed`);
      return n / secs;
    };

    const iperf = async (): Promise<number> => {
      const argv = [
        "iperf3",
        "-c",
        INTERNET.server4,
        "-p",
        "5201",
        "-B",
        client.addr4!,
        "-t",
        String(seconds),
        "-O",
        "1",
        "-J",
      ];
      if (values.pin) argv.push("-A", "0");
      const r = await run(inNs(client.ns, argv), { timeoutMs: (seconds + 20) * 1000 });
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
      return j.end.sum_received.bits_per_second;
    };

    // one warm-up sample per configuration, then the interleaved rounds
    for (const m of MODES) {
      const st = await setMode(m);
      checks.push(
        `${m}: XDP ${st.xdp ? "attached" : "off"}, ${st.rules} verdict statements and ${st.lookups} port-dispatch lookups in trusted→wan`,
      );
      await iperf();
    }
    for (let i = 0; i < runs; i++) {
      const order = MODES.map((_, k) => MODES[(k + i) % MODES.length]);
      for (const m of order) {
        await setMode(m);
        const bps = await iperf();
        samples.get(m)!.push(bps);
        connSamples.get(m)!.push(await connectionRate());
        if (m !== "plain") {
          // the flow went through conntrack and NAT: the router tracked it with its WAN address as reply target
          const ct = app.exec(app.router, ["conntrack", "-L", "-p", "tcp", "--dport", "5201"], {
            allowFail: true,
          }).stdout;
          if (!ct.includes(`dst=${app.wans[0].addr4}`)) throw new Error(`${m}: the iperf3 flow was not NATed:\n${ct}`);
        }
        console.error(
          `round ${i + 1}/${runs} ${m}: ${(bps / 1e9).toFixed(2)} Gbit/s, ${connSamples.get(m)!.at(-1)!.toFixed(0)} connections/s`,
        );
      }
    }
  } finally {
    await app.stop();
  }

  const med = (m: Mode) => median(samples.get(m)!);
  const plain = med("plain");
  const dev = med("dev policy");
  const heavyMed = med("+1000 rules");
  const linearMed = med("+1000 rules, linear");
  const ratioDev = dev / plain;
  const ratioHeavy = heavyMed / dev;
  // The same ratios round by round (the configurations of a round ran back to back): less sensitive to drift
  // in the machine's load than a ratio of medians, reported beside it.
  const paired = (a: Mode, b: Mode) => pairedMedian(samples.get(a)!, samples.get(b)!);
  const pairedDev = paired("dev policy", "plain");
  const pairedHeavy = paired("+1000 rules", "dev policy");
  const result = {
    machine: machine(loadAtStart),
    method: {
      runs,
      secondsPerRun: seconds,
      omitFirstSecond: true,
      pinnedCpus: values.pin ? "iperf3 client on CPU 0, server on CPU 1" : "none",
      flow: `one TCP stream, trusted client → ${INTERNET.server4}:5201 through the router's wan0`,
      state: checks,
    },
    medianGbps: {
      plain: plain / 1e9,
      devPolicy: dev / 1e9,
      rules1000: heavyMed / 1e9,
      rules1000Linear: linearMed / 1e9,
    },
    samplesGbps: Object.fromEntries(MODES.map((m) => [m, samples.get(m)!.map((x) => x / 1e9)])),
    connectionsPerSecond: {
      note: "informational: 3,000 new TCP connections (64 at a time) from the same client to the internet host",
      median: Object.fromEntries(MODES.map((m) => [m, median(connSamples.get(m)!)])),
      dispatchVsLinearPerRound: median(
        connSamples.get("+1000 rules")!.map((x, i) => x / connSamples.get("+1000 rules, linear")![i]),
      ),
      samples: Object.fromEntries(MODES.map((m) => [m, connSamples.get(m)!])),
    },
    pairedRatios: {
      devVsPlain: pairedDev,
      rules1000VsDev: pairedHeavy,
      note: "median over rounds of the ratio within a round",
    },
    goals: {
      devVsPlain: { ratio: ratioDev, goal: 0.85, met: ratioDev >= 0.85 },
      devAbsoluteGbps: { value: dev / 1e9, goal: 1, met: dev >= 1e9 },
      rules1000VsDev: { ratio: ratioHeavy, goal: 0.95, met: ratioHeavy >= 0.95 },
    },
  };
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(join(ROOT, "bench/results/appliance.json"), `${JSON.stringify(result, null, 2)}\n`);

  const yes = (b: boolean) => (b ? "yes" : "**no**");
  console.log(
    `appliance throughput: LAN→WAN TCP (iperf3, one stream), median of ${runs} interleaved runs of ${seconds} s, ` +
      `${result.machine.cpus} CPUs (${result.machine.model}), kernel ${result.machine.kernel}\n`,
  );
  console.log(
    "| configuration | median | samples (Gbit/s) | ratio of medians | ratio per round (median) | goal | met |",
  );
  console.log("|---|---|---|---|---|---|---|");
  const row = (m: Mode, ratio: string, pairedRatio: string, goal: string, met: string) =>
    console.log(
      `| ${m} | ${(med(m) / 1e9).toFixed(2)} Gbit/s | ${samples
        .get(m)!
        .map((x) => (x / 1e9).toFixed(1))
        .join(", ")} | ${ratio} | ${pairedRatio} | ${goal} | ${met} |`,
    );
  row("plain", "1.00", "1.00", "—", "—");
  row(
    "dev policy",
    `${ratioDev.toFixed(2)} × plain`,
    `${pairedDev.toFixed(2)} × plain`,
    "≥ 0.85 × plain, ≥ 1 Gbit/s",
    yes(result.goals.devVsPlain.met && result.goals.devAbsoluteGbps.met),
  );
  row(
    "+1000 rules",
    `${ratioHeavy.toFixed(2)} × dev policy`,
    `${pairedHeavy.toFixed(2)} × dev policy`,
    "≥ 0.95 × dev policy",
    yes(result.goals.rules1000VsDev.met),
  );
  row("+1000 rules, linear", `${(linearMed / dev).toFixed(2)} × dev policy`, "—", "— (peer)", "—");
  const conn = (m: Mode) => median(connSamples.get(m)!);
  console.log(
    `\nnew connections per second (informational, median): plain ${conn("plain").toFixed(0)}, ` +
      `dev policy ${conn("dev policy").toFixed(0)}, +1000 rules ${conn("+1000 rules").toFixed(0)} ` +
      `(${((conn("+1000 rules") / conn("dev policy")) * 100).toFixed(0)} % of the dev policy's), ` +
      `+1000 rules linear ${conn("+1000 rules, linear").toFixed(0)} ` +
      `(port dispatch ${result.connectionsPerSecond.dispatchVsLinearPerRound.toFixed(2)} × linear, per round)`,
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
