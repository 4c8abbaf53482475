/**
 * Dashboards as code: one overview of the site (WANs, segments, clients, firewall verdicts, DHCP, DNS, data
 * plane) and one per area, built with Grafana's foundation SDK (Apache-2.0; its builders are generated from
 * Grafana's dashboard schema). Every panel's query is in `dashboardQueries` so the tests parse each with the
 * PromQL grammar and the virtual appliance runs each against its TSDB. Pure.
 */
import { DashboardBuilder, RowBuilder, type Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import { PanelBuilder as TimeSeries } from "@grafana/grafana-foundation-sdk/timeseries";
import { PanelBuilder as Stat } from "@grafana/grafana-foundation-sdk/stat";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";

/** The Prometheus data source's uid (provisioned with Grafana, datasources.ts). */
export const DATASOURCE_UID = "router-prometheus";

export interface PanelSpec {
  title: string;
  kind: "timeseries" | "stat";
  /** PromQL. */
  query: string;
  legend?: string;
  unit?: string;
  /** The query only has data where the site runs what it measures (e.g. more than one WAN, the DNS stack). */
  needs?: "dns" | "cluster" | "ids" | "talos-api";
}

export interface DashboardSpec {
  uid: string;
  title: string;
  rows: { title: string; panels: PanelSpec[] }[];
}

const P = (title: string, query: string, more: Partial<PanelSpec> = {}): PanelSpec => ({
  title,
  kind: "timeseries",
  query,
  ...more,
});

const WAN: PanelSpec[] = [
  P("WAN up", "router_dataplane_wan_up", { legend: "{{wan}}", kind: "stat" }),
  P("Active WAN", "router_dataplane_wan_active", { legend: "{{wan}}", kind: "stat" }),
  P("Probe round trip", "router_dataplane_wan_probe_rtt_seconds", { legend: "{{wan}}", unit: "s" }),
  P("Probe losses", "rate(router_dataplane_wan_probe_failures_total[5m])", { legend: "{{wan}}", unit: "pps" }),
  P("Failovers (1 h)", "increase(router_dataplane_wan_failovers_total[1h])", { kind: "stat" }),
];
const SEGMENTS: PanelSpec[] = [
  P("Traffic per segment", "sum by (segment, direction) (rate(router_dataplane_segment_bytes_total[5m])) * 8", {
    legend: "{{segment}} {{direction}}",
    unit: "bps",
  }),
  P("Clients (DHCP leases)", "router_dhcp_leases", { legend: "{{segment}}" }),
  P("Top talkers", "topk(10, router_flow_top_talker_bytes)", { legend: "{{name}} {{address}}", unit: "bytes" }),
];
const FIREWALL: PanelSpec[] = [
  P("XDP drops by reason", "sum by (reason) (rate(router_dataplane_drop_packets_total[5m]))", {
    legend: "{{reason}}",
    unit: "pps",
  }),
  P("XDP passed", "sum by (reason) (rate(router_dataplane_xdp_passed_packets_total[5m]))", {
    legend: "{{reason}}",
    unit: "pps",
  }),
  P("Rejected loads (1 h)", "sum by (kind) (increase(router_dataplane_reload_failures_total[1h]))", {
    legend: "{{kind}}",
    kind: "stat",
  }),
  P("Ruleset last applied", "time() - router_dataplane_nft_last_success_timestamp_seconds", {
    unit: "s",
    kind: "stat",
  }),
  P("Connection tracking", "node_nf_conntrack_entries / node_nf_conntrack_entries_limit * 100", { unit: "percent" }),
];
/** The IDS's metrics agent's counters (images/ids/router-ids-metrics). */
const IDS: PanelSpec[] = [
  P("IDS alerts a minute", "sum by (severity, action) (rate(router_ids_alerts_total[5m])) * 60", {
    legend: "severity {{severity}} {{action}}",
    needs: "ids",
  }),
  P(
    "IDS capture drops",
    "sum by (process) (rate(router_ids_capture_kernel_drops_total[5m])) / sum by (process) (rate(router_ids_capture_kernel_packets_total[5m])) * 100",
    { legend: "{{process}}", unit: "percent", needs: "ids" },
  ),
  P("IDS packets inspected", "sum by (process) (rate(router_ids_packets_total[5m]))", {
    legend: "{{process}}",
    unit: "pps",
    needs: "ids",
  }),
  P("IPS verdicts", "sum by (verdict) (rate(router_ids_ips_packets_total[5m]))", {
    legend: "{{verdict}}",
    unit: "pps",
    needs: "ids",
  }),
];
/** OSPF as the bird pod sees it (images/observability/router-ospf-metrics on its status). */
const OSPF: PanelSpec[] = [
  P("OSPF neighbours Full", "sum by (interface) (router_ospf_neighbour_full)", { legend: "{{interface}}" }),
  P("OSPF time since last hello", "router_ospf_neighbour_hello_age_seconds", {
    legend: "{{router_id}} on {{interface}}",
    unit: "s",
  }),
];
/** BGP sessions as Talos reports them (images/observability/router-bgp-metrics, through the Talos API). */
const BGP: PanelSpec[] = [
  P("BGP sessions established", "router_bgp_session_established", {
    legend: "{{neighbour}} (AS {{asn}})",
    needs: "talos-api",
  }),
  P("BGP BFD up", "router_bgp_bfd_up", { legend: "{{neighbour}}", needs: "talos-api" }),
  P("BGP prefixes received", "router_bgp_received_prefixes", {
    legend: "{{neighbour}} (AS {{asn}})",
    needs: "talos-api",
  }),
];
const DHCP: PanelSpec[] = [
  P("Pool usage", "router_dhcp_pool_used_addresses / router_dhcp_pool_addresses * 100", {
    legend: "{{segment}}",
    unit: "percent",
  }),
  P("Declined addresses", "router_dhcp_declined_addresses", { legend: "{{segment}}" }),
  P("Leases", "router_dhcp_leases", { legend: "{{segment}}" }),
];
const DNS: PanelSpec[] = [
  P("Queries", "sum by (zone) (rate(router_dns_queries_total[5m]))", {
    legend: "{{zone}}",
    unit: "reqps",
    needs: "dns",
  }),
  P("SERVFAIL share", "sum(rate(router_dns_servfail_total[5m])) / sum(rate(router_dns_queries_total[5m])) * 100", {
    unit: "percent",
    needs: "dns",
  }),
];
const SYSTEM: PanelSpec[] = [
  P("CPU busy", '1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))', { unit: "percentunit" }),
  P("Memory used", "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", { unit: "percentunit" }),
  P("Clock offset", "node_timex_offset_seconds", { unit: "s" }),
  P("Targets up", "up", { legend: "{{job}}", kind: "stat" }),
  P("Container memory", 'sum by (container) (container_memory_working_set_bytes{container!=""})', {
    legend: "{{container}}",
    unit: "bytes",
    needs: "cluster",
  }),
];

/** Every dashboard of the site: the overview, then one per area. */
export function dashboardSpecs(site: Site, plan: SitePlan): DashboardSpec[] {
  const multiWan = plan.wans.length > 1;
  const wan = multiWan ? WAN : WAN.filter((p) => !p.title.startsWith("Failovers"));
  return [
    {
      uid: "router-overview",
      title: `${site.site.name}: overview`,
      rows: [
        { title: "WANs", panels: wan.slice(0, 2) },
        { title: "Segments and clients", panels: SEGMENTS.slice(0, 2) },
        { title: "Firewall and data plane", panels: FIREWALL.slice(0, 2) },
        { title: "DHCP", panels: DHCP.slice(0, 1) },
        { title: "DNS", panels: DNS.slice(0, 1) },
      ],
    },
    { uid: "router-wan", title: `${site.site.name}: WANs`, rows: [{ title: "WANs", panels: wan }] },
    {
      uid: "router-segments",
      title: `${site.site.name}: segments and flows`,
      rows: [{ title: "Segments", panels: SEGMENTS }],
    },
    {
      uid: "router-firewall",
      title: `${site.site.name}: firewall and data plane`,
      rows: [
        { title: "Firewall", panels: FIREWALL },
        ...(site.ids.enabled ? [{ title: "Intrusion detection", panels: IDS }] : []),
      ],
    },
    { uid: "router-dhcp", title: `${site.site.name}: DHCP`, rows: [{ title: "DHCP", panels: DHCP }] },
    { uid: "router-dns", title: `${site.site.name}: DNS`, rows: [{ title: "DNS", panels: DNS }] },
    { uid: "router-system", title: `${site.site.name}: system`, rows: [{ title: "System", panels: SYSTEM }] },
    ...(site.routing.ospf || site.routing.bgp
      ? [
          {
            uid: "router-routing",
            title: `${site.site.name}: dynamic routing`,
            rows: [
              ...(site.routing.ospf ? [{ title: "OSPF", panels: OSPF }] : []),
              ...(site.routing.bgp ? [{ title: "BGP", panels: BGP }] : []),
            ],
          },
        ]
      : []),
  ];
}

/** Every panel query of the site's dashboards, with where it is. */
export function dashboardQueries(site: Site, plan: SitePlan): { dashboard: string; panel: PanelSpec }[] {
  return dashboardSpecs(site, plan).flatMap((d) =>
    d.rows.flatMap((r) => r.panels.map((panel) => ({ dashboard: d.uid, panel }))),
  );
}

function panel(p: PanelSpec) {
  const target = new DataqueryBuilder().expr(p.query).legendFormat(p.legend ?? "__auto");
  const b = (p.kind === "stat" ? new Stat() : new TimeSeries()).title(p.title).withTarget(target).datasource({
    type: "prometheus",
    uid: DATASOURCE_UID,
  });
  return p.unit ? b.unit(p.unit) : b;
}

/** One dashboard as Grafana's JSON model. */
export function buildDashboard(spec: DashboardSpec): Dashboard {
  let b = new DashboardBuilder(spec.title)
    .uid(spec.uid)
    .tags(["router"])
    .refresh("30s")
    .time({ from: "now-6h", to: "now" });
  for (const row of spec.rows) {
    b = b.withRow(new RowBuilder(row.title));
    for (const p of row.panels) b = b.withPanel(panel(p));
  }
  return b.build();
}

/** Dashboard files by name (`<uid>.json`), sorted keys for stable output. */
export function renderDashboards(site: Site, plan: SitePlan): Map<string, string> {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : v && typeof v === "object"
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
          )
        : v;
  return new Map(
    dashboardSpecs(site, plan).map((d) => [`${d.uid}.json`, `${JSON.stringify(sorted(buildDashboard(d)), null, 2)}\n`]),
  );
}
