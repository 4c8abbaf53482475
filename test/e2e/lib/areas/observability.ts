/**
 * The observability stack's metrics side on the appliance: the rendered Prometheus and Alertmanager run as their
 * pods (with the node exporter) and Prometheus, reached from a management client, has the router's own scrape
 * targets up and the rendered alert rules loaded. The log store and Grafana run from their upstream images only
 * (not here); the drop-record path is proven in test/observability/image.test.ts.
 */
import { expect, it } from "vitest";
import { hostPort } from "../../../../components/observability-stack/targets";
import { alertRules } from "../../../../components/observability-stack/alerts";
import { OBSERVABILITY_PORTS } from "../../../../components/site/schema-observability";
import { waitFor } from "../../../helpers/wait";
import type { Appliance } from "../appliance";
import type { Area } from "../suite";

// Pod names: a DaemonSet of several containers runs each as its own pod, named `<daemonset>-<container>`.
const PODS = new Set(["prometheus", "alertmanager", "node-exporter-node-exporter"]);
/** The router's jobs whose daemons the appliance runs (the loader and these pods). */
const RUNNING_JOBS = ["alertmanager", "dataplane", "node", "prometheus"];

async function api<T>(app: Appliance, path: string): Promise<T> {
  const mgmt = app.client(app.plan.managementSegment);
  const url = `http://${hostPort(app.plan.managementAddress, OBSERVABILITY_PORTS.prometheus)}${path}`;
  const r = await app.run(mgmt.ns, ["curl", "-sf", "--max-time", "5", url]);
  return (JSON.parse(r.stdout || "{}") as { data: T }).data;
}

export const observability: Area = {
  title: "observability",
  appliesTo: (site) => site.observability.enabled,
  pods: (name) => PODS.has(name),
  tests(ctx) {
    it("the rendered Prometheus has the router's own targets up (the loader, the node exporter, Alertmanager, itself) and the rendered alert rules loaded", async () => {
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
        const logs = [...PODS].map(
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
  },
};
