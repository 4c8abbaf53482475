/**
 * Multi-WAN: each WAN's own routing table and marks, replies leaving through the WAN a connection came in on,
 * and failover of new connections to the backup WAN (upstream breakage and link loss) and back.
 */
import { expect, it } from "vitest";
import { durationSeconds } from "../../../../components/site/duration";
import type { WanPlan } from "../../../../components/site/plan";
import { sleep } from "../../../helpers/wait";
import { probe } from "../checks";
import { INTERNET, internetSource } from "../internet";
import type { Area, SuiteContext } from "../suite";
import { firstPort, forwardTarget, internetClient, onWan } from "./common";

/** Interval × failed rounds + 2 s: the longest a WAN failure may stay unnoticed, plus the route change. */
function failoverBudgetMs(w: WanPlan): number {
  return (durationSeconds(w.probe.interval) * w.probe.failures + 2) * 1000;
}

/** A WAN whose link loses its carrier is down as soon as the loader sees the link change. */
const LINK_LOSS_BUDGET_MS = 2000;

function recoveryBudgetMs(w: WanPlan): number {
  return (durationSeconds(w.probe.interval) * w.probe.successes + 2) * 1000;
}

export const multiWan: Area = {
  title: "multi-WAN",
  appliesTo: (_site, plan) => plan.wans.length >= 2,
  tests(ctx) {
    const backupForward = ctx.site.portForwards.some(
      (pf) => !pf.sources && (pf.wans ?? ctx.plan.wans.map((w) => w.name)).includes(ctx.plan.wans[1].name),
    );

    it("routes each WAN's marked connections through that WAN's own table, which holds that WAN's default route", () => {
      const app = ctx.app;
      const rules = app.exec(app.router, ["ip", "rule", "show"]).stdout;
      const rows = app.plan.wans.map((w) => {
        const side = app.wans.find((x) => x.wan.name === w.name)!;
        const table = app.exec(app.router, ["ip", "route", "show", "table", String(w.table)], {
          allowFail: true,
        }).stdout;
        return {
          got: {
            wan: w.name,
            rule: new RegExp(`fwmark 0x${w.mark.toString(16)}/0xf0 lookup ${w.table}\\b`).test(rules),
            defaultRoute: /default via (\S+) dev (\S+)/.exec(table)?.slice(1, 3),
          },
          want: { wan: w.name, rule: true, defaultRoute: [side.gateway4, w.name] },
        };
      });
      expect(rows.map((r) => r.got)).toEqual(rows.map((r) => r.want));
    });

    if (backupForward)
      it("sends replies to connections that came in on the backup WAN back out through the backup WAN", async () => {
        // Dangerous when wrong: the reply leaves through the primary uplink with the backup's address and the
        // primary ISP drops it as spoofed (BCP 38): everything published on the backup WAN is unreachable.
        const app = ctx.app;
        const backup = app.wans[1];
        const pf = app.site.portForwards.find((x) => onWan(app, x, backup) && !x.sources)!;
        const proto = pf.protocol === "udp" ? "udp" : "tcp";
        const r = await probe(app, app.inet, [
          { id: "in", proto, dst: backup.addr4!, port: firstPort(pf), src: internetSource(4, 33) },
        ]);
        expect({ observed: r.get("in")!.observed, answerer: r.get("in")!.answerer }).toEqual({
          observed: "reached",
          answerer: forwardTarget(app, pf)?.name,
        });
      });

    // Upstream breakage shows only in the probes; a lost carrier shows at once in the link's routes. Each failure
    // is an interface of the primary ISP's namespace going down: its upstream, or its end of the WAN link.
    for (const c of [
      {
        how: "breaks upstream (its link stays up)",
        within: "within the probe budget",
        iface: "uplink",
        budgetMs: failoverBudgetMs,
      },
      {
        how: "loses its link",
        within: `within ${LINK_LOSS_BUDGET_MS / 1000} s (no probe rounds)`,
        iface: "cust",
        budgetMs: () => LINK_LOSS_BUDGET_MS,
      },
    ])
      it(`moves new LAN connections to the backup WAN ${c.within} when the primary WAN ${c.how}, and back when it recovers`, async () => {
        await failover(ctx, c.how, c.iface, c.budgetMs(ctx.app.wans[0].wan));
      }, 120_000);
  },
};

/** Breaks the primary WAN by taking `iface` of its ISP down, repairs it, and holds new connections to a path. */
async function failover(ctx: SuiteContext, how: string, iface: string, budget: number): Promise<void> {
  const app = ctx.app;
  const primary = app.wans[0];
  const backup = app.wans[1];
  const back = recoveryBudgetMs(primary.wan);
  const client = internetClient(app);
  const gapMs = 100;
  const warmup = 2000;
  const down = budget + 4000;
  const count = Math.ceil((warmup + down + back + 4000) / gapMs);
  const loop = probe(
    app,
    client.ns,
    Array.from({ length: count }, (_, i) => ({
      id: `p${i}`,
      proto: "tcp" as const,
      dst: INTERNET.server4,
      port: 80,
      src: client.addr4,
      timeoutMs: 700,
    })),
    { gapUs: gapMs * 1000, clock: true, parallel: 64 },
  );
  // The failure happens while the break command runs: after `breaking`, before `brokeAt`. Likewise the
  // recovery, between `fixing` and `fixedAt`.
  let breaking = 0;
  let brokeAt = 0;
  let fixing = 0;
  let fixedAt = 0;
  try {
    await sleep(warmup);
    breaking = Date.now();
    app.exec(primary.ns, ["ip", "link", "set", iface, "down"]);
    brokeAt = Date.now();
    await sleep(down);
  } finally {
    fixing = Date.now();
    app.exec(primary.ns, ["ip", "link", "set", iface, "up"]);
    // an interface going down takes its routes with it
    app.topology.ispRoutes(primary);
    fixedAt = Date.now();
    // the probe loop always finishes before the test does
    await loop.catch(() => undefined);
  }
  const results = [...(await loop).values()].sort((a, b) => a.at! - b.at!);
  const via = (r: (typeof results)[number]) =>
    r.observed !== "reached"
      ? r.observed
      : r.peer === primary.addr4
        ? "primary"
        : r.peer === backup.addr4
          ? "backup"
          : `other ${r.peer}`;
  const timeline = results
    .map((r) => `${((r.at! - brokeAt) / 1000).toFixed(1)}s ${via(r)}${r.observed === "other" ? ` (${r.detail})` : ""}`)
    .join(", ");
  // A connection still being set up when the primary fails (or comes back) may fail with it: only those made
  // wholly before the failure, wholly within the outage after the budget, or after the recovery budget are held
  // to a path.
  const before = results.filter((r) => r.end! < breaking);
  const during = results.filter((r) => r.at! >= brokeAt + budget && r.end! < fixing);
  const afterFix = results.filter((r) => r.at! >= fixedAt + back);
  logFailover(ctx.title, how, results, via, { brokeAt, fixedAt, budget, back, gapMs });
  expect(before.length).toBeGreaterThan(10);
  expect(before.map(via), `every connection made before the failure goes through the primary WAN: ${timeline}`).toEqual(
    before.map(() => "primary"),
  );
  expect(during.length).toBeGreaterThan(10);
  expect(
    during.map(via),
    `every new connection from ${budget / 1000} s after the failure goes through the backup WAN: ${timeline}`,
  ).toEqual(during.map(() => "backup"));
  expect(afterFix.length).toBeGreaterThan(5);
  expect(
    afterFix.map(via),
    `every new connection from ${back / 1000} s after recovery goes through the primary WAN: ${timeline}`,
  ).toEqual(afterFix.map(() => "primary"));
}

function logFailover<R extends { at?: number }>(
  title: string,
  how: string,
  results: R[],
  via: (r: R) => string,
  t: { brokeAt: number; fixedAt: number; budget: number; back: number; gapMs: number },
): void {
  const firstBackup = results.find((r) => r.at! >= t.brokeAt && via(r) === "backup");
  const lastNotPrimary = [...results].reverse().find((r) => r.at! >= t.fixedAt && via(r) !== "primary");
  console.log(
    `${title}: primary WAN ${how}: first connection through the backup ${firstBackup ? ((firstBackup.at! - t.brokeAt) / 1000).toFixed(1) : "never"} s after the failure (budget ${t.budget / 1000} s); back on the primary ${lastNotPrimary ? ((lastNotPrimary.at! - t.fixedAt) / 1000 + t.gapMs / 1000).toFixed(1) : "0.0"} s after recovery (budget ${t.back / 1000} s)`,
  );
}
