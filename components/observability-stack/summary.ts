/**
 * ObservabilityStack's part of SUMMARY.md: what is collected, how long it is kept, who hears the alerts, where the
 * dashboards and the log store are, and where flows and forwarding go. Pure.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { OBSERVABILITY_PORTS as P } from "../site/schema-observability";
import { SECTION, mdTable, type LayerSummary } from "../summary";
import { alertRules } from "./alerts";
import { dashboardSpecs } from "./dashboards";
import { hostPort, type ScrapeJob } from "./targets";

export function renderObservabilitySummary(site: Site, plan: SitePlan, jobs: readonly ScrapeJob[]): LayerSummary {
  const o = site.observability;
  if (!o.enabled) return { deploys: [], sections: [] };
  const at = (port: number) => `http://${hostPort(plan.managementAddress, port)}/`;
  const receivers = o.alerts.receivers.map((r) => [
    r.name,
    r.webhook ? "webhook" : "e-mail",
    r.webhook ? r.webhook.url : r.email!.to.join(", "),
  ]);
  const md = [
    "## Observability",
    "",
    `Metrics every ${o.scrapeInterval}, kept ${o.retention} (at most ${o.retentionSizeGiB} GiB) in Prometheus at ${at(P.prometheus)}; ` +
      `logs kept ${o.logs.retention} in VictoriaLogs at ${at(P.logs)}select/vmui/; dashboards in Grafana at ${at(P.dashboards)} ` +
      "(read only, from code); all on the management zones only.",
    "",
    "### What is collected",
    "",
    mdTable(
      ["job", "what", "target"],
      jobs.map((j) => [j.job, j.what, j.targets.join(", ")]),
    ),
    "",
    "Logs: Talos service logs and kernel messages, every pod's log, and the firewall's drop records (NFLOG → ulogd2, structured: addresses, ports, interfaces, rule)" +
      (site.ids.enabled
        ? `; the IDS's events (source:ids: Suricata's alerts, flows, DNS, TLS, HTTP, SSH, anomalies and drops with their community ID${site.ids.zeek.enabled ? "; Zeek's logs" : ""}). `
        : ". ") +
      `Flows: IPFIX per segment and WAN to ${o.flows.collectors.length ? o.flows.collectors.join(", ") : "the router's own collector only"}; top ${o.flows.topTalkers} talkers per link as metrics.`,
    "",
    `Forwarding: metrics ${o.remoteWrite ? `remote-written to ${o.remoteWrite.url}` : "stay on the router"}; logs ${o.logs.forward ? `forwarded to ${o.logs.forward.url}` : "stay on the router"}.`,
    "",
    "### Alerts",
    "",
    receivers.length
      ? mdTable(["receiver", "kind", "to"], receivers)
      : "**No alert receiver**: alerts show in Alertmanager only (set router:observability.alerts.receivers).",
    "",
    `${alertRules(site, plan).length} rules (${alertRules(site, plan)
      .map((r) => r.alert)
      .join(", ")}); runbook in observability/runbook.md.`,
    "",
    `Dashboards: ${dashboardSpecs(site, plan)
      .map((d) => d.title)
      .join("; ")}.`,
    "",
  ].join("\n");
  return {
    deploys: [
      {
        order: 50,
        text: "**Observability**: Prometheus, Alertmanager, node exporter, VictoriaLogs, syslog-ng with ulogd2, softflowd with nfacctd, Grafana.",
      },
    ],
    sections: [{ order: SECTION.observability, markdown: md }],
  };
}
