/**
 * The observability stack's metrics side on the appliance: the rendered Prometheus and Alertmanager run as their
 * pods (with the node exporter) and Prometheus, reached from a management client, has the router's own scrape
 * targets up and the rendered alert rules loaded. Where the site names a webhook receiver on one of the appliance's
 * hosts, breaking the primary WAN's upstream makes the rendered Alertmanager deliver WanDown to that receiver
 * (test/e2e/tools/webhook-sink.mjs), and its recovery the resolved notice. The log store (VictoriaLogs built at
 * its image's version, pods.ts UPSTREAM_BINARIES) and the log collector (ulogd2 and syslog-ng) run as their pods:
 * a connection attempt from the internet that the router's input drops is a structured record there within 5 s.
 * The flows DaemonSet (a softflowd per link, nfacctd, the top-talker script) and the node exporter's DHCP script
 * run too: a known upload is counted within 5 % (observability-flows.ts); every rendered dashboard query has
 * data but for a listed few, and a filled DHCP pool fires its alert (observability-metrics.ts).
 * Grafana runs from its upstream image only (not here).
 */
import { expect, it } from "vitest";
import { durationSeconds } from "../../../../components/site/duration";
import { hostPort } from "../../../../components/observability-stack/targets";
import { alertRules } from "../../../../components/observability-stack/alerts";
import { OBSERVABILITY_LOCAL_PORTS, OBSERVABILITY_PORTS } from "../../../../components/site/schema-observability";
import { compilePolicy, evaluate } from "../../../../components/site/policy";
import { sleep, waitFor } from "../../../helpers/wait";
import type { Appliance } from "../appliance";
import { OBSERVABILITY_PODS, observabilityPod } from "../pods";
import { probe } from "../checks";
import { INTERNET, internetSource } from "../internet";
import type { Area, SuiteContext } from "../suite";
import { flowCounted, flowTestApplies } from "./observability-flows";
import {
  api,
  dashboardsHaveData,
  poolAlertFires,
  renderedTimers,
  smallPoolSegment,
  webhookSink,
  type Notice,
} from "./observability-metrics";

/**
 * The router's jobs whose daemons the appliance runs (the loader and these pods), and the kubelet's cAdvisor
 * (its stand-in, lib/kubelet.ts: the rendered job's HTTPS, service-account token and RBAC against the pods' cgroups).
 */
const RUNNING_JOBS = ["alertmanager", "cadvisor", "dataplane", "node", "prometheus"];

export const observability: Area = {
  title: "observability",
  appliesTo: (site) => site.observability.enabled,
  // the flows DaemonSet: nfacctd, the top-talker script and a softflowd per link
  pods: observabilityPod,
  tests(ctx) {
    it("the rendered Prometheus has the router's own targets up (the loader, the node exporter, Alertmanager, itself, the kubelet's cAdvisor) and the rendered alert rules loaded", async () => {
      const app = ctx.app;
      type Target = { labels: { job: string }; health: string; lastError: string };
      let seen: Target[] = [];
      const up = await waitFor(
        "the router's scrape targets to be up",
        async () => {
          const t = await api<{ activeTargets: Target[] }>(app, "/api/v1/targets").catch(() => undefined);
          seen = t?.activeTargets ?? seen;
          const jobs = seen.filter((x) => x.health === "up").map((x) => x.labels.job);
          return RUNNING_JOBS.every((j) => jobs.includes(j)) ? jobs : undefined;
        },
        60_000,
        1000,
      ).catch((e: Error) => {
        const targets = seen.map((x) => `${x.labels.job}: ${x.health} ${x.lastError}`).join("\n");
        const logs = [...OBSERVABILITY_PODS].map(
          (p) => `--- ${p}\n${app.pods.running.get(p)?.log().slice(-1500) ?? "(not running)"}`,
        );
        throw new Error(`${e.message}\n${targets}\n${logs.join("\n")}`);
      });
      expect(up).toEqual(expect.arrayContaining(RUNNING_JOBS));
      const rules = await api<{ groups: { rules: { name: string }[] }[] }>(app, "/api/v1/rules");
      const loaded = rules.groups.flatMap((g) => g.rules.map((r) => r.name)).sort();
      expect(loaded).toEqual(
        alertRules(app.site, app.plan)
          .map((r) => r.alert)
          .sort(),
      );
    }, 120_000);

    if (ctx.site.firewall.logDrops)
      it("stores a connection attempt from the internet that the router drops as a structured record (source, destination, port, rule) within 5 s", async () => {
        await dropRecorded(ctx.app);
      }, 60_000);

    const hook = ctx.site.observability.alerts.receivers.find((r) => r.webhook)?.webhook;
    // With a single WAN its loss is AllWansDown, which inhibits WanDown.
    if (hook && ctx.plan.wans.length >= 2)
      it(`delivers WanDown to the site's webhook receiver when the primary WAN's upstream breaks, and its resolved notice when it recovers`, async () => {
        await wanAlertDelivered(ctx, new URL(hook.url));
      }, 300_000);

    if (flowTestApplies(ctx))
      it("counts a 20 MB TCP upload from a client to the internet as that client's bytes on its segment (±5 %): softflowd → nfacctd → the top-talker metric", async () => {
        await flowCounted(ctx);
      }, 180_000);

    it("has data for every panel query of the rendered dashboards, but for the listed few the appliance cannot have", async () => {
      await dashboardsHaveData(ctx);
    }, 240_000);

    if (smallPoolSegment(ctx.plan))
      it("fires DhcpPoolNearlyFull when DHCP clients fill a pool to the threshold (delivered to the site's webhook where it has one), and resolves it when they release their leases", async () => {
        await poolAlertFires(ctx);
      }, 240_000);
  },
};

/** The notifications a sink has received so far for WanDown of one WAN, as [status, time received]. */
function wanDownNotices(notices: Notice[], wan: string): { status: string; at: number; path: string }[] {
  return notices.flatMap((n) =>
    (n.body?.alerts ?? [])
      .filter((a) => a.labels.alertname === "WanDown" && a.labels.wan === wan)
      .map((a) => ({ status: a.status, at: n.at, path: n.path })),
  );
}

/**
 * The longest each notice may take, from the rendered rule and Alertmanager route: the loader noticing (probe
 * rounds), one scrape and one rule evaluation, the rule's `for`, then Alertmanager's group_wait for a new group
 * or group_interval for a change in a notified one; 5 s for the processes in between.
 */
function noticeBudgetsMs(app: Appliance): { fire: number; resolve: number } {
  const timers = renderedTimers(app, "WanDown");
  const probe = app.wans[0].wan.probe;
  const scrape = durationSeconds(app.site.observability.scrapeInterval);
  const fire =
    durationSeconds(probe.interval) * probe.failures +
    durationSeconds(probe.timeout) +
    2 * scrape +
    timers.for +
    timers.groupWait;
  const resolve = durationSeconds(probe.interval) * probe.successes + 2 * scrape + timers.groupInterval;
  return { fire: (fire + 5) * 1000, resolve: (resolve + 5) * 1000 };
}

/** Breaks the primary WAN's upstream until WanDown reaches the webhook receiver, then repairs it until resolved. */
async function wanAlertDelivered(ctx: SuiteContext, url: URL): Promise<void> {
  const app = ctx.app;
  const primary = app.wans[0];
  const { sink, notices: all } = webhookSink(app, url);
  const budget = noticeBudgetsMs(app);
  const notices = () => wanDownNotices(all(), primary.wan.name);
  const explain = (e: Error) =>
    new Error(
      `${e.message}\nwebhook sink:\n${sink.log().slice(-2000)}\nalertmanager:\n${app.pods.running.get("alertmanager")?.log().slice(-1500)}`,
    );
  try {
    await waitFor("the webhook sink to listen", () => sink.log().includes("listening"), 5000);
    await sleep(1000);
    const brokeAt = Date.now();
    app.exec(primary.ns, ["ip", "link", "set", "uplink", "down"]);
    let fixedAt = 0;
    try {
      await waitFor(
        "WanDown to reach the webhook",
        () => notices().some((n) => n.status === "firing"),
        budget.fire,
        500,
      ).catch((e: Error) => {
        throw explain(e);
      });
    } finally {
      app.exec(primary.ns, ["ip", "link", "set", "uplink", "up"]);
      app.topology.ispRoutes(primary);
      fixedAt = Date.now();
    }
    await waitFor(
      "the resolved WanDown to reach the webhook",
      () => notices().some((n) => n.status === "resolved"),
      budget.resolve,
      500,
    ).catch((e: Error) => {
      throw explain(e);
    });
    const got = notices();
    const fired = got.find((n) => n.status === "firing")!;
    const resolved = got.find((n) => n.status === "resolved")!;
    console.log(
      `${ctx.title}: WanDown of ${primary.wan.name} reached the webhook ${((fired.at - brokeAt) / 1000).toFixed(1)} s after the break (budget ${budget.fire / 1000} s), resolved ${((resolved.at - fixedAt) / 1000).toFixed(1)} s after the repair (budget ${budget.resolve / 1000} s)`,
    );
    expect({ firing: fired.path, resolvedAfterRepair: resolved.at >= fixedAt }).toEqual({
      firing: url.pathname,
      resolvedAfterRepair: true,
    });
  } finally {
    await sink.stop();
  }
}

/** Seconds per logged packet at a site's `logRate` (e.g. 10/minute: one every 6 s). */
function logPeriodSeconds(rate: string): number {
  const [n, unit] = rate.split("/");
  return ({ second: 1, minute: 60, hour: 3600 } as Record<string, number>)[unit] / Number(n);
}

/** A TCP port of the primary WAN's address that no forward takes and the policy drops at the router's input. */
function droppedWanPort(app: Appliance, src: string): number {
  const model = compilePolicy(app.site, app.plan);
  const w = app.wans[0];
  const forwarded = (port: number) =>
    app.site.portForwards.some((pf) => {
      const [lo, hi] = String(pf.port).split("-").map(Number);
      return (pf.protocol ?? "tcp") !== "udp" && port >= lo && port <= (hi ?? lo);
    });
  for (let port = 2222; port < 2300; port++) {
    if (forwarded(port)) continue;
    const d = evaluate(model, { from: w.wan.zone, to: "router", proto: "tcp", port, src, dst: w.addr4! });
    if (d.by === "input-default" && d.log) return port;
  }
  throw new Error("no TCP port from 2222 to 2299 is dropped and logged at the router's input");
}

/** Sends one dropped connection attempt from the internet and waits for its record in the log store. */
async function dropRecorded(app: Appliance): Promise<void> {
  const mgmt = app.client(app.plan.managementSegment);
  const store = `http://${hostPort(app.plan.managementAddress, OBSERVABILITY_PORTS.logs)}`;
  const logs = () =>
    ["logs", "log-collector-ulogd", "log-collector-syslog-ng"]
      .map((p) => `--- ${p}\n${app.pods.running.get(p)?.log().slice(-1500) ?? "(not running)"}`)
      .join("\n");
  await waitFor(
    `the log store to answer and the collector to take drop records\n${logs()}`,
    async () =>
      (await app.run(mgmt.ns, ["curl", "-sf", "--max-time", "2", `${store}/health`], { allowFail: true })).status ===
        0 &&
      new RegExp(`:${OBSERVABILITY_LOCAL_PORTS.firewallLogs}\\b`).test(app.exec(app.router, ["ss", "-Hunl"]).stdout),
    30_000,
    500,
  );
  const src = internetSource(4, INTERNET.sourceCount - 1);
  const dst = app.wans[0].addr4!;
  const port = droppedWanPort(app, src);
  // Earlier drops may have used up the log limit's tokens: one period of the rate brings one back.
  await sleep(logPeriodSeconds(app.site.firewall.logRate) * 1000 + 500);
  const sent = Date.now();
  await probe(app, app.inet, [{ id: "drop", proto: "tcp", dst, port, src, timeoutMs: 500 }]);
  const query = `source:firewall src_ip:"${src}" dest_port:"${port}"`;
  const record = await waitFor(
    `the drop of ${src} → ${dst}:${port} in the log store\n${logs()}`,
    async () => {
      const r = await app.run(
        mgmt.ns,
        ["curl", "-sf", "--max-time", "2", `${store}/select/logsql/query`, "--data-urlencode", `query=${query}`],
        { allowFail: true },
      );
      const rows = r.stdout.split("\n").filter(Boolean);
      return rows.length ? (JSON.parse(rows[0]) as Record<string, string>) : undefined;
    },
    5_000,
    200,
  );
  console.log(
    `drop record of ${src} → ${dst}:${port} in the log store ${((Date.now() - sent) / 1000).toFixed(1)} s after the attempt`,
  );
  expect(record).toMatchObject({
    _msg: expect.stringMatching(/^router input drop/),
    src_ip: src,
    dest_ip: dst,
    dest_port: String(port),
    "ip.protocol": "6",
    "oob.in": app.wans[0].wan.name,
  });
}
