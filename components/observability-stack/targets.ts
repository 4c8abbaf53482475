/**
 * What the router's TSDB scrapes: one job per thing the appliance runs. Jobs of this stack's own collectors, the
 * data-plane loader, Cilium/Hubble and the Kubernetes components are planned here; other layers (DNS, IDS) add
 * theirs as a ScrapeContribution, the way they add rules to the ruleset. Pure.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { OBSERVABILITY_PORTS } from "../site/schema-observability";

/** Where the Kubernetes service-account credentials of the Prometheus pod are mounted. */
export const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface ScrapeJob {
  /** Prometheus job name (the `job` label). */
  job: string;
  /** What it measures (the summary's line). */
  what: string;
  /** host:port of each target. */
  targets: string[];
  scheme?: "http" | "https";
  metricsPath?: string;
  /**
   * Where the job's process runs: `router` jobs run on the host or as pods of the render (the virtual appliance
   * runs them too), `cluster` jobs are Kubernetes and Cilium components (only on a real node).
   */
  runs: "router" | "cluster";
  /** Authenticate with the pod's service-account token (Kubernetes components). */
  serviceAccount?: boolean;
  /**
   * Skip verifying the serving certificate: only for a component on 127.0.0.1 that serves a self-signed one (the
   * kubelet), where the connection never leaves the host.
   */
  insecureLocal?: boolean;
}

/** Scrape jobs another layer adds (e.g. the DNS stack's dnsdist and statistics collector). */
export interface ScrapeContribution {
  /** Who adds them. */
  by: string;
  jobs: ScrapeJob[];
}

/** host:port with IPv6 literals bracketed. */
export function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Cilium's metrics ports (chart defaults: agent 9962, operator 9963, Hubble 9965). */
export const CILIUM_PORTS = { agent: 9962, operator: 9963, hubble: 9965 } as const;

/** Every scrape job of the site, contributions included, sorted by job name. */
export function scrapeJobs(site: Site, plan: SitePlan, contributions: readonly ScrapeContribution[] = []): ScrapeJob[] {
  const mgmt = plan.managementAddress;
  const P = OBSERVABILITY_PORTS;
  const jobs: ScrapeJob[] = [
    { job: "prometheus", what: "the TSDB itself", targets: [hostPort(mgmt, P.prometheus)], runs: "router" },
    { job: "alertmanager", what: "alert delivery", targets: [hostPort(mgmt, P.alertmanager)], runs: "router" },
    {
      job: "node",
      what: `the node (CPU, memory, disks, links), conntrack, the clock; Kea pools and leases${site.ids.enabled ? ", the IDS's alert and drop counts (router_ids_*)" : ""}${site.routing.bgp ? ", the BGP sessions and their BFD as Talos reports them (router_bgp_*, through the Talos API with an os:reader service account)" : ""}${site.routing.ospf ? ", the OSPF neighbours as BIRD reports them (router_ospf_*, from the bird pod's status file)" : ""} and the top talkers through its textfile collector`,
      targets: [hostPort(mgmt, P.nodeExporter)],
      runs: "router",
    },
    { job: "logs", what: "the log store", targets: [hostPort(mgmt, P.logs)], runs: "router" },
    { job: "dashboards", what: "Grafana", targets: [hostPort(mgmt, P.dashboards)], runs: "cluster" },
    {
      job: "kubelet",
      what: "the kubelet",
      targets: ["127.0.0.1:10250"],
      scheme: "https",
      runs: "cluster",
      serviceAccount: true,
      insecureLocal: true,
    },
    {
      job: "cadvisor",
      what: "every container's CPU and memory (the kubelet's cAdvisor)",
      targets: ["127.0.0.1:10250"],
      scheme: "https",
      metricsPath: "/metrics/cadvisor",
      runs: "cluster",
      serviceAccount: true,
      insecureLocal: true,
    },
    {
      job: "apiserver",
      what: "the Kubernetes API server",
      targets: ["127.0.0.1:6443"],
      scheme: "https",
      runs: "cluster",
      serviceAccount: true,
    },
  ];
  if (site.dataplane.enabled)
    jobs.push({
      job: "dataplane",
      what: "the data-plane loader (XDP guard, tables, multi-WAN, ruleset loads)",
      targets: [hostPort(mgmt, site.dataplane.metricsPort)],
      runs: "router",
    });
  jobs.push(
    { job: "cilium-agent", what: "Cilium", targets: [hostPort(mgmt, CILIUM_PORTS.agent)], runs: "cluster" },
    {
      job: "cilium-operator",
      what: "Cilium's operator",
      targets: [hostPort(mgmt, CILIUM_PORTS.operator)],
      runs: "cluster",
    },
  );
  if (site.cilium.hubble.enabled && site.cilium.hubble.metrics.length)
    jobs.push({
      job: "hubble",
      what: "Hubble flow metrics of the pods",
      targets: [hostPort(mgmt, CILIUM_PORTS.hubble)],
      runs: "cluster",
    });
  for (const c of contributions) jobs.push(...c.jobs);
  const seen = new Set<string>();
  for (const j of jobs) {
    if (seen.has(j.job)) throw new Error(`two scrape jobs are named ${j.job}`);
    seen.add(j.job);
  }
  return jobs.sort((a, b) => a.job.localeCompare(b.job));
}
