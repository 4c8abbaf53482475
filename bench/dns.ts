/**
 * DNS benchmark: the router's DNS as its clients meet it — dnsdist with the trusted zone's profile holding a
 * 1,000,000-name block list, in front of Unbound, with the stats collector and the rest of the stack running — against
 * the same resolver daemon (Unbound) with its default configuration and no block list (only what it needs to be
 * reached and to reach the same upstream), measured in the same run, interleaved round by round (the order
 * rotates). The router's DNS is measured twice: with the zone's query log off (the stack counts every answer and
 * reports one in 32 for the latency histogram) and on (every answer reported and logged), the second as a
 * second front on another port, rendered from the same site with the log on. All answer from their caches: every
 * benchmark name is resolved once before the rounds.
 *
 *   cached QPS    dnsperf at full speed (16 clients, 500 outstanding) for --seconds, median over rounds
 *   p99 latency   dnsperf at a fixed rate (5,000 queries/s, the same for both), each answer's latency (-v)
 *   CPU per query the serving processes' user and system CPU time over the answered queries of the full-speed run
 *   load          from the feeds job's start (the list published on the test internet's HTTPS server) to the
 *                 router blocking a name only the new list has, step by step (bench/dns-load.ts): fetch and
 *                 check, constant database, rename, dnsdist opening the new file, the first blocked answer;
 *                 five loads, the lists alternating
 *   memory        peak resident memory (VmHWM) of every DNS process, summed, after the rounds; the feeds job's
 *                 own peak while it loads the list
 *   reload        dnsperf at 8,000 queries/s while the feeds job replaces the 1,000,000-name list twice: lost
 *                 queries
 *
 * Runs in network namespaces with the DNS test bed (test/dns/lib). Prints a Markdown table and writes
 * bench/results/dns.json. Needs root.
 *
 *   npm run bench:dns [-- --rounds 7] [--seconds 8] [--domains 1000000] [--load-only]
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { planDns, PATHS } from "../components/dns-stack/plan";
import { dnsConfigs, dnsDaemons } from "../components/dns-stack/k8s";
import type { HostDaemon } from "../components/daemonset";
import { devSite } from "../test/helpers/dev-site";
import { sleep, waitFor } from "../test/ebpf/lib";
import { DnsBed } from "../test/dns/lib/bed";
import { buildInternetDns, INTERNET_DNS } from "../test/dns/lib/internet";
import { dnsTestSite } from "../test/dns/lib/site";
import { buildStats, writeTestSecrets } from "../test/dns/lib/fixtures";
import { STEP_NAMES, timedLoad, writeProber, type LoadSteps } from "./dns-load";

const ROOT = resolve(__dirname, "..");
const PEER_PORT = 5399;
const LOGGED_PORT = 5354;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** `n` distinct names, the same on every run (a list of ad servers looks like this). */
function names(n: number, salt: string): string[] {
  const out: string[] = [];
  let x = 0x9e3779b9 ^ salt.length;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + i) >>> 0;
    // Under plain.example, which the test internet answers for every name: a name resolves unless a list blocks it.
    out.push(`${salt}${i.toString(36)}-${(x % 46656).toString(36)}.ads${i % 97}.plain.example`);
  }
  return out;
}

interface Perf {
  qps: number;
  sent: number;
  completed: number;
  lost: number;
  latencies: number[];
  text: string;
}

function parsePerf(text: string): Perf {
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    latencies: [...text.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)].map((m) => Number(m[1])),
    text,
  };
}

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ). */
const TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/** User and system CPU time (ticks) of processes and their threads, summed (proc(5): fields 14 and 15). */
function cpuTicks(pids: number[]): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    user += Number(f[11]);
    system += Number(f[12]);
  }
  return { user, system };
}

/** Sum of a memory field (kB) over the processes whose command line matches. */
function memory(ns: string, field: "VmHWM" | "VmRSS", match: RegExp): number {
  const pids = execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split(/\s+/).filter(Boolean);
  let kb = 0;
  for (const pid of pids) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      if (!match.test(cmd)) continue;
      kb += Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return kb / 1024;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "7" },
      seconds: { type: "string", default: "8" },
      domains: { type: "string", default: "1000000" },
      "load-only": { type: "boolean", default: false },
    },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const domains = Number(values.domains);
  if (process.getuid?.() !== 0) throw new Error("bench:dns needs root (network namespaces)");
  buildStats();
  execFileSync("make", ["-s", "-C", join(ROOT, "ebpf"), "build/router-fetch"], { stdio: "inherit" });

  const render = (log: boolean) => {
    const { site, plan, policy } = devSite((raw) => {
      dnsTestSite(raw);
      raw.dns.lists.find((l: { name: string }) => l.name === "ads").minEntries = domains;
      raw.dns.zones.find((z: { zone: string }) => z.zone === "trusted").queryLog = log;
    });
    const dns = planDns(site, plan, policy);
    return { plan, dns, configs: dnsConfigs(site, plan, dns) };
  };
  const { plan, dns, configs } = render(false);
  // The second front: the same site with the trusted zone's query log on, on other ports.
  const logged = render(true)
    .configs.get("dnsdist.conf")!
    .split("\n")
    .filter((l) => !/^add(TLS|DOH)Local/.test(l))
    .join("\n")
    .replace(/:53"/g, `:${LOGGED_PORT}"`)
    .replace(":8083", ":8084");
  const work = mkdtempSync(join(tmpdir(), "dns-bench-"));
  const secrets = writeTestSecrets(join(work, "secrets"));
  const bed = new DnsBed(`dnsb${process.pid % 10000}`, work);
  const internet = buildInternetDns(join(work, "internet"));
  const gw = plan.segments.find((s) => s.name === "trusted")!.ipv4!.gateway;
  const client = () => bed.clients.get("trusted")!;
  const q = (s: string) => `'${s}'`;
  const results: Record<string, unknown> = {};
  try {
    bed.topology(plan, ["trusted"], [INTERNET_DNS.resolver4, INTERNET_DNS.authoritative4, INTERNET_DNS.lists4]);
    bed.staticClient(plan, "trusted", 200);
    for (const c of internet.daemons) bed.start(c.name, bed.internet, `exec ${c.argv.map(q).join(" ")}`);
    const lists = [names(domains, "a"), names(domains, "b")];
    const publish = (i: number) => {
      writeFileSync(join(internet.dir, "www", ".ads.txt"), lists[i].map((n) => `0.0.0.0 ${n}`).join("\n") + "\n");
      execFileSync("mv", [join(internet.dir, "www", ".ads.txt"), join(internet.dir, "www", "ads.txt")]);
    };
    writeFileSync(join(bed.hostPath(PATHS.unboundState), "root.key"), internet.rootAnchor);
    const bundle = `mount --bind -o ro ${join(internet.dir, "ca.pem")} ${PATHS.caBundle}`;
    const daemons = dnsDaemons(dns, configs);
    for (const d of daemons) if (d.name !== "dns-feeds") bed.startDaemon(d, configs, secrets, [bundle]);
    const front = daemons.find((d) => d.name === "dns-front")!;
    bed.startDaemon({ ...front, name: "dns-front-logged" }, new Map([["dnsdist.conf", logged]]), secrets, [bundle]);
    const feeds = daemons.find((d) => d.name === "dns-feeds")!;
    const dig = (name: string, port = 53) =>
      bed.in(client(), ["dig", "+time=2", "+tries=1", "-p", String(port), `@${gw}`, name], { allowFail: true }).stdout;
    await waitFor("the router's DNS", () => /status: NOERROR/.test(dig("www.plain.example")), 30_000, 250);

    /** Runs the feeds job once (every list due) as its DaemonSet runs it; its peak memory (MB) and CPU time (s). */
    const fetchOnce = async (): Promise<{ peakMB: number; cpuS: number }> => {
      execFileSync("sh", ["-c", `rm -f "${bed.hostPath(PATHS.lists)}"/*.next`]);
      const time = ["/usr/bin/time", "-f", "peak-kb %M cpu %U %S"];
      const job: HostDaemon = { ...feeds, command: [...time, ...feeds.command, "--once"] };
      const p = bed.startDaemon(job, configs, secrets, [bundle]);
      await new Promise((r) => (p.child.exitCode !== null ? r(null) : p.child.once("exit", r)));
      const out = p.output.join("");
      if (!/names in use/.test(out)) throw new Error(`the feeds job did not load the list:\n${out}`);
      const m = /peak-kb (\d+) cpu ([\d.]+) ([\d.]+)/.exec(out);
      if (!m) throw new Error(`no resource use from time(1):\n${out}`);
      return { peakMB: Number(m[1]) / 1024, cpuS: Number(m[2]) + Number(m[3]) };
    };

    // Load: from the job's start to the router blocking a name only this list has, step by step.
    const prober = join(work, "prober.js");
    writeProber(prober);
    const steps: LoadSteps[] = [];
    let feedsPeak = 0;
    for (const i of [0, 1, 0, 1, 0]) {
      publish(i);
      steps.push(
        await timedLoad({
          clientNs: client(),
          server: gw,
          frontPid: bed.procs.get("dns-front")!.child.pid!,
          listsDir: bed.hostPath(PATHS.lists),
          list: "ads",
          probe: lists[i][domains - 1],
          prober,
          job: async () => {
            const use = await fetchOnce();
            feedsPeak = Math.max(feedsPeak, use.peakMB);
            return use.cpuS;
          },
          timeoutMs: 30_000,
        }),
      );
      console.error(
        `load ${steps.length}: ${STEP_NAMES.map(([k]) => `${k} ${steps.at(-1)![k].toFixed(2)}`).join(", ")}`,
      );
    }
    const loads = steps.map((x) => x.total);
    results.loadSteps = steps;
    results.loadSeconds = loads;
    const stepTable = [
      `| step of a ${domains.toLocaleString("en-US")}-name list load | median (s) | loads (s) |`,
      "|---|---|---|",
      ...STEP_NAMES.map(
        ([k, label]) =>
          `| ${label} | ${median(steps.map((x) => x[k])).toFixed(2)} | ${steps.map((x) => x[k].toFixed(2)).join(", ")} |`,
      ),
    ].join("\n");
    console.log(stepTable);
    results.stepTable = stepTable;
    if (values["load-only"]) return;

    // The peer: Unbound's defaults, reachable from the client and forwarding to the same upstream.
    const peerConf = join(work, "peer.conf");
    writeFileSync(
      peerConf,
      [
        "server:",
        `  interface: ${gw}@${PEER_PORT}`,
        "  access-control: 10.20.0.0/24 allow",
        '  username: ""',
        '  chroot: ""',
        '  pidfile: ""',
        "  use-syslog: no",
        `  tls-cert-bundle: ${join(internet.dir, "ca.pem")}`,
        "forward-zone:",
        '  name: "."',
        "  forward-tls-upstream: yes",
        `  forward-addr: ${INTERNET_DNS.resolver4}@853#${INTERNET_DNS.resolverName}`,
        "remote-control:",
        "  control-enable: no",
        "",
      ].join("\n"),
    );
    bed.start("peer-unbound", bed.router, `exec unbound -d -c ${peerConf}`);
    await waitFor("the peer", () => /status: NOERROR/.test(dig("www.plain.example", PEER_PORT)), 30_000, 250);

    // The benchmark names: 2,000 names of the test internet, none on the list; both caches warmed.
    const queries = join(work, "queries.txt");
    writeFileSync(queries, Array.from({ length: 2000 }, (_, i) => `q${i}.plain.example A`).join("\n") + "\n");
    const perf = (port: number, args: string[]) =>
      parsePerf(
        bed.in(client(), ["dnsperf", "-s", gw, "-p", String(port), "-d", queries, ...args], { timeoutMs: 120_000 })
          .stdout,
      );
    const PORTS = { ours: 53, logged: LOGGED_PORT, peer: PEER_PORT } as const;
    for (const port of Object.values(PORTS)) perf(port, ["-n", "2", "-q", "50"]);

    type Who = keyof typeof PORTS;
    // The processes that serve each case's cached answers (the collector takes the fronts' reports).
    const pid = (name: string) => bed.procs.get(name)!.child.pid!;
    const SERVERS: Record<Who, number[]> = {
      ours: [pid("dns-front"), pid("dns-stats")],
      logged: [pid("dns-front-logged"), pid("dns-stats")],
      peer: [pid("peer-unbound")],
    };
    type Row = { qps: number[]; p99: number[]; lost: number[]; userUs: number[]; systemUs: number[] };
    const row = (): Row => ({ qps: [], p99: [], lost: [], userUs: [], systemUs: [] });
    const rows: Record<Who, Row> = { ours: row(), logged: row(), peer: row() };
    const all: Who[] = ["ours", "logged", "peer"];
    for (let r = 0; r < rounds; r++) {
      const order = all.map((_, i) => all[(i + r) % all.length]);
      for (const who of order) {
        const port = PORTS[who];
        const cpu0 = cpuTicks(SERVERS[who]);
        const full = perf(port, ["-l", String(seconds), "-c", "16", "-q", "500"]);
        const cpu1 = cpuTicks(SERVERS[who]);
        rows[who].userUs.push(((cpu1.user - cpu0.user) / TICKS) * (1e6 / full.completed));
        rows[who].systemUs.push(((cpu1.system - cpu0.system) / TICKS) * (1e6 / full.completed));
        const paced = perf(port, ["-l", "4", "-Q", "5000", "-c", "4", "-v"]);
        rows[who].qps.push(full.qps);
        rows[who].lost.push(full.lost + paced.lost);
        rows[who].p99.push(percentile(paced.latencies, 99) * 1000);
        console.error(
          `round ${r + 1} ${who}: ${full.qps.toFixed(0)} q/s, p99 ${(percentile(paced.latencies, 99) * 1000).toFixed(2)} ms, ` +
            `server CPU ${(rows[who].userUs.at(-1)! + rows[who].systemUs.at(-1)!).toFixed(2)} µs per query`,
        );
      }
    }
    results.rounds = rows;

    // Memory of the whole stack (every DNS process; the peer excluded).
    // The stack as deployed: the second front (the log-on variant) is the benchmark's own.
    const stack =
      /dnsdist .*\/etc\/router\/dns\/dnsdist\.conf|unbound -d -p|knotd|kea-dhcp-ddns|router-dns-stats|dns-feeds/;
    results.memoryMB = {
      peakSum: memory(bed.router, "VmHWM", stack),
      residentSum: memory(bed.router, "VmRSS", stack),
      feedsJobPeak: feedsPeak,
      peerPeak: memory(bed.router, "VmHWM", new RegExp(peerConf.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"))),
    };

    // Reload under load: the list replaced twice while the router answers 8,000 queries/s.
    const loaded = bed.inAsync(client(), `dnsperf -s ${gw} -d ${queries} -l 20 -Q 8000 -c 8`, 120_000);
    await sleep(2000);
    for (const i of [1, 0]) {
      publish(i);
      await fetchOnce();
      await waitFor("the new list in use", () => /status: NXDOMAIN/.test(dig(lists[i][domains - 1])), 30_000, 100);
    }
    const under = parsePerf((await loaded).stdout);
    results.reload = { sent: under.sent, completed: under.completed, lost: under.lost, qps: under.qps };

    const { ours, logged: withLog, peer } = rows;
    const n = domains.toLocaleString("en-US");
    const ratio = (x: number[]) => median(x) / median(peer.qps);
    const perRound = (x: number[], of = peer.qps) => median(x.map((v, i) => v / of[i]));
    const met = (x: number[]) => (ratio(x) >= 0.9 ? "yes" : "**no**");
    const mem = results.memoryMB as Record<string, number>;
    const table = [
      "| case | cached QPS (median) | ratio of medians | ratio per round (median) | p99 latency at 5,000 q/s | goal | met |",
      "|---|---|---|---|---|---|---|",
      `| Unbound, default configuration, no block list (peer) | ${median(peer.qps).toFixed(0)} | 1.00 | — | ${median(peer.p99).toFixed(2)} ms | — | — |`,
      `| router DNS, ${n}-name block list, zone's query log off | ${median(ours.qps).toFixed(0)} | ${ratio(ours.qps).toFixed(2)} | ${perRound(ours.qps).toFixed(2)} | ${median(ours.p99).toFixed(2)} ms | ≥ 0.9 × peer | ${met(ours.qps)} |`,
      `| router DNS, ${n}-name block list, zone's query log on | ${median(withLog.qps).toFixed(0)} | ${ratio(withLog.qps).toFixed(2)} | ${perRound(withLog.qps).toFixed(2)} | ${median(withLog.p99).toFixed(2)} ms | ≥ 0.9 × peer | ${met(withLog.qps)} |`,
      `| load a ${n}-name list (fetch, check, database, swap) | — | — | — | ${median(loads).toFixed(2)} s (median of ${loads.length}) | ≤ 5 s | ${median(loads) <= 5 ? "yes" : "**no**"} |`,
      `| whole DNS stack, peak resident (list loaded, after the rounds) | — | — | — | ${mem.peakSum.toFixed(0)} MB (feeds job while loading: ${mem.feedsJobPeak.toFixed(0)} MB) | ≤ 512 MB | ${mem.peakSum + mem.feedsJobPeak <= 512 ? "yes" : "**no**"} |`,
      `| reload under load (8,000 q/s, two swaps of ${n} names) | — | — | — | ${under.lost} lost of ${under.sent} | 0 lost | ${under.lost === 0 && under.completed === under.sent ? "yes" : "**no**"} |`,
    ].join("\n");
    // What each answer costs the servers (all their threads; the front's collector included), at full speed.
    const cpu = (x: Row) => x.userUs.map((u, i) => u + x.systemUs[i]);
    const cpuTable = [
      "| case (full speed, cached) | server CPU per answered query: user | system | total (median) | × peer (per round, median) |",
      "|---|---|---|---|---|",
      ...(
        [
          ["Unbound, default configuration (peer)", peer],
          ["router DNS, query log off (dnsdist + collector)", ours],
          ["router DNS, query log on (dnsdist + collector)", withLog],
        ] as const
      ).map(
        ([label, x]) =>
          `| ${label} | ${median(x.userUs).toFixed(2)} µs | ${median(x.systemUs).toFixed(2)} µs | ${median(cpu(x)).toFixed(2)} µs | ${perRound(cpu(x), cpu(peer)).toFixed(2)} |`,
      ),
    ].join("\n");
    const machine = {
      cpus: cpus().length,
      model: cpus()[0]?.model,
      memoryGiB: totalmem() / 2 ** 30,
      loadavg: loadavg(),
      node: process.version,
    };
    mkdirSync(join(ROOT, "bench/results"), { recursive: true });
    writeFileSync(
      join(ROOT, "bench/results/dns.json"),
      `${JSON.stringify({ machine, rounds, seconds, domains, ...results, table, cpuTable }, null, 2)}\n`,
    );
    console.log(table);
    console.log(`\n${cpuTable}`);
  } finally {
    if (process.env.DNS_BENCH_LOGS === "1") console.error(bed.logs(30));
    await bed.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
