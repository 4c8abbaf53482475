/**
 * Observability budget benchmark: resident memory and CPU of the metrics side of the stack under a steady scrape
 * load, for the dev site and for sites with more segments and clients, with the other TSDB candidate measured in the
 * same run against the same targets.
 *
 *   stack (chosen)  Prometheus (Debian) with the site's rendered alert rules, Alertmanager, VictoriaLogs
 *   peer            VictoriaMetrics single-node with vmalert running the same rules, Alertmanager, VictoriaLogs
 *
 * Targets are synthetic: one local HTTP server answers for every scrape job the site renders (scrapeJobs), each
 * with a number of series modelled on what that component exposes on a one-node router (SERIES below), plus series
 * that grow with the links, segments and clients (node textfile top talkers and pool use, the loader's per-link
 * counters); counters move every scrape. Both TSDBs scrape them at the site's interval with its retention. The
 * figures are the median RSS (VmRSS, sampled every second after the first scrapes) and CPU time over the window
 * (utime + stime) per process. A short window measures the steady scrape load, not a full head block: Prometheus
 * keeps up to 3 h of samples in memory before it compacts, so the head grows past what a few minutes show; the
 * "series" column is what sizes it. Goal (issue 16): ≤ 1 GiB and ≤ 2 % of one core for the dev site. Prints a
 * Markdown table and writes bench/results/observability.json.
 *
 *   npm run bench:observability [-- --seconds 180] [--scales 1,4]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { devSite } from "../test/helpers/dev-site";
import { ROOT } from "../test/helpers/stacks";
import { sleep, waitFor } from "../test/helpers/wait";
import { toolBinary } from "../tools/go-tools";
import { scrapeJobs } from "../components/observability-stack/targets";
import { renderRuleFile } from "../components/observability-stack/alerts";
import { median } from "./lib";

/** Series a component exposes on a one-node router (base), before the per-link/segment/client terms. */
const SERIES: Record<string, number> = {
  node: 1100,
  dataplane: 60,
  prometheus: 900,
  alertmanager: 120,
  logs: 250,
  dashboards: 400,
  apiserver: 6000,
  kubelet: 900,
  cadvisor: 1500,
  "cilium-agent": 1200,
  "cilium-operator": 250,
  hubble: 300,
};
const CLIENTS_PER_SEGMENT = 40;

interface Shape {
  links: number;
  segments: number;
  clients: number;
}

/** Series of a job at a site shape: the base plus what grows with links, segments and clients. */
function seriesOf(job: string, s: Shape): number {
  const base = SERIES[job] ?? 200;
  if (job === "node") return base + 30 * s.links + 6 * s.segments + 4 * s.clients;
  if (job === "dataplane") return base + 16 * s.links + 8 * s.segments;
  if (job === "hubble") return base + 2 * s.clients;
  return base;
}

/** Exposition text of `n` series; counters advance with each scrape. */
function exposition(job: string, n: number, tick: number): string {
  const out: string[] = [];
  for (let f = 0; f * 50 < n; f++) {
    const name = `${job.replace(/-/g, "_")}_synthetic_${f}_total`;
    out.push(`# TYPE ${name} counter`);
    for (let i = f * 50; i < Math.min(n, (f + 1) * 50); i++)
      out.push(`${name}{instance_part="${i % 7}",series="${i}"} ${tick * ((i % 13) + 1) + (i % 3)}`);
  }
  return out.join("\n") + "\n";
}

function targets(shape: Shape): Promise<{ server: Server; port: number }> {
  const ticks = new Map<string, number>();
  const server = createServer((req, res) => {
    const job = (req.url ?? "/").split("/")[2] ?? "";
    const tick = (ticks.get(req.url ?? "") ?? 0) + 1;
    ticks.set(req.url ?? "", tick);
    res.setHeader("content-type", "text/plain; version=0.0.4");
    res.end(exposition(job, seriesOf(job, shape), tick));
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as AddressInfo).port })),
  );
}

interface Proc {
  role: string;
  child: ChildProcess;
  rss: number[];
  log: string;
}

function start(role: string, cmd: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const p: Proc = { role, child, rss: [], log: "" };
  const keep = (d: Buffer) => (p.log = (p.log + d.toString()).slice(-4000));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return p;
}

/** VmRSS (bytes) and utime + stime (seconds) of a process from /proc. */
function usage(pid: number): { rss: number; cpu: number } {
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return { rss, cpu: (Number(f[11]) + Number(f[12])) / 100 };
}

async function up(url: string, procs: Proc[]): Promise<void> {
  await waitFor(
    `${url} to answer\n${procs.map((p) => `--- ${p.role}\n${p.log}`).join("\n")}`,
    async () => (await fetch(url).catch(() => undefined))?.ok,
    30_000,
    200,
  );
}

/** Both TSDBs have every target up and loaded the rules; throws naming what is not. */
async function scraping(jobs: number, procs: Proc[]): Promise<void> {
  const get = async (url: string) => (await (await fetch(url)).json()) as { data: Record<string, unknown> };
  for (const base of ["http://127.0.0.1:19090", "http://127.0.0.1:18428"]) {
    const r = await get(`${base}/api/v1/query?query=count(up%3D%3D1)`);
    const up = Number((r.data.result as { value: [number, string] }[])[0]?.value[1] ?? 0);
    if (up !== jobs) throw new Error(`${base}: ${up} of ${jobs} targets up\n${procs.map((p) => p.log).join("\n")}`);
  }
  for (const url of ["http://127.0.0.1:19090/api/v1/rules", "http://127.0.0.1:18880/api/v1/rules"]) {
    const groups = (await get(url)).data.groups as unknown[];
    if (!groups?.length) throw new Error(`${url}: no rule groups loaded`);
  }
}

/** Runs both candidates at one site shape; returns per-process median RSS and CPU share, and the series count. */
async function round(shape: Shape, seconds: number) {
  const { site, plan } = devSite();
  const dir = mkdtempSync(join(tmpdir(), "bench-observability-"));
  const t = await targets(shape);
  const interval = site.observability.scrapeInterval;
  const jobs = scrapeJobs(site, plan);
  const series = jobs.reduce((n, j) => n + seriesOf(j.job, shape), 0);
  const scrape = {
    global: { scrape_interval: interval },
    scrape_configs: jobs.map((j) => ({
      job_name: j.job,
      metrics_path: `/job/${j.job}`,
      static_configs: [{ targets: [`127.0.0.1:${t.port}`] }],
    })),
  };
  writeFileSync(join(dir, "scrape.yml"), stringify(scrape));
  writeFileSync(
    join(dir, "prometheus.yml"),
    stringify({
      ...scrape,
      global: { scrape_interval: interval, evaluation_interval: interval },
      rule_files: [join(dir, "rules.yml")],
      alerting: { alertmanagers: [{ static_configs: [{ targets: ["127.0.0.1:19093"] }] }] },
    }),
  );
  writeFileSync(join(dir, "rules.yml"), renderRuleFile(site, plan));
  writeFileSync(join(dir, "am.yml"), stringify({ route: { receiver: "null" }, receivers: [{ name: "null" }] }));
  const goLimit = { GOMEMLIMIT: `${Math.floor(site.observability.memoryMiB.tsdb * 0.9)}MiB` };
  const retention = site.observability.retention;
  const procs = [
    start(
      "prometheus",
      "prometheus",
      [
        `--config.file=${dir}/prometheus.yml`,
        `--storage.tsdb.path=${dir}/prom`,
        `--storage.tsdb.retention.time=${retention}`,
        "--web.listen-address=127.0.0.1:19090",
      ],
      goLimit,
    ),
    start(
      "victoria-metrics",
      toolBinary("victoria-metrics"),
      [
        `-promscrape.config=${dir}/scrape.yml`,
        `-storageDataPath=${dir}/vm`,
        `-retentionPeriod=${retention}`,
        "-httpListenAddr=127.0.0.1:18428",
        "-search.latencyOffset=1s", // the check below reads fresh samples
      ],
      goLimit,
    ),
    start("vmalert", toolBinary("victoria-metrics", "vmalert"), [
      `-rule=${dir}/rules.yml`,
      "-datasource.url=http://127.0.0.1:18428",
      "-notifier.url=http://127.0.0.1:19093",
      `-evaluationInterval=${interval}`,
      "-httpListenAddr=127.0.0.1:18880",
    ]),
    start("alertmanager", "prometheus-alertmanager", [
      `--config.file=${dir}/am.yml`,
      `--storage.path=${dir}/am`,
      "--web.listen-address=127.0.0.1:19093",
      "--cluster.listen-address=",
    ]),
    start("victoria-logs", toolBinary("victoria-logs"), [
      `-storageDataPath=${dir}/vl`,
      "-httpListenAddr=127.0.0.1:19428",
    ]),
  ];
  try {
    for (const url of [
      "http://127.0.0.1:19090/-/ready",
      "http://127.0.0.1:18428/health",
      "http://127.0.0.1:18880/health",
      "http://127.0.0.1:19093/-/ready",
      "http://127.0.0.1:19428/health",
    ])
      await up(url, procs);
    await sleep(2 * 1000 * parseInt(interval, 10)); // the first scrapes and rule evaluations
    await scraping(jobs.length, procs);
    const cpu0 = procs.map((p) => usage(p.child.pid!).cpu);
    const t0 = Date.now();
    while (Date.now() - t0 < seconds * 1000) {
      for (const p of procs) p.rss.push(usage(p.child.pid!).rss);
      await sleep(1000);
    }
    const wall = (Date.now() - t0) / 1000;
    return {
      shape,
      series,
      procs: procs.map((p, i) => ({
        role: p.role,
        rssMiB: median(p.rss) / 2 ** 20,
        cpuPercent: ((usage(p.child.pid!).cpu - cpu0[i]) / wall) * 100,
      })),
    };
  } finally {
    for (const p of procs) p.child.kill("SIGTERM");
    t.server.close();
    await sleep(1000);
    rmSync(dir, { recursive: true, force: true });
  }
}

function table(rounds: Awaited<ReturnType<typeof round>>[]): string {
  const rows = [
    "| site shape | series | candidate | RSS (MiB, median) | CPU (% of one core) | per process |",
    "|---|---:|---|---:|---:|---|",
  ];
  for (const r of rounds) {
    const p = Object.fromEntries(r.procs.map((x) => [x.role, x]));
    const shared = ["alertmanager", "victoria-logs"];
    for (const [name, own] of [
      ["Prometheus (chosen)", ["prometheus"]],
      ["VictoriaMetrics + vmalert (peer)", ["victoria-metrics", "vmalert"]],
    ] as const) {
      const roles = [...own, ...shared];
      const rss = roles.reduce((s, k) => s + p[k].rssMiB, 0);
      const cpu = roles.reduce((s, k) => s + p[k].cpuPercent, 0);
      const each = roles.map((k) => `${k} ${p[k].rssMiB.toFixed(0)} MiB / ${p[k].cpuPercent.toFixed(2)} %`).join(", ");
      rows.push(
        `| ${r.shape.segments} segments, ${r.shape.clients} clients | ${r.series} | ${name} | ${rss.toFixed(0)} | ${cpu.toFixed(2)} | ${each} |`,
      );
    }
  }
  return rows.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: "string", default: "180" }, scales: { type: "string", default: "1,4" } },
  });
  const { plan } = devSite();
  const rounds = [];
  for (const k of values.scales!.split(",").map(Number)) {
    const shape = {
      links: plan.linkNames.length * k,
      segments: plan.segments.length * k,
      clients: plan.segments.length * k * CLIENTS_PER_SEGMENT,
    };
    rounds.push(await round(shape, Number(values.seconds)));
  }
  const md = table(rounds);
  console.log(md);
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(
    join(ROOT, "bench/results/observability.json"),
    JSON.stringify({ seconds: Number(values.seconds), rounds }, null, 2) + "\n",
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
