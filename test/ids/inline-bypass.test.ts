/**
 * The inline queue when Suricata cannot give verdicts, with the real pieces in network namespaces: a client and a
 * server on either side of a router whose links carry the names of the dev site's first inline pair, the stack's
 * queue rules (ids/ips.iptables: this kernel has no nft queue, test/helpers/nft-queue.ts), Suricata inline on the
 * site's queues as the IDS pod's `suricata-ips` container runs it (its arguments, the rendered suricata.yaml), and
 * the metrics agent as the pod's `metrics` container runs it (its arguments: the queue range), in the router's
 * network namespace, whose /proc shows it that namespace's queue table.
 *
 * - Suricata up: traffic crosses, every queue has a listener, and the kernel's packets handed to it are counted.
 * - Suricata stuck (SIGSTOP) under a burst: the queue overflows, and the kernel drops the overflow and counts it
 *   (the rendered configuration does not fail open: with fail-open the kernel passes those packets uninspected
 *   and counts nothing — net/netfilter/nfnetlink_queue.c, __nfqnl_enqueue_packet).
 * - Suricata stopped: traffic still crosses (the rule's bypass flag, as documented), and every queue is reported
 *   without a listener, and the site's rendered IdsInlineBypassed rule fires on the agent's file (promtool).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { tier } from "../helpers/tier";
import { tempDir } from "../helpers/temp";
import { devSite } from "../helpers/dev-site";
import { ROOT } from "../helpers/stacks";
import { inNetns, ip, parseMetrics, spawnInNetns, stopProcess, waitFor } from "../ebpf/lib";
import { planIds } from "../../components/ids-stack/plan";
import { ipsIptables } from "../../components/ids-stack/queue";
import { renderIdsObjects } from "../../components/ids-stack/k8s";
import { ROUTER_IDS_PATHS, renderLocalRules, suricataFiles, type IdsPaths } from "../../components/ids-stack/suricata";
import { TEXTFILE_DIR } from "../../components/observability-stack/k8s";
import { renderRuleFile } from "../../components/observability-stack/alerts";
import { idsPathsUnder } from "./lib/paths";
import { parse, stringify } from "yaml";

const t = tier("ids inline bypass", {
  root: true,
  commands: [
    "ip",
    "nsenter",
    "nft",
    "iptables-restore",
    "suricata",
    "busybox",
    "/usr/bin/python3",
    "sysctl",
    "promtool",
  ],
});

const TAG = `idsbyp${process.pid}`;
const NS = { client: `${TAG}-c`, router: `${TAG}-r`, server: `${TAG}-s` };
const SERVER = "10.98.2.2";
const AGENT = join(ROOT, "images/ids/router-ids-metrics");
/** UDP datagrams to port 9 of argv[1], as fast as the client sends them. */
const BURST = 20_000;
const SEND = [
  "import socket, sys",
  "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
  `for _ in range(${BURST}): s.sendto(b'burst', (sys.argv[1], 9))`,
].join("\n");

describe.skipIf(!t.ok)("the inline queue without Suricata's verdicts", () => {
  const { site, plan } = devSite();
  const ids = planIds(site, plan);
  const [first, last] = ids.queues;
  const queues = Array.from({ length: last - first + 1 }, (_, i) => first + i);
  const pair = ids.pairs[0];
  const links = { in: pair?.inLinks[0], out: pair?.outLinks.find((l) => l !== pair.inLinks[0]) };
  let work = "";
  let paths: IdsPaths;
  let pod: IDaemonSet;
  let suricata: ChildProcess | undefined;
  let agent: ChildProcess | undefined;
  let suricataLog = "";
  const prom = () => join(work, "ids.prom");
  const metrics = () => (existsSync(prom()) ? parseMetrics(readFileSync(prom(), "utf8")) : new Map<string, number>());
  const sum = (m: Map<string, number>, name: string) =>
    [...m].filter(([k]) => k.startsWith(`${name}{`)).reduce((n, [, v]) => n + v, 0);
  const listening = (m: Map<string, number>) => queues.map((q) => m.get(`router_ids_queue_listening{queue="${q}"}`));
  /** Burst datagrams the server received. */
  const served = () =>
    Number(/counter packets (\d+)/.exec(inNetns(NS.server, "nft", ["list", "chain", "inet", "h", "i"]))![1]);
  const ping = () =>
    spawnSync("ip", ["netns", "exec", NS.client, "busybox", "ping", "-c", "3", "-i", "0.2", "-W", "1", SERVER], {
      encoding: "utf8",
    });
  /** A container's command with the router's paths replaced by the test's. */
  const command = (name: string) =>
    pod
      .spec!.template.spec!.containers.find((c) => c.name === name)!
      .command!.map((a) =>
        a
          .replace(ROUTER_IDS_PATHS.config, paths.config)
          .replace(ROUTER_IDS_PATHS.metrics, paths.metrics!)
          .replace(ROUTER_IDS_PATHS.run, paths.run)
          .replace(ROUTER_IDS_PATHS.logs, paths.logs)
          .replace(`${TEXTFILE_DIR}/ids.prom`, prom()),
      );

  beforeAll(async () => {
    work = tempDir("ids-bypass-");
    paths = { ...idsPathsUnder(work), events: join(work, "events"), metrics: join(work, "metrics") };
    for (const d of [paths.config, paths.rules, paths.data, join(paths.logs, "ips"), paths.run, paths.metrics!])
      mkdirSync(d, { recursive: true });
    for (const [name, text] of suricataFiles(site, ids, paths)) writeFileSync(join(paths.config, name), text);
    writeFileSync(join(paths.rules, "suricata.rules"), renderLocalRules(site));
    pod = renderIdsObjects(ids, suricataFiles(site, ids), "ids").find((o) => o.kind === "DaemonSet") as IDaemonSet;

    for (const ns of Object.values(NS)) ip("netns", "add", ns);
    inNetns(NS.router, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
    for (const [side, host, net, link] of [
      ["c", NS.client, "10.98.1", links.in!],
      ["s", NS.server, "10.98.2", links.out!],
    ]) {
      ip("link", "add", `${TAG}${side}`, "type", "veth", "peer", "name", `${TAG}${side}p`);
      ip("link", "set", `${TAG}${side}`, "netns", NS.router);
      ip("-n", NS.router, "link", "set", `${TAG}${side}`, "name", link);
      ip("link", "set", `${TAG}${side}p`, "netns", host);
      ip("-n", NS.router, "addr", "add", `${net}.1/24`, "dev", link);
      ip("-n", host, "addr", "add", `${net}.2/24`, "dev", `${TAG}${side}p`);
      ip("-n", NS.router, "link", "set", link, "up");
      ip("-n", host, "link", "set", `${TAG}${side}p`, "up");
      ip("-n", host, "link", "set", "lo", "up");
      ip("-n", host, "route", "add", "default", "via", `${net}.1`);
    }
    // the burst ends at the server, unanswered and counted
    inNetns(
      NS.server,
      "nft",
      ["-f", "-"],
      "table inet h {\n chain i {\n  type filter hook input priority 0\n  udp dport 9 counter drop\n }\n}\n",
    );
    inNetns(NS.router, "iptables-restore", [], ipsIptables(ids));

    const argv = command("suricata-ips");
    // only the metrics output of the pod's: no log collector or block agent here
    suricata = spawnInNetns(NS.router, argv[0], [
      ...argv.slice(1),
      ...["--set", "outputs.1.eve-log.enabled=no", "--set", "outputs.2.eve-log.enabled=no"],
    ]);
    suricata.stdout?.on("data", (d) => (suricataLog += d));
    suricata.stderr?.on("data", (d) => (suricataLog += d));
    const agentArgv = command("metrics");
    // the pod's arguments, writing every 0.2 s rather than 10 s
    const interval = agentArgv.indexOf("--interval") + 1;
    expect(interval).toBeGreaterThan(0);
    agentArgv[interval] = "0.2";
    agent = spawnInNetns(NS.router, "/usr/bin/python3", [AGENT, ...agentArgv.slice(1)]);
    await waitFor(
      "Suricata's engine",
      () => {
        if (suricata!.exitCode !== null) throw new Error(`Suricata exited:\n${suricataLog.slice(-3000)}`);
        return suricataLog.includes("Engine started");
      },
      90_000,
      200,
    );
  }, 120_000);

  afterAll(async () => {
    if (suricata?.signalCode === null && suricata.exitCode === null) suricata.kill("SIGCONT");
    await stopProcess(suricata);
    await stopProcess(agent);
    for (const ns of Object.values(NS)) spawnSync("ip", ["netns", "del", ns]);
  });

  it("has an inline pair to queue", () => {
    expect(links.in && links.out, "the dev site's first inline pair has two links").toBeTruthy();
    expect(command("metrics")).toEqual(expect.arrayContaining(["--nfqueue", `${first}-${last}`]));
  });

  it("passes traffic through Suricata's verdicts, every queue bound and counted", async () => {
    const r = ping();
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const m = await waitFor(
      "every queue listening, with the ping's packets counted",
      () => {
        const m = metrics();
        return listening(m).every((v) => v === 1) && sum(m, "router_ids_queue_packets_total") >= 6 ? m : undefined;
      },
      10_000,
      100,
    );
    expect(m.get("router_ids_queue_table_readable")).toBe(1);
    expect(sum(m, "router_ids_queue_dropped_total")).toBe(0);
  }, 30_000);

  it("drops and counts the overflow of a stuck Suricata rather than passing it uninspected", async () => {
    suricata!.kill("SIGSTOP");
    try {
      const r = spawnSync("ip", ["netns", "exec", NS.client, "/usr/bin/python3", "-c", SEND, SERVER]);
      expect(r.status, String(r.stderr)).toBe(0);
      const m = await waitFor(
        "the burst waiting in the queue, in the agent's metrics",
        () => {
          const m = metrics();
          return sum(m, "router_ids_queue_backlog_packets") > 0 ? m : undefined;
        },
        10_000,
        100,
      );
      // the queue held what it could and the kernel dropped and counted the rest: not one datagram reached the
      // server while Suricata gave no verdict (with fail-open, the overflow would have, uncounted)
      expect(served()).toBe(0);
      expect(sum(m, "router_ids_queue_dropped_total")).toBeGreaterThan(0);
    } finally {
      suricata!.kill("SIGCONT");
    }
    const r = ping();
    expect(r.status, r.stdout + r.stderr).toBe(0);
  }, 60_000);

  it("keeps traffic flowing through the bypass once Suricata stops, and reports no listener on any queue", async () => {
    await stopProcess(suricata);
    const m = await waitFor(
      "no listener on any queue",
      () => {
        const m = metrics();
        return listening(m).every((v) => v === 0) ? m : undefined;
      },
      10_000,
      100,
    );
    expect(m.get("router_ids_queue_table_readable")).toBe(1);
    const r = ping();
    expect(r.status, `bypass: ${r.stdout}${r.stderr}`).toBe(0);
    // The agent's file as it is now, held for two minutes, fires the site's rendered IdsInlineBypassed for every
    // queue (the rule and the agent agree on the metric's name and labels).
    const result = bypassAlerts(readFileSync(prom(), "utf8"));
    expect(result.status, result.stdout + result.stderr).toBe(0);
  }, 30_000);

  /** `promtool test rules`: the rendered rules on the samples of a metrics file, each held for 2 minutes. */
  function bypassAlerts(text: string) {
    const doc = parse(renderRuleFile(site, plan)) as { groups: { rules: Record<string, unknown>[] }[] };
    for (const g of doc.groups) for (const rule of g.rules) delete rule.annotations;
    writeFileSync(join(work, "rules.yml"), stringify(doc));
    const series = text
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => ({ series: l.slice(0, l.lastIndexOf(" ")), values: `${l.slice(l.lastIndexOf(" ") + 1)}x8` }));
    const tests = {
      rule_files: ["rules.yml"],
      evaluation_interval: "15s",
      tests: [
        {
          interval: "15s",
          input_series: series,
          alert_rule_test: [
            {
              eval_time: "2m",
              alertname: "IdsInlineBypassed",
              exp_alerts: queues.map((q) => ({ exp_labels: { severity: "critical", queue: String(q) } })),
            },
          ],
        },
      ],
    };
    writeFileSync(join(work, "tests.yml"), stringify(tests));
    return spawnSync("promtool", ["test", "rules", join(work, "tests.yml")], { encoding: "utf8", cwd: work });
  }
});
