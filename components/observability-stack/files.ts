/**
 * Every configuration file of the observability stack, by the ConfigMap that carries it, and the same files as
 * render artifacts (`observability/…`). Secrets are never here: they travel in Secrets the component creates.
 * Pure.
 */
import { stringify } from "yaml";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import { OBSERVABILITY_PORTS } from "../site/schema-observability";
import { renderAlertmanagerConfig } from "./alertmanager";
import { renderRuleFile, renderRunbook } from "./alerts";
import { DATASOURCE_UID, renderDashboards } from "./dashboards";
import { renderFlowLinks, renderNfacctd } from "./flows";
import { renderPools } from "./k8s";
import { renderSyslogNg, renderUlogd } from "./logs";
import { renderPrometheusConfig } from "./prometheus";
import { hostPort, scrapeJobs, type ScrapeContribution } from "./targets";

export interface StackFiles {
  /** ConfigMap role → file name → content. */
  configMaps: Record<string, Record<string, string>>;
  /** Render artifacts: path under out/<stack>/ → content. */
  artifacts: Record<string, string>;
}

/** Grafana's provisioning: the TSDB as the default data source, the dashboards from their ConfigMap, read only. */
function grafanaProvisioning(plan: SitePlan): Record<string, string> {
  return {
    "datasources.yaml": stringify({
      apiVersion: 1,
      datasources: [
        {
          name: "Prometheus",
          uid: DATASOURCE_UID,
          type: "prometheus",
          access: "proxy",
          url: `http://${hostPort(plan.managementAddress, OBSERVABILITY_PORTS.prometheus)}`,
          isDefault: true,
          editable: false,
        },
      ],
    }),
    "dashboards.yaml": stringify({
      apiVersion: 1,
      providers: [
        {
          name: "router",
          type: "file",
          disableDeletion: true,
          allowUiUpdates: false,
          options: { path: "/var/lib/grafana-dashboards" },
        },
      ],
    }),
  };
}

export function renderStackFiles(
  site: Site,
  plan: SitePlan,
  model: PolicyModel,
  opts: { webhookToken: boolean; scrapes?: readonly ScrapeContribution[] },
): StackFiles {
  const configMaps: StackFiles["configMaps"] = {
    prometheus: { "prometheus.yml": renderPrometheusConfig(site, plan, scrapeJobs(site, plan, opts.scrapes)) },
    "prometheus-rules": { "router.rules.yml": renderRuleFile(site, plan) },
    alertmanager: { "alertmanager.yml": renderAlertmanagerConfig(site, { webhookToken: opts.webhookToken }) },
    dhcp: { pools: renderPools(site, plan, model) },
    "log-collector": { "syslog-ng.conf": renderSyslogNg(site, plan), "ulogd.conf": renderUlogd(site) },
    flows: { "nfacctd.conf": renderNfacctd(site), links: renderFlowLinks(plan) },
    grafana: grafanaProvisioning(plan),
    "grafana-dashboards": Object.fromEntries(renderDashboards(site, plan)),
    ...(site.routing.bgp ? { bgp: { "bgp-neighbours": bgpNeighboursFile(site) } } : {}),
  };
  const artifacts: Record<string, string> = { "observability/runbook.md": renderRunbook(site, plan) };
  for (const [role, files] of Object.entries(configMaps))
    for (const [file, content] of Object.entries(files))
      artifacts[role === "grafana-dashboards" ? `observability/dashboards/${file}` : `observability/${file}`] = content;
  return { configMaps, artifacts };
}

/** The BGP collector's neighbours (router:routing.bgp.neighbors): "<address> <AS> <1 with BFD, else 0>" per line. */
export function bgpNeighboursFile(site: Site): string {
  return (site.routing.bgp?.neighbors ?? []).map((n) => `${n.address} ${n.asn} ${n.bfd ? 1 : 0}\n`).join("");
}
