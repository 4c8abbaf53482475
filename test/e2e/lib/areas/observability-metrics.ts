/**
 * The observability area's metric proofs on the appliance (lib/areas/observability.ts registers them):
 * - every panel query of the rendered dashboards (`observability/dashboards/*.json`, as Grafana reads them) run
 *   against the rendered Prometheus returns at least one series, but for the few listed in NO_DATA_HERE, each
 *   with the reason the appliance cannot have its data; the list is asserted exactly, so a panel that starts
 *   having data there, or one that loses it, fails;
 * - test DHCP clients that fill a small pool (Kea's leases, read by the node exporter's rendered DHCP script the
 *   way the router reads them) fire the rendered pool alert in Prometheus within its `for` and the scrape chain,
 *   deliver it to the site's webhook receiver where it has one, and releasing the leases resolves it.
 * The webhook receiver is test/e2e/tools/webhook-sink.mjs on the appliance's host that has the receiver's address.
 */
import { join } from "node:path";
import { parse } from "yaml";
import { expect } from "vitest";
import { durationSeconds } from "../../../../components/site/duration";
import { hostPort } from "../../../../components/observability-stack/targets";
import { OBSERVABILITY_PORTS } from "../../../../components/site/schema-observability";
import type { SegmentPlan } from "../../../../components/site/plan";
import { waitFor } from "../../../helpers/wait";
import { ROOT, type Appliance, type Host } from "../appliance";
import type { Daemon } from "../exec";
import type { SuiteContext } from "../suite";

/** GET from the router's Prometheus API (from a management client); its `data`. */
export async function api<T>(app: Appliance, path: string, params: Record<string, string> = {}): Promise<T> {
  const mgmt = app.client(app.plan.managementSegment);
  const url = `http://${hostPort(app.plan.managementAddress, OBSERVABILITY_PORTS.prometheus)}${path}`;
  const form = Object.entries(params).flatMap(([k, v]) => ["--data-urlencode", `${k}=${v}`]);
  const r = await app.run(mgmt.ns, ["curl", "-sf", "--max-time", "5", "-G", url, ...form]);
  return (JSON.parse(r.stdout || "{}") as { data: T }).data;
}

/** One series of an instant query. */
export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An instant PromQL query's series. */
export async function query(app: Appliance, promql: string): Promise<Sample[]> {
  const r = await api<{ result: Sample[] }>(app, "/api/v1/query", { query: promql });
  return r?.result ?? [];
}

const DNS_FRONT =
  "router-dns-stats counts answers only from the DNS front (dnsdist), which runs on the appliance only where the DNS area runs its pods (a site whose zones take DNS from the router); elsewhere a stand-in answers the router's port 53 for the policy matrix";

export const IDS_LATER =
  "the IDS pods (Suricata and its metrics agent) run in the ids areas, after this one, with the rules and traffic they need: lib/areas/ids-events.ts runs these queries once they run";

export const OSPF_LATER =
  "the OSPF neighbour router joins in the routing area, after this one: lib/areas/routing.ts runs these queries once the adjacency is Full";

const TALOS_API =
  "the BGP collector reads Talos' BGPPeerStatuses through the Talos API (talosctl from its image volume), which the appliance does not serve: lib/pods.ts runs no pod with an image volume";

/**
 * Panels the appliance cannot give data, by query, with the reason. Kept short: a panel whose data is missing
 * because something is not run here is run instead (lib/pods.ts runs every DaemonSet an area asks for).
 */
export const NO_DATA_HERE: Readonly<Record<string, string>> = {
  "sum by (zone) (rate(router_dns_queries_total[5m]))": DNS_FRONT,
  "sum(rate(router_dns_servfail_total[5m])) / sum(rate(router_dns_queries_total[5m])) * 100": DNS_FRONT,
  "sum by (severity, action) (rate(router_ids_alerts_total[5m])) * 60": IDS_LATER,
  "sum by (process) (rate(router_ids_capture_kernel_drops_total[5m])) / sum by (process) (rate(router_ids_capture_kernel_packets_total[5m])) * 100":
    IDS_LATER,
  "sum by (process) (rate(router_ids_packets_total[5m]))": IDS_LATER,
  "sum by (verdict) (rate(router_ids_ips_packets_total[5m]))": IDS_LATER,
  "sum by (interface) (router_ospf_neighbour_full)": OSPF_LATER,
  router_ospf_neighbour_hello_age_seconds: OSPF_LATER,
  router_bgp_session_established: TALOS_API,
  router_bgp_bfd_up: TALOS_API,
  router_bgp_received_prefixes: TALOS_API,
};

/** Every panel query of the rendered dashboards: [dashboard uid, panel title, PromQL]. */
export function renderedPanelQueries(app: Appliance): [string, string, string][] {
  const out: [string, string, string][] = [];
  const walk = (uid: string, panels: unknown[]) => {
    for (const p of panels as { title?: string; targets?: { expr?: string }[]; panels?: unknown[] }[]) {
      for (const t of p.targets ?? []) if (t.expr) out.push([uid, p.title ?? "", t.expr]);
      walk(uid, p.panels ?? []);
    }
  };
  for (const [path, content] of app.opts.rendered.files)
    if (/^observability\/dashboards\/[^/]+\.json$/.test(path)) {
      const d = JSON.parse(content) as { uid: string; panels?: unknown[] };
      walk(d.uid, d.panels ?? []);
    }
  return out.sort((a, b) => a.join("\0").localeCompare(b.join("\0")));
}

/** Runs every rendered panel query until each has a series (or the budget ends); the exact empty set is asserted. */
export async function dashboardsHaveData(ctx: SuiteContext): Promise<void> {
  const app = ctx.app;
  const panels = renderedPanelQueries(app);
  const queries = [...new Set(panels.map(([, , q]) => q))].sort();
  // the DNS front's counters have data where it runs (the DNS area started it with the clients, and its tests
  // and the policy matrix query it before this area)
  const front = app.pods.running.has("dns-front");
  const noData = Object.fromEntries(Object.entries(NO_DATA_HERE).filter(([, why]) => !(front && why === DNS_FRONT)));
  expect(queries.length, "the rendered dashboards have panel queries").toBeGreaterThan(10);
  // rate() over a range needs two samples of a counter; the top talkers need one flow window written.
  const interval = durationSeconds(ctx.site.observability.scrapeInterval);
  const budgetMs = (4 * interval + 70) * 1000;
  let empty: string[] = queries;
  const errors = new Map<string, string>();
  const started = Date.now();
  await waitFor(
    "every dashboard query but the listed ones to return data",
    async () => {
      const now: string[] = [];
      for (const q of queries) {
        const r = await query(app, q).catch((e: Error) => {
          errors.set(q, e.message);
          return [];
        });
        if (!r.length) now.push(q);
      }
      empty = now;
      return empty.every((q) => q in noData);
    },
    budgetMs,
    interval * 1000,
  ).catch(() => undefined);
  const where = (q: string) =>
    panels
      .filter(([, , x]) => x === q)
      .map(([d, t]) => `${d}/${t}`)
      .join(", ");
  console.log(
    `${ctx.title}: ${queries.length - empty.length} of ${queries.length} dashboard queries returned data after ${((Date.now() - started) / 1000).toFixed(0)} s; empty: ${empty.map((q) => `${q} (${where(q)})`).join("; ") || "none"}`,
  );
  const listed = Object.keys(noData).filter((q) => queries.includes(q));
  expect(
    empty.map((q) => `${q} [${where(q)}]${errors.has(q) ? ` ${errors.get(q)}` : ""}`),
    "dashboard queries without data (listed: NO_DATA_HERE)",
  ).toEqual(listed.sort().map((q) => `${q} [${where(q)}]`));
}

/** A webhook receiver on the appliance's host with the URL's address; `notices` reads what it got so far. */
export function webhookSink(app: Appliance, url: URL): { sink: Daemon; notices: () => Notice[] } {
  const host: Host | undefined = app.hosts.find((h) => [h.addr4, ...h.static4].includes(url.hostname));
  if (!host) throw new Error(`the webhook receiver ${url.hostname} is no host of the appliance`);
  const sink = app.shell.daemon(`${host.ns}-webhook`, host.ns, [
    process.execPath,
    join(ROOT, "test/e2e/tools/webhook-sink.mjs"),
    url.hostname,
    url.port || "80",
  ]);
  const notices = () =>
    sink
      .log()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Notice);
  return { sink, notices };
}

/** One notification as the sink printed it (Alertmanager's webhook `Message`, trimmed to what is checked). */
export interface Notice {
  at: number;
  path: string;
  body?: { status: string; alerts: { status: string; labels: Record<string, string> }[] };
}

/** The rendered rule's `for` and Alertmanager's route timers, in seconds. */
export function renderedTimers(
  app: Appliance,
  alert: string,
): { for: number; groupWait: number; groupInterval: number } {
  const rendered = (path: string) => parse(app.opts.rendered.files.get(path) ?? "") as Record<string, unknown>;
  const rules = rendered("observability/router.rules.yml") as {
    groups: { rules: { alert: string; for?: string }[] }[];
  };
  const rule = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === alert);
  if (!rule) throw new Error(`the rendered rules have no ${alert}`);
  const route = (rendered("observability/alertmanager.yml") as { route: Record<string, string> }).route;
  return {
    for: durationSeconds(rule.for ?? "0s"),
    groupWait: durationSeconds(route.group_wait),
    groupInterval: durationSeconds(route.group_interval),
  };
}

/** The largest pool the test fills (a network namespace and a DHCP client per address). */
const POOL_FILL_MAX = 16;

/** The segment whose pool test clients fill: DHCP on, the smallest pool, at most POOL_FILL_MAX addresses. */
export function smallPoolSegment(plan: SuiteContext["plan"]): SegmentPlan | undefined {
  return plan.segments
    .filter((s) => s.dhcp.enabled && s.dhcp.pool && s.dhcp.pool.size <= POOL_FILL_MAX)
    .sort((a, b) => a.dhcp.pool!.size - b.dhcp.pool!.size || a.name.localeCompare(b.name))[0];
}

/**
 * Fills the smallest pool to the alert's threshold with DHCP clients, waits for DhcpPoolNearlyFull to fire in
 * Prometheus (and reach the site's webhook receiver), then releases the leases and waits for it to resolve.
 */
export async function poolAlertFires(ctx: SuiteContext): Promise<void> {
  const app = ctx.app;
  const seg = smallPoolSegment(ctx.plan)!;
  const size = seg.dhcp.pool!.size;
  const threshold = ctx.site.observability.alerts.thresholds.dhcpPoolPercent;
  const interval = durationSeconds(ctx.site.observability.scrapeInterval);
  const timers = renderedTimers(app, "DhcpPoolNearlyFull");
  const used = `router_dhcp_pool_used_addresses{segment="${seg.name}"}`;
  const firing = `ALERTS{alertname="DhcpPoolNearlyFull",segment="${seg.name}",alertstate="firing"}`;
  const before = await waitFor(
    `the pool usage of ${seg.name} in Prometheus`,
    async () => (await query(app, used))[0],
    (3 * interval + 10) * 1000,
    1000,
  );
  expect(await query(app, firing), "DhcpPoolNearlyFull before the pool fills").toEqual([]);
  const need = Math.ceil((size * threshold) / 100) - Number(before.value[1]);
  if (need < 1) throw new Error(`the pool of ${seg.name} is already at ${before.value[1]} of ${size} addresses`);

  const hook = ctx.site.observability.alerts.receivers.find((r) => r.webhook)?.webhook;
  const receiver = hook ? webhookSink(app, new URL(hook.url)) : undefined;
  const clients = Array.from({ length: need }, (_, i) => app.addHost(seg.name, `pool${i}`, 0x200 + i));
  // -R: release the lease when the client ends.
  const daemons = clients.map((h) => app.dhcp.start4(h.ns, "eth0", undefined, ["-R"]));
  try {
    if (receiver) await waitFor("the webhook sink to listen", () => receiver.sink.log().includes("listening"), 5000);
    await waitFor(`${need} leases on ${seg.name}`, () => clients.every((h) => app.dhcp.lease4(h.ns)?.ip), 30_000, 250);
    const filledAt = Date.now();
    // The lease file is read, scraped and the rule evaluated once each (one scrape interval apiece), then `for`.
    const fireBudget = (timers.for + 3 * interval + 5) * 1000;
    await waitFor(
      `DhcpPoolNearlyFull for ${seg.name} (${need} more leases of ${size})`,
      async () => (await query(app, firing)).length > 0,
      fireBudget,
      500,
    );
    const firedAfter = (Date.now() - filledAt) / 1000;
    let deliveredAfter: number | undefined;
    if (receiver) {
      const delivered = () =>
        receiver
          .notices()
          .find((n) =>
            n.body?.alerts.some(
              (a) =>
                a.status === "firing" && a.labels.alertname === "DhcpPoolNearlyFull" && a.labels.segment === seg.name,
            ),
          );
      const n = await waitFor("DhcpPoolNearlyFull at the webhook", delivered, (timers.groupWait + 5) * 1000, 500);
      expect(n.path).toBe(new URL(hook!.url).pathname);
      deliveredAfter = (n.at - filledAt) / 1000;
    }
    await Promise.all(daemons.map((d) => d.stop()));
    const releasedAt = Date.now();
    await waitFor(
      `DhcpPoolNearlyFull for ${seg.name} to resolve once the leases are released`,
      async () => (await query(app, firing)).length === 0,
      (3 * interval + 5) * 1000,
      500,
    );
    console.log(
      `${ctx.title}: ${need} clients filled ${seg.name}'s pool of ${size}; DhcpPoolNearlyFull fired ${firedAfter.toFixed(1)} s later (budget ${fireBudget / 1000} s)${deliveredAfter !== undefined ? `, reached the webhook after ${deliveredAfter.toFixed(1)} s` : ""}, resolved ${((Date.now() - releasedAt) / 1000).toFixed(1)} s after the release`,
    );
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
    await receiver?.sink.stop();
  }
}
