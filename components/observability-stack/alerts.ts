/**
 * The router's alert rules, generated from the site: every rule has a severity, a summary, a description and a
 * runbook line (what to check first), and a `promtool test rules` case in test/observability/. Thresholds come
 * from router:observability.alerts.thresholds. Pure.
 */
import { stringify } from "yaml";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { durationSeconds } from "../site/duration";
import { OSPF_DEAD_S, OSPF_HELLO_S } from "../network-services/bird";
import { BIRD_SOCKET } from "../network-services/k8s";

export interface AlertRule {
  alert: string;
  expr: string;
  /** How long the condition must hold before the alert fires. */
  for: string;
  severity: "critical" | "warning";
  summary: string;
  description: string;
  /** One line: what an operator checks or does first. */
  runbook: string;
}

/** Filesystems that are not the box's disks. */
const PSEUDO_FS = "tmpfs|ramfs|overlay|squashfs|nsfs|proc|sysfs|cgroup2?|devtmpfs|bpf|tracefs|fuse.*";

function wanRules(plan: SitePlan): AlertRule[] {
  const primary = [...plan.wans].sort((a, b) => a.priority - b.priority)[0];
  const rules: AlertRule[] = [
    {
      alert: "WanDown",
      expr: "router_dataplane_wan_up == 0",
      for: "30s",
      severity: "warning",
      summary: "WAN {{ $labels.wan }} is down",
      description: "The loader's probes through WAN {{ $labels.wan }} get no answer (or it has no default route).",
      runbook:
        "Check the uplink's carrier and lease (talosctl get addresses, links) and the probe targets; the ISP's modem next.",
    },
    {
      alert: "AllWansDown",
      expr: "sum(router_dataplane_wan_up) == 0",
      for: "30s",
      severity: "critical",
      summary: "Every WAN is down",
      description: "No uplink answers its probes: the site is offline.",
      runbook: "Check every uplink's carrier and the ISPs' status; the LAN still works, the internet does not.",
    },
  ];
  if (plan.wans.length > 1 && primary)
    rules.push({
      alert: "WanFailedOver",
      expr: `router_dataplane_wan_active{wan="${primary.name}"} == 0 and on() sum(router_dataplane_wan_active) > 0`,
      for: "0s",
      severity: "warning",
      summary: `New connections leave through a backup WAN, not ${primary.name}`,
      description: `The preferred WAN ${primary.name} is not active; the loader failed over to another uplink.`,
      runbook: `Find why ${primary.name} is down (WanDown says since when); failback is automatic once its probes answer.`,
    });
  return rules;
}

function dataplaneRules(site: Site): AlertRule[] {
  if (!site.dataplane.enabled) return [];
  return [
    {
      alert: "DataplaneLoaderDown",
      expr: 'up{job="dataplane"} == 0',
      for: "1m",
      severity: "critical",
      summary: "The data-plane loader does not answer",
      description: "Its metrics endpoint is unreachable: the extension service may have stopped.",
      runbook: "talosctl service ext-router-dataplane; talosctl logs ext-router-dataplane.",
    },
    {
      alert: "RulesetLoadRejected",
      expr: "increase(router_dataplane_reload_failures_total[15m]) > 0",
      for: "0s",
      severity: "critical",
      summary: "A {{ $labels.kind }} load was rejected",
      description: "The loader refused a new {{ $labels.kind }} and keeps the previous one in force.",
      runbook:
        "Read the loader's log for the rejected file and line; re-render and check it (npm run render, nft -c) before the next apply.",
    },
    {
      alert: "RulesetFallback",
      expr: "router_dataplane_ruleset_fallback == 1",
      for: "0s",
      severity: "critical",
      summary: "The built-in fail-closed ruleset is in force",
      description:
        "The configured ruleset was refused at start: only management reaches the router, nothing is forwarded.",
      runbook: "Read the loader's log for why nftables refused the ruleset; fix and apply the configuration again.",
    },
    {
      alert: "DataplaneDegraded",
      expr: "router_dataplane_degraded == 1",
      for: "1m",
      severity: "warning",
      summary: "The data plane runs degraded ({{ $labels.reason }})",
      description: "The firewall is still on, but part of the data plane ({{ $labels.reason }}) failed: see /health.",
      runbook:
        "curl the loader's /health on the management address; the reason says whether BPF, an attach or a link failed.",
    },
    {
      alert: "StaleRoutesNotRemoved",
      expr: "increase(router_dataplane_stale_route_failures_total[5m]) > 0",
      for: "10m",
      severity: "warning",
      summary: "Routes of a routing daemon the site no longer runs stay in the kernel",
      description:
        "The loader keeps failing to list or delete them (it tries every 10 s): traffic may follow routes nothing maintains.",
      runbook:
        "Read the loader's stale_route_failed / stale_routes log lines for the route and the kernel's reason; ip route show proto bird (and 249, ospf); delete them by hand if need be.",
    },
    {
      alert: "XdpDropStorm",
      expr: `sum by (reason) (rate(router_dataplane_drop_packets_total[5m])) > ${site.observability.alerts.thresholds.xdpDropsPerSecond}`,
      for: "2m",
      severity: "warning",
      summary: "The XDP guard drops {{ $value | humanize }} packets/s ({{ $labels.reason }})",
      description: "A drop rate this high is an attack or a misconfigured list; the guard is holding it off the stack.",
      runbook:
        "Check the reason: ratelimit_* is a flood (find the sources in the drop logs), blocklist/geoip a list change; tell the ISP if the uplink saturates.",
    },
  ];
}

function serviceRules(site: Site): AlertRule[] {
  const t = site.observability.alerts.thresholds;
  return [
    {
      alert: "DhcpPoolNearlyFull",
      expr: `router_dhcp_pool_used_addresses / router_dhcp_pool_addresses * 100 >= ${t.dhcpPoolPercent}`,
      for: "1m",
      severity: "warning",
      summary: "DHCP pool of segment {{ $labels.segment }} is {{ $value | humanize }}% used",
      description: `At or above ${t.dhcpPoolPercent}% of the pool is leased; new clients will get no address once it is full.`,
      runbook:
        "Look for a flood of new clients or declines (router_dhcp_declined_addresses); widen the pool or shorten the lease time.",
    },
    {
      alert: "ConntrackNearlyFull",
      expr: `node_nf_conntrack_entries / node_nf_conntrack_entries_limit * 100 >= ${t.conntrackPercent}`,
      for: "2m",
      severity: "warning",
      summary: "Connection tracking is {{ $value | humanize }}% full",
      description: "When the table is full, new connections through the router are dropped.",
      runbook: "Find the top talkers (the flows dashboard); raise net.netfilter.nf_conntrack_max if the load is real.",
    },
    {
      alert: "DnsServfailRate",
      expr: `sum(rate(router_dns_servfail_total[5m])) / sum(rate(router_dns_queries_total[5m])) * 100 > ${t.dnsServfailPercent}`,
      for: "5m",
      severity: "warning",
      summary: "{{ $value | humanize }}% of DNS answers are SERVFAIL",
      description: "Upstream resolution or DNSSEC validation is failing for many names.",
      runbook: "Check the upstreams' reachability over the active WAN and the resolver's log for DNSSEC failures.",
    },
  ];
}

function hostRules(site: Site): AlertRule[] {
  const t = site.observability.alerts.thresholds;
  return [
    {
      alert: "DiskPressure",
      expr: `(1 - node_filesystem_avail_bytes{fstype!~"${PSEUDO_FS}"} / node_filesystem_size_bytes{fstype!~"${PSEUDO_FS}"}) * 100 >= ${t.diskPercent}`,
      for: "10m",
      severity: "warning",
      summary: "{{ $labels.mountpoint }} is {{ $value | humanize }}% full",
      description: "The disk holding the TSDB, logs and leases is filling up.",
      runbook: "Lower router:observability retention or retentionSizeGiB; look for a log flood in the log store.",
    },
    {
      alert: "MemoryPressure",
      expr: `(1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) * 100 >= ${t.memoryPercent}`,
      for: "10m",
      severity: "warning",
      summary: "Memory is {{ $value | humanize }}% used",
      description: "The box is close to the OOM killer.",
      runbook: "Find the largest containers (the cadvisor job's container_memory_working_set_bytes) and their limits.",
    },
    {
      alert: "ClockUnsynchronised",
      expr: "node_timex_sync_status == 0 or abs(node_timex_offset_seconds) > 0.5",
      for: "10m",
      severity: "warning",
      summary: "The router's clock is not synchronised",
      description: "Talos' time sync has no good source: certificates, logs and DHCP lease times drift.",
      runbook: "talosctl time; check that the NTP servers of router:ntp answer through the active WAN.",
    },
    {
      alert: "CertificateExpiry",
      expr: `min by (job) (kubelet_certificate_manager_client_ttl_seconds or kubelet_certificate_manager_server_ttl_seconds) < ${t.certificateDays * 86400}`,
      for: "0s",
      severity: "warning",
      summary: "A certificate of {{ $labels.job }} expires in {{ $value | humanizeDuration }}",
      description: `A certificate expires within ${t.certificateDays} days and has not been renewed.`,
      runbook:
        "talosctl get certificates; a kubelet certificate renews itself, so a short TTL means the renewal fails.",
    },
    {
      alert: "TargetDown",
      expr: "up == 0",
      for: "5m",
      severity: "warning",
      summary: "Scrape target {{ $labels.job }} ({{ $labels.instance }}) is down",
      description: "Its metrics are missing, so its alerts cannot fire.",
      runbook: "kubectl -n router-system get pods, or talosctl service for host services; the target's log says why.",
    },
  ];
}

/** The IDS's rules (its metrics agent's counters, images/ids/router-ids-metrics), when the IDS stack runs. */
function idsRules(site: Site): AlertRule[] {
  if (!site.ids.enabled) return [];
  const t = site.observability.alerts.thresholds;
  return [
    {
      alert: "IdsAlertBurst",
      expr: `sum by (process) (rate(router_ids_alerts_total[5m])) * 60 > ${t.idsAlertsPerMinute}`,
      for: "5m",
      severity: "warning",
      summary: "Suricata ({{ $labels.process }}) raises {{ $value | humanize }} alerts a minute",
      description: `More than ${t.idsAlertsPerMinute} IDS alerts a minute for 5 minutes: an attack in progress or a noisy rule.`,
      runbook:
        "Query the log store for source:ids event_type:alert and group by alert.signature_id and src_ip; block the source or threshold the rule (router:ids.rules.thresholds).",
    },
    {
      alert: "IdsCaptureDrops",
      expr:
        "sum by (process) (rate(router_ids_capture_kernel_drops_total[5m])) / sum by (process) " +
        `(rate(router_ids_capture_kernel_packets_total[5m])) * 100 > ${t.idsCaptureDropPercent}`,
      for: "5m",
      severity: "warning",
      summary: "Suricata ({{ $labels.process }}) misses {{ $value | humanize }}% of the captured packets",
      description: `The kernel drops more than ${t.idsCaptureDropPercent}% of the watched links' packets before Suricata reads them: those go uninspected.`,
      runbook:
        "Check Suricata's CPU (the cadvisor job) and router:ids.cpu (threadsPerLink, workerCpus); a traffic peak beyond the box's inspection rate needs more threads or fewer watched links.",
    },
    {
      alert: "IdsStatsMissing",
      expr: "time() - router_ids_stats_timestamp_seconds > 60",
      for: "2m",
      severity: "warning",
      summary: "Suricata ({{ $labels.process }}) has not reported for {{ $value | humanizeDuration }}",
      description: "Its stats stopped: the process is down or stuck, and its alerts and drops are not counted.",
      runbook:
        "kubectl -n router-system logs ds/router-ids -c suricata-{{ $labels.process }}; the pod's restarts say whether it crashes.",
    },
    ...(site.ids.ips.pairs.length ? inlineRules() : []),
  ];
}

/** The inline queues' rules (the agent's router_ids_queue_* from the kernel's queue table), when IPS is on. */
function inlineRules(): AlertRule[] {
  return [
    {
      alert: "IdsInlineBypassed",
      expr: "router_ids_queue_listening == 0",
      for: "1m",
      severity: "critical",
      summary: "No Suricata listens on inline queue {{ $labels.queue }}: its traffic passes uninspected",
      description:
        "The queue rule's bypass flag keeps the inline zone pairs' traffic flowing while Suricata is down, without inspection or blocking; the kernel counts none of those packets.",
      runbook:
        "kubectl -n router-system logs ds/router-ids -c suricata-ips (and its restarts); the queues it binds are its -q arguments, the rule's are router:ids.ips.firstQueue and queues.",
    },
    {
      alert: "IdsQueueDrops",
      expr: "sum by (queue, reason) (increase(router_ids_queue_dropped_total[5m])) > 0",
      for: "0s",
      severity: "warning",
      summary: "Inline queue {{ $labels.queue }} dropped {{ $value | humanize }} packets ({{ $labels.reason }})",
      description:
        "Suricata did not keep up with the inline traffic: the queue (reason full) or its socket (reason socket) was full, and the kernel dropped those packets rather than pass them uninspected.",
      runbook:
        "Check suricata-ips's CPU (the cadvisor job) and router:ids.ips.queues; fewer inline zone pairs or more queues spread the load.",
    },
    {
      alert: "IdsQueueTableUnreadable",
      expr: "router_ids_queue_table_readable == 0",
      for: "5m",
      severity: "warning",
      summary: "The IDS metrics agent cannot read the kernel's inline queue table",
      description: "Whether Suricata listens on the inline queues is unknown, so a bypass would not be alerted.",
      runbook:
        "kubectl -n router-system logs ds/router-ids -c metrics; the agent reads /proc/net/netfilter/nfnetlink_queue.",
    },
  ];
}

/** BGP sessions (Talos' BGP, read by the node exporter's BGP collector): only on a site with BGP. */
function bgpRules(site: Site): AlertRule[] {
  if (!site.routing.bgp) return [];
  return [
    {
      alert: "BgpSessionDown",
      expr: "router_bgp_session_established == 0",
      for: "2m",
      severity: "warning",
      summary: "BGP session with {{ $labels.neighbour }} (AS {{ $labels.asn }}) is down",
      description:
        "Talos reports the session with the neighbour {{ $labels.neighbour }} as not established: the routes it sent are gone.",
      runbook:
        "talosctl get bgppeerstatuses (state, since); then the neighbour's side: reachability, its AS and this router's AS on both ends.",
    },
    {
      alert: "BgpBfdDown",
      expr: "router_bgp_bfd_up == 0 and on(neighbour, asn) router_bgp_session_established == 1",
      for: "1m",
      severity: "warning",
      summary: "BGP with {{ $labels.neighbour }} is up but its BFD session is not",
      description:
        "A failure of the neighbour {{ $labels.neighbour }} is now noticed only when the BGP hold timer runs out, not within BFD's detection time.",
      runbook:
        "talosctl get bgppeerstatuses (bfdState); stuck in init: the neighbour must run BFD as a session of its own (README, The network layer).",
    },
    {
      alert: "BgpStatusUnreadable",
      expr: "router_bgp_status_readable == 0 or (time() - router_bgp_metrics_timestamp_seconds) > 300",
      for: "5m",
      severity: "warning",
      summary: "The BGP sessions cannot be read",
      description:
        "The BGP collector gets no answer from the Talos API (or has stopped): the BGP alerts are blind meanwhile.",
      runbook:
        "kubectl -n router-observability logs ds/node-exporter -c bgp-metrics; the Talos ServiceAccount bgp-metrics and its Secret.",
    },
  ];
}

/**
 * OSPF neighbours (BIRD's, from the bird pod's status file, read by the node exporter's OSPF collector): only on a
 * site with OSPF. While the status is unreadable or stale the collector writes no neighbour, and the neighbour rules
 * stay quiet (unknown is not lost): OspfStatusUnreadable says so instead.
 */
function ospfRules(site: Site): AlertRule[] {
  if (!site.routing.ospf) return [];
  const neighbour = "router_id, interface, address";
  const birdc = `kubectl -n router-system exec ds/bird -c bird -- birdc -s ${BIRD_SOCKET} show ospf neighbors`;
  return [
    {
      alert: "OspfNeighbourLost",
      // Full within the last 30 minutes, and now listed in another state or not at all (BIRD declared it dead).
      expr:
        `max_over_time(router_ospf_neighbour_full[30m]) == 1 unless on(${neighbour}) router_ospf_neighbour_full == 1 ` +
        "and on(instance) router_ospf_status_readable == 1",
      for: "1m",
      severity: "warning",
      summary: "OSPF neighbour {{ $labels.router_id }} on {{ $labels.interface }} is no longer Full",
      description:
        "BIRD's adjacency with {{ $labels.router_id }} ({{ $labels.address }}) on {{ $labels.interface }} was Full and is not now, or BIRD declared the neighbour dead: the routes it advertised are gone. The alert ends 30 minutes after the neighbour was last Full.",
      runbook: `kubectl -n router-system logs ds/bird -c ospf-status; ${birdc} (state, dead timer); then the link, the neighbour's area and timers, whether a firewall change drops OSPF (IP protocol 89) on that interface, and whether the OSPF key changed (the ospf-status log says when BIRD read new keys; BIRD's log names a neighbour whose packets fail authentication) without the neighbour changing with it — docs/operations.md, "Change the OSPF key".`,
    },
    {
      alert: "OspfNeighbourSilent",
      // A neighbour that stops saying hello stays Full until the dead interval ends it, then is gone: the
      // lost hellos show only as its hello age, sampled. Any age above two hello intervals in the last 5 minutes
      // while it is still Full a minute later: a lossy or flapping link (a flap that ends the adjacency for good is
      // OspfNeighbourLost's).
      expr: `max_over_time(router_ospf_neighbour_hello_age_seconds[5m]) > ${2 * OSPF_HELLO_S} and on(${neighbour}) router_ospf_neighbour_full == 1`,
      for: "1m",
      severity: "warning",
      summary:
        "OSPF neighbour {{ $labels.router_id }} on {{ $labels.interface }} is Full but its hellos are being lost",
      description: `BIRD went more than ${2 * OSPF_HELLO_S} s (two hello intervals) without a hello from {{ $labels.router_id }} on {{ $labels.interface }} in the last 5 minutes, yet holds the adjacency Full: a lossy or flapping link, or something dropping some of its OSPF packets. Should no hello arrive for ${OSPF_DEAD_S} s, BIRD ends the adjacency and its routes.`,
      runbook: `${birdc} (its dead timer should stay within ${OSPF_DEAD_S - OSPF_HELLO_S}–${OSPF_DEAD_S} s); the link's errors and drops (node_network_*), then the neighbour's side and the firewall's OSPF (IP protocol 89) on {{ $labels.interface }}.`,
    },
    ...(site.routing.ospf.authentication
      ? [
          {
            alert: "OspfKeysReverted",
            expr: "router_ospf_keys_reverted == 1",
            for: "0m",
            severity: "critical" as const,
            summary: "BIRD runs the previous OSPF keys: the new ones failed their trial",
            description:
              "The bird Secret holds new OSPF keys, but a neighbour held Full before the change was not heard with them, or left Full, so the status container brought the previous keys back (or BIRD refused the file). The router still speaks the previous keys; a restart of the bird pod would start it on the Secret's new ones, and lose those neighbours.",
            runbook:
              'kubectl -n router-system logs ds/bird -c ospf-status (which neighbour, and why); give that neighbour the key first (docs/operations.md, "Change the OSPF key"), or set router:ospfKey back and run pulumi up.',
          },
        ]
      : []),
    {
      alert: "OspfStatusUnreadable",
      expr:
        "router_ospf_status_readable == 0 or (time() - router_ospf_metrics_timestamp_seconds) > 300 " +
        "or absent(router_ospf_metrics_timestamp_seconds)",
      for: "5m",
      severity: "warning",
      summary: "The OSPF neighbours cannot be read",
      description:
        "The bird pod's status is missing, stale or says BIRD does not answer, or the OSPF collector has stopped: the OSPF alerts are blind meanwhile.",
      runbook:
        "kubectl -n router-system logs ds/bird -c ospf-status and -c bird; kubectl -n router-observability logs ds/node-exporter -c ospf-metrics says why it finds the status unusable.",
    },
  ];
}

/** Every alert rule of the site, in a stable order. */
export function alertRules(site: Site, plan: SitePlan): AlertRule[] {
  return [
    ...wanRules(plan),
    ...dataplaneRules(site),
    ...serviceRules(site),
    ...hostRules(site),
    ...idsRules(site),
    ...bgpRules(site),
    ...ospfRules(site),
  ];
}

/** The rule file Prometheus loads (`promtool check rules` checks it). */
export function renderRuleFile(site: Site, plan: SitePlan): string {
  const interval = `${durationSeconds(site.observability.scrapeInterval)}s`;
  const rules = alertRules(site, plan).map((r) => ({
    alert: r.alert,
    expr: r.expr,
    for: r.for,
    labels: { severity: r.severity },
    annotations: { summary: r.summary, description: r.description, runbook: r.runbook },
  }));
  return `# Alert rules of site ${site.site.name} (rendered from components/observability-stack/alerts.ts)\n${stringify(
    {
      groups: [{ name: "router", interval, rules }],
    },
  )}`;
}

/** The runbook as Markdown: one line per alert. */
export function renderRunbook(site: Site, plan: SitePlan): string {
  const rows = alertRules(site, plan).map((r) => `| ${r.alert} | ${r.severity} | ${r.description} | ${r.runbook} |`);
  return [
    `# Alerts of site ${site.site.name}: runbook`,
    "",
    "| alert | severity | means | first step |",
    "|---|---|---|---|",
    ...rows.map((r) => r.replace(/\{\{[^}]*\}\}/g, "…")),
    "",
  ].join("\n");
}
