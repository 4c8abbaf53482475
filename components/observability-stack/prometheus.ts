/**
 * The router's TSDB: Prometheus (Debian's build, in our observability image) scraping every job of targets.ts,
 * evaluating the alert rules of alerts.ts, sending alerts to Alertmanager and, for a fleet, every sample to a
 * central TSDB. Retention and memory come from the site. Pure; `promtool check config` checks the output.
 */
import { stringify } from "yaml";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { durationSeconds } from "../site/duration";
import { OBSERVABILITY_PORTS } from "../site/schema-observability";
import { SA_DIR, hostPort, type ScrapeJob } from "./targets";

export const PROMETHEUS_CONFIG_DIR = "/etc/prometheus";
export const PROMETHEUS_CONFIG = `${PROMETHEUS_CONFIG_DIR}/config/prometheus.yml`;
export const PROMETHEUS_RULES = `${PROMETHEUS_CONFIG_DIR}/rules/router.rules.yml`;
export const PROMETHEUS_DATA = "/prometheus";
/** Directory of the Secret holding the remote-write password (a file Prometheus reads, never inline). */
export const PROMETHEUS_SECRETS = "/etc/prometheus/secrets";
export const REMOTE_WRITE_PASSWORD_FILE = `${PROMETHEUS_SECRETS}/remote-write-password`;

function scrapeConfig(j: ScrapeJob): Record<string, unknown> {
  return {
    job_name: j.job,
    ...(j.scheme === "https" ? { scheme: "https" } : {}),
    ...(j.metricsPath ? { metrics_path: j.metricsPath } : {}),
    ...(j.serviceAccount ? { authorization: { type: "Bearer", credentials_file: `${SA_DIR}/token` } } : {}),
    ...(j.scheme === "https"
      ? {
          tls_config: j.insecureLocal
            ? // The kubelet's serving certificate is self-signed on Talos; the target is 127.0.0.1 only.
              { insecure_skip_verify: true }
            : { ca_file: `${SA_DIR}/ca.crt` },
        }
      : {}),
    static_configs: [{ targets: j.targets, labels: { runs: j.runs } }],
  };
}

/** prometheus.yml. */
export function renderPrometheusConfig(site: Site, plan: SitePlan, jobs: readonly ScrapeJob[]): string {
  const o = site.observability;
  const rw = o.remoteWrite;
  const config = {
    global: {
      scrape_interval: o.scrapeInterval,
      evaluation_interval: o.scrapeInterval,
      scrape_timeout: `${Math.min(10, durationSeconds(o.scrapeInterval))}s`,
      // Every series names the site and router it came from, so a fleet's central TSDB keeps them apart.
      external_labels: { site: site.site.name, router: plan.hostname },
    },
    rule_files: [PROMETHEUS_RULES],
    alerting: {
      alertmanagers: [
        { static_configs: [{ targets: [hostPort(plan.managementAddress, OBSERVABILITY_PORTS.alertmanager)] }] },
      ],
    },
    scrape_configs: jobs.map(scrapeConfig),
    ...(rw
      ? {
          remote_write: [
            {
              url: rw.url,
              ...(rw.username
                ? { basic_auth: { username: rw.username, password_file: REMOTE_WRITE_PASSWORD_FILE } }
                : {}),
              // Bounded queue: an unreachable central TSDB costs at most this much memory on the router.
              queue_config: { capacity: 2500, max_shards: 4, max_samples_per_send: 1000 },
            },
          ],
        }
      : {}),
  };
  return `# Prometheus of site ${site.site.name} (rendered)\n${stringify(config, { sortMapEntries: false })}`;
}

/** Prometheus' command line. */
export function prometheusArgs(site: Site, plan: SitePlan): string[] {
  const o = site.observability;
  return [
    `--config.file=${PROMETHEUS_CONFIG}`,
    `--storage.tsdb.path=${PROMETHEUS_DATA}`,
    `--storage.tsdb.retention.time=${o.retention}`,
    `--storage.tsdb.retention.size=${o.retentionSizeGiB}GB`,
    `--web.listen-address=${hostPort(plan.managementAddress, OBSERVABILITY_PORTS.prometheus)}`,
    // Compressing the write-ahead log halves its disk and page-cache footprint for a little CPU.
    "--storage.tsdb.wal-compression",
  ];
}
