/**
 * `promtool test rules` for every alert rule of the dev site: each case feeds series and says which alerts must be
 * firing at a time (and that none fires on healthy input). Expectations are written here by hand from what an
 * operator must hear, not derived from the rules. Annotations are text: they are stripped before the test, so a
 * case compares the alert's name and labels.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { renderRuleFile } from "../../components/observability-stack/alerts";

type Alert = Record<string, string>;
interface Case {
  alert: string;
  series: Record<string, string>;
  at: string;
  /** Labels of each firing alert (severity included); [] = must not fire. */
  fires: Alert[];
}

const W = "warning";
const OSPF_NEIGHBOUR = { router_id: "10.50.0.254", interface: "lan0.50", address: "10.50.0.254" };
const OSPF_LABELS = 'router_id="10.50.0.254",interface="lan0.50",address="10.50.0.254"';
const OSPF_FULL = `router_ospf_neighbour_full{${OSPF_LABELS}}`;
const OSPF_AGE = `router_ospf_neighbour_hello_age_seconds{${OSPF_LABELS}}`;
const C = "critical";
const CASES: Case[] = [
  {
    alert: "WanDown",
    series: { 'router_dataplane_wan_up{wan="wan0"}': "1 0x10" },
    at: "2m",
    fires: [{ severity: W, wan: "wan0" }],
  },
  { alert: "WanDown", series: { 'router_dataplane_wan_up{wan="wan0"}': "1 1 0 1x10" }, at: "2m", fires: [] },
  {
    alert: "AllWansDown",
    series: { 'router_dataplane_wan_up{wan="wan0"}': "0x10", 'router_dataplane_wan_up{wan="wan1"}': "0x10" },
    at: "2m",
    fires: [{ severity: C }],
  },
  {
    alert: "AllWansDown",
    series: { 'router_dataplane_wan_up{wan="wan0"}': "0x10", 'router_dataplane_wan_up{wan="wan1"}': "1x10" },
    at: "2m",
    fires: [],
  },
  {
    alert: "WanFailedOver",
    series: {
      'router_dataplane_wan_active{wan="wan0"}': "1 0x10",
      'router_dataplane_wan_active{wan="wan1"}': "0 1x10",
    },
    at: "1m",
    fires: [{ severity: W, wan: "wan0" }],
  },
  {
    alert: "WanFailedOver",
    series: { 'router_dataplane_wan_active{wan="wan0"}': "0x10", 'router_dataplane_wan_active{wan="wan1"}': "0x10" },
    at: "1m",
    fires: [],
  },
  {
    alert: "DataplaneLoaderDown",
    series: { 'up{job="dataplane",instance="r:9430"}': "0x10" },
    at: "2m",
    fires: [{ severity: C, job: "dataplane", instance: "r:9430" }],
  },
  { alert: "DataplaneLoaderDown", series: { 'up{job="dataplane",instance="r:9430"}': "1x10" }, at: "2m", fires: [] },
  {
    alert: "RulesetLoadRejected",
    series: { 'router_dataplane_reload_failures_total{kind="nftables"}': "0 0 1 1 1" },
    at: "1m",
    fires: [{ severity: C, kind: "nftables" }],
  },
  {
    alert: "RulesetLoadRejected",
    series: { 'router_dataplane_reload_failures_total{kind="nftables"}': "2x10" },
    at: "1m",
    fires: [],
  },
  {
    alert: "RulesetFallback",
    series: { router_dataplane_ruleset_fallback: "1x4" },
    at: "30s",
    fires: [{ severity: C }],
  },
  { alert: "RulesetFallback", series: { router_dataplane_ruleset_fallback: "0x4" }, at: "30s", fires: [] },
  {
    alert: "DataplaneDegraded",
    series: { 'router_dataplane_degraded{reason="bpf"}': "1x10" },
    at: "2m",
    fires: [{ severity: W, reason: "bpf" }],
  },
  { alert: "DataplaneDegraded", series: { 'router_dataplane_degraded{reason="bpf"}': "0x10" }, at: "2m", fires: [] },
  {
    alert: "StaleRoutesNotRemoved",
    // a failed sweep every 10 s for 15 minutes (one more per 15 s step)
    series: { router_dataplane_stale_route_failures_total: "0+1x60" },
    at: "12m",
    fires: [{ severity: W }],
  },
  {
    alert: "StaleRoutesNotRemoved",
    // one failed sweep, then the routes went: it never lasts the 10 minutes
    series: { router_dataplane_stale_route_failures_total: "0 1x60" },
    at: "12m",
    fires: [],
  },
  {
    alert: "XdpDropStorm",
    // 6,000 packets/s = 90,000 per 15 s step.
    series: { 'router_dataplane_drop_packets_total{reason="ratelimit_syn"}': "0+90000x40" },
    at: "9m",
    fires: [{ severity: W, reason: "ratelimit_syn" }],
  },
  {
    alert: "XdpDropStorm",
    series: { 'router_dataplane_drop_packets_total{reason="ratelimit_syn"}': "0+1500x40" },
    at: "9m",
    fires: [],
  },
  {
    alert: "DhcpPoolNearlyFull",
    series: {
      'router_dhcp_pool_used_addresses{segment="guest"}': "91x10",
      'router_dhcp_pool_addresses{segment="guest"}': "100x10",
    },
    at: "2m",
    fires: [{ severity: W, segment: "guest" }],
  },
  {
    alert: "DhcpPoolNearlyFull",
    series: {
      'router_dhcp_pool_used_addresses{segment="guest"}': "89x10",
      'router_dhcp_pool_addresses{segment="guest"}': "100x10",
    },
    at: "2m",
    fires: [],
  },
  {
    alert: "ConntrackNearlyFull",
    series: { node_nf_conntrack_entries: "850x20", node_nf_conntrack_entries_limit: "1000x20" },
    at: "4m",
    fires: [{ severity: W }],
  },
  {
    alert: "ConntrackNearlyFull",
    series: { node_nf_conntrack_entries: "500x20", node_nf_conntrack_entries_limit: "1000x20" },
    at: "4m",
    fires: [],
  },
  {
    alert: "DnsServfailRate",
    series: { router_dns_servfail_total: "0+10x60", router_dns_queries_total: "0+100x60" },
    at: "12m",
    fires: [{ severity: W }],
  },
  {
    alert: "DnsServfailRate",
    series: { router_dns_servfail_total: "0+1x60", router_dns_queries_total: "0+100x60" },
    at: "12m",
    fires: [],
  },
  {
    alert: "DiskPressure",
    series: {
      'node_filesystem_avail_bytes{fstype="xfs",mountpoint="/var"}': "10x60",
      'node_filesystem_size_bytes{fstype="xfs",mountpoint="/var"}': "100x60",
      'node_filesystem_avail_bytes{fstype="tmpfs",mountpoint="/run"}': "0x60",
      'node_filesystem_size_bytes{fstype="tmpfs",mountpoint="/run"}': "100x60",
    },
    at: "12m",
    fires: [{ severity: W, fstype: "xfs", mountpoint: "/var" }],
  },
  {
    alert: "DiskPressure",
    series: {
      'node_filesystem_avail_bytes{fstype="xfs",mountpoint="/var"}': "50x60",
      'node_filesystem_size_bytes{fstype="xfs",mountpoint="/var"}': "100x60",
    },
    at: "12m",
    fires: [],
  },
  {
    alert: "MemoryPressure",
    series: { node_memory_MemAvailable_bytes: "5x60", node_memory_MemTotal_bytes: "100x60" },
    at: "12m",
    fires: [{ severity: W }],
  },
  {
    alert: "MemoryPressure",
    series: { node_memory_MemAvailable_bytes: "50x60", node_memory_MemTotal_bytes: "100x60" },
    at: "12m",
    fires: [],
  },
  {
    alert: "ClockUnsynchronised",
    series: { node_timex_sync_status: "0x60", node_timex_offset_seconds: "0x60" },
    at: "12m",
    fires: [{ severity: W }],
  },
  {
    alert: "ClockUnsynchronised",
    series: { node_timex_sync_status: "1x60", node_timex_offset_seconds: "0.01x60" },
    at: "12m",
    fires: [],
  },
  {
    alert: "CertificateExpiry",
    series: { 'kubelet_certificate_manager_server_ttl_seconds{job="kubelet"}': "86400x4" },
    at: "30s",
    fires: [{ severity: W, job: "kubelet" }],
  },
  {
    alert: "CertificateExpiry",
    series: { 'kubelet_certificate_manager_server_ttl_seconds{job="kubelet"}': "8640000x4" },
    at: "30s",
    fires: [],
  },
  {
    alert: "TargetDown",
    series: { 'up{job="logs",instance="r:9428"}': "0x30" },
    at: "6m",
    fires: [{ severity: W, job: "logs", instance: "r:9428" }],
  },
  { alert: "TargetDown", series: { 'up{job="logs",instance="r:9428"}': "0x10 1x20" }, at: "6m", fires: [] },
  {
    alert: "IdsAlertBurst",
    // 40 alerts a minute = 10 per 15 s step, for 10 minutes (the dev site's threshold is 30).
    series: { 'router_ids_alerts_total{process="ids",severity="1",action="allowed"}': "0+10x40" },
    at: "10m",
    fires: [{ severity: W, process: "ids" }],
  },
  {
    alert: "IdsAlertBurst",
    // 40 a minute, but for 3 minutes only
    series: { 'router_ids_alerts_total{process="ids",severity="1",action="allowed"}': "0+10x12 120x28" },
    at: "10m",
    fires: [],
  },
  {
    alert: "IdsAlertBurst",
    // 20 a minute (two severities, 10 each), steadily
    series: {
      'router_ids_alerts_total{process="ids",severity="1",action="allowed"}': "0+2.5x40",
      'router_ids_alerts_total{process="ids",severity="2",action="blocked"}': "0+2.5x40",
    },
    at: "10m",
    fires: [],
  },
  {
    alert: "IdsCaptureDrops",
    // 2% of 10,000 packets per step dropped
    series: {
      'router_ids_capture_kernel_packets_total{process="ids"}': "0+10000x40",
      'router_ids_capture_kernel_drops_total{process="ids"}': "0+200x40",
    },
    at: "10m",
    fires: [{ severity: W, process: "ids" }],
  },
  {
    alert: "IdsCaptureDrops",
    // 0.5%
    series: {
      'router_ids_capture_kernel_packets_total{process="ids"}': "0+10000x40",
      'router_ids_capture_kernel_drops_total{process="ids"}': "0+50x40",
    },
    at: "10m",
    fires: [],
  },
  {
    alert: "IdsStatsMissing",
    // the last report at 0 s (the agent keeps writing the time it last heard from the process)
    series: { 'router_ids_stats_timestamp_seconds{process="ips"}': "0x40" },
    at: "5m",
    fires: [{ severity: W, process: "ips" }],
  },
  {
    alert: "IdsStatsMissing",
    // a report every 15 s
    series: { 'router_ids_stats_timestamp_seconds{process="ips"}': "0+15x40" },
    at: "5m",
    fires: [],
  },
  {
    alert: "IdsInlineBypassed",
    // Suricata left queue 1 after 1 minute: its packets pass uninspected from then on
    series: { 'router_ids_queue_listening{queue="0"}': "1x40", 'router_ids_queue_listening{queue="1"}': "1x4 0x36" },
    at: "5m",
    fires: [{ severity: C, queue: "1" }],
  },
  {
    alert: "IdsInlineBypassed",
    // a restart: 30 s without a listener
    series: { 'router_ids_queue_listening{queue="0"}': "1x4 0x2 1x34" },
    at: "5m",
    fires: [],
  },
  {
    alert: "IdsQueueDrops",
    // queue 0 full for one step (12 packets dropped), its socket never
    series: {
      'router_ids_queue_dropped_total{queue="0",reason="full"}': "0x10 12x30",
      'router_ids_queue_dropped_total{queue="0",reason="socket"}': "0x40",
    },
    at: "4m",
    fires: [{ severity: W, queue: "0", reason: "full" }],
  },
  {
    alert: "IdsQueueDrops",
    // the same drops, more than 5 minutes ago
    series: { 'router_ids_queue_dropped_total{queue="0",reason="full"}': "0x10 12x30" },
    at: "9m",
    fires: [],
  },
  {
    alert: "IdsQueueTableUnreadable",
    series: { router_ids_queue_table_readable: "0x40" },
    at: "6m",
    fires: [{ severity: W }],
  },
  { alert: "IdsQueueTableUnreadable", series: { router_ids_queue_table_readable: "1x40" }, at: "6m", fires: [] },
  {
    alert: "BgpSessionDown",
    series: { 'router_bgp_session_established{neighbour="10.50.0.250",asn="65020"}': "1 0x10" },
    at: "4m",
    fires: [{ severity: W, neighbour: "10.50.0.250", asn: "65020" }],
  },
  // A session that resets and comes back within the minute is not worth a page.
  {
    alert: "BgpSessionDown",
    series: { 'router_bgp_session_established{neighbour="10.50.0.250",asn="65020"}': "1 0 1x10" },
    at: "4m",
    fires: [],
  },
  {
    alert: "BgpBfdDown",
    series: {
      'router_bgp_bfd_up{neighbour="10.50.0.250",asn="65020"}': "1 0x10",
      'router_bgp_session_established{neighbour="10.50.0.250",asn="65020"}': "1x10",
    },
    at: "3m",
    fires: [{ severity: W, neighbour: "10.50.0.250", asn: "65020" }],
  },
  // BFD down with the session down too is BgpSessionDown's business, not this rule's.
  {
    alert: "BgpBfdDown",
    series: {
      'router_bgp_bfd_up{neighbour="10.50.0.250",asn="65020"}': "1 0x10",
      'router_bgp_session_established{neighbour="10.50.0.250",asn="65020"}': "1 0x10",
    },
    at: "3m",
    fires: [],
  },
  {
    alert: "BgpStatusUnreadable",
    series: { router_bgp_status_readable: "1 0x40", router_bgp_metrics_timestamp_seconds: "0+15x40" },
    at: "8m",
    fires: [{ severity: W }],
  },
  // The collector stopped: its last file says readable, but its timestamp no longer moves (samples every 15 s).
  {
    alert: "BgpStatusUnreadable",
    series: { router_bgp_status_readable: "1x80", router_bgp_metrics_timestamp_seconds: "0+15x4 60x80" },
    at: "15m",
    fires: [{ severity: W }],
  },
  {
    alert: "BgpStatusUnreadable",
    series: { router_bgp_status_readable: "1x80", router_bgp_metrics_timestamp_seconds: "0+15x80" },
    at: "15m",
    fires: [],
  },
  {
    alert: "OspfNeighbourLost",
    // Full, then ExStart (the neighbour restarted its database exchange, or the MTUs disagree)
    series: { [OSPF_FULL]: "1x4 0x20", router_ospf_status_readable: "1x24" },
    at: "3m",
    fires: [{ severity: W, ...OSPF_NEIGHBOUR }],
  },
  {
    alert: "OspfNeighbourLost",
    // a firewall change drops OSPF: the hellos stop, the age grows to the dead interval, BIRD declares the
    // neighbour dead and lists it no more (its series ends)
    series: {
      [OSPF_FULL]: "1x7 stale",
      [OSPF_AGE]: "3 8 13 18 23 28 33 38 stale",
      router_ospf_status_readable: "1x24",
    },
    at: "3m",
    fires: [{ severity: W, ...OSPF_NEIGHBOUR }],
  },
  // An adjacency that drops for less than the minute is not worth a page (seen at the last sample of its loss).
  {
    alert: "OspfNeighbourLost",
    series: { [OSPF_FULL]: "1x4 0x3 1x20", router_ospf_status_readable: "1x24" },
    at: "1m45s",
    fires: [],
  },
  // Two routers that are neither DR nor BDR stay at 2-Way for good: never Full is not lost.
  {
    alert: "OspfNeighbourLost",
    series: { [OSPF_FULL]: "0x24", router_ospf_status_readable: "1x24" },
    at: "3m",
    fires: [],
  },
  // The bird pod stopped: its status goes stale and the collector writes no neighbour. Unknown is not lost
  // (OspfStatusUnreadable says it).
  {
    alert: "OspfNeighbourLost",
    series: { [OSPF_FULL]: "1x4 stale", router_ospf_status_readable: "1x4 0x20" },
    at: "3m",
    fires: [],
  },
  {
    alert: "OspfNeighbourSilent",
    // a lossy link: two hellos in a row lost (23 s since the last one at 1 min), the adjacency stays Full
    series: { [OSPF_FULL]: "1x24", [OSPF_AGE]: "3 8 13 18 23 3 8 3 8 3 8 3 8 3 8 3 8 3 8 3 8 3 8 3 8" },
    at: "3m",
    fires: [{ severity: W, ...OSPF_NEIGHBOUR }],
  },
  // Hellos every 10 s: the age never passes two hello intervals.
  {
    alert: "OspfNeighbourSilent",
    series: { [OSPF_FULL]: "1x24", [OSPF_AGE]: "3 8 3 8 3 8 3 8 3 8 3 8 3 8 3 8 3 8 3 8 3 8 3 8 3" },
    at: "3m",
    fires: [],
  },
  // Silenced for good: the neighbour is dead at 40 s and gone, which is OspfNeighbourLost's, not this rule's.
  {
    alert: "OspfNeighbourSilent",
    series: {
      [OSPF_FULL]: "1x7 stale",
      [OSPF_AGE]: "3 8 13 18 23 28 33 38 stale",
      router_ospf_status_readable: "1x24",
    },
    at: "3m",
    fires: [],
  },
  // A key change whose trial failed: BIRD is back on the previous keys; the Secret's new ones stay untried.
  {
    alert: "OspfKeysReverted",
    series: { router_ospf_keys_reverted: "0x4 1x20" },
    at: "1m15s",
    fires: [{ severity: C }],
  },
  // Keys confirmed (or on trial): nothing to say.
  {
    alert: "OspfKeysReverted",
    series: { router_ospf_keys_reverted: "0x24" },
    at: "5m",
    fires: [],
  },
  {
    alert: "OspfStatusUnreadable",
    series: { router_ospf_status_readable: "1 0x40", router_ospf_metrics_timestamp_seconds: "0+15x40" },
    at: "8m",
    fires: [{ severity: W }],
  },
  // The collector stopped: its last file says readable, but its timestamp no longer moves (samples every 15 s).
  {
    alert: "OspfStatusUnreadable",
    series: { router_ospf_status_readable: "1x80", router_ospf_metrics_timestamp_seconds: "0+15x4 60x80" },
    at: "15m",
    fires: [{ severity: W }],
  },
  // The collector never wrote its file (the node exporter answers without it).
  {
    alert: "OspfStatusUnreadable",
    series: { 'up{job="node"}': "1x40" },
    at: "8m",
    fires: [{ severity: W }],
  },
  // Unreadable for less than 5 minutes (the bird pod restarting), seen at its last sample: not yet.
  {
    alert: "OspfStatusUnreadable",
    series: { router_ospf_status_readable: "1x4 0x15 1x20", router_ospf_metrics_timestamp_seconds: "0+15x40" },
    at: "4m45s",
    fires: [],
  },
];

const work = mkdtempSync(join(tmpdir(), "obs-rules-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const t = tier("alert rule unit tests", { commands: ["promtool"] });

function promtoolTest(rules: string, cases: Case[]) {
  const doc = parse(rules) as { groups: { rules: Record<string, unknown>[] }[] };
  for (const g of doc.groups) for (const r of g.rules) delete r.annotations;
  writeFileSync(join(work, "rules.yml"), stringify(doc));
  const tests = {
    rule_files: ["rules.yml"],
    evaluation_interval: "15s",
    tests: cases.map((c) => ({
      interval: "15s",
      input_series: Object.entries(c.series).map(([series, values]) => ({ series, values })),
      alert_rule_test: [{ eval_time: c.at, alertname: c.alert, exp_alerts: c.fires.map((l) => ({ exp_labels: l })) }],
    })),
  };
  writeFileSync(join(work, "tests.yml"), stringify(tests));
  return spawnSync("promtool", ["test", "rules", join(work, "tests.yml")], { encoding: "utf8", cwd: work });
}

describe.skipIf(!t.ok)("the alert rules", () => {
  // The dev site with an eBGP neighbour (BFD on) and OSPF with authentication, so that the BGP and OSPF rules are
  // among them.
  const { site, plan } = devSite((raw) => {
    raw.routing = {
      bgp: { asn: 65010, routerId: "10.50.0.1", neighbors: [{ address: "10.50.0.250", asn: 65020, bfd: true }] },
      ospf: { routerId: "10.50.0.1", segments: ["servers"], authentication: {} },
    };
    raw.ospfKey = "the key of the area, 16+";
  });
  const rules = renderRuleFile(site, plan);
  const names = (parse(rules) as { groups: { rules: { alert: string }[] }[] }).groups.flatMap((g) =>
    g.rules.map((r) => r.alert),
  );

  it("each have a firing and a quiet case", () => {
    for (const n of names) {
      expect(
        CASES.some((c) => c.alert === n && c.fires.length > 0),
        n,
      ).toBe(true);
      expect(
        CASES.some((c) => c.alert === n && c.fires.length === 0),
        n,
      ).toBe(true);
    }
  });

  it("pass promtool test rules", () => {
    const r = promtoolTest(rules, CASES);
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it("fail promtool when a rule's threshold moves (the cases can fail)", () => {
    const r = promtoolTest(rules.replace(">= 90", ">= 95"), CASES);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toContain("DhcpPoolNearlyFull");
  });
});
