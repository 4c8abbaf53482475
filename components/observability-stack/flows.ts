/**
 * Flow records per segment and per WAN: one softflowd per router link (the link's flows only, each tagged with a
 * stable interface index) exports IPFIX to the site's collectors and to the router's own nfacctd (pmacct), which
 * aggregates bytes per (link, source) every minute; a small script turns that into top-talker metrics for the
 * node exporter's textfile collector. Pure.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { durationSeconds } from "../site/duration";
import { OBSERVABILITY_LOCAL_PORTS } from "../site/schema-observability";

export const NFACCTD_CONFIG = "/etc/pmacct/nfacctd.conf";
/** nfacctd's per-minute aggregate (CSV), read by the top-talkers script. */
export const TALKERS_CSV = "/run/flows/talkers.csv";
/** How often nfacctd writes the aggregate (seconds): the top-talker metrics are bytes over this window. */
export const TALKERS_WINDOW = 60;

export interface FlowLink {
  /** The interface index softflowd reports (1-based, stable: segments by VLAN, then WANs by priority). */
  index: number;
  /** Kernel link name (VLAN links) or Talos alias (WANs; softflowd resolves it on the node). */
  link: string;
  /** What it carries: `segment` or `wan`. */
  kind: "segment" | "wan";
  /** Segment or WAN name (the metrics' label). */
  name: string;
}

/** Every link whose flows are exported. */
export function flowLinks(plan: SitePlan): FlowLink[] {
  const segs = [...plan.segments].sort((a, b) => a.vlan - b.vlan);
  const wans = [...plan.wans].sort((a, b) => a.priority - b.priority);
  return [
    ...segs.map((s, i) => ({ index: i + 1, link: s.link, kind: "segment" as const, name: s.name })),
    ...wans.map((w, i) => ({ index: segs.length + i + 1, link: w.name, kind: "wan" as const, name: w.name })),
  ];
}

/** softflowd's command line for one link. */
export function softflowdArgs(site: Site, l: FlowLink): string[] {
  const collectors = [`127.0.0.1:${OBSERVABILITY_LOCAL_PORTS.flows}`, ...site.observability.flows.collectors];
  return [
    "softflowd",
    "-d",
    // Not promiscuous: the router's own link traffic is what is routed; other hosts' frames are not ours to log.
    "-N",
    "-v",
    "10",
    "-6",
    "-i",
    `${l.index}:${l.link}`,
    ...collectors.flatMap((c) => ["-n", c]),
    "-t",
    `maxlife=${durationSeconds(site.observability.flows.activeTimeout)}`,
    "-p",
    `/run/softflowd/${l.link}.pid`,
    "-c",
    `/run/softflowd/${l.link}.ctl`,
  ];
}

/** nfacctd.conf: the router's own collector, bytes per (link, source) every TALKERS_WINDOW seconds. */
export function renderNfacctd(site: Site): string {
  return [
    `! nfacctd of site ${site.site.name}: top talkers per link (rendered)`,
    "daemonize: false",
    "nfacctd_ip: 127.0.0.1",
    `nfacctd_port: ${OBSERVABILITY_LOCAL_PORTS.flows}`,
    "plugins: print[talkers]",
    "aggregate[talkers]: in_iface, src_host",
    "print_output[talkers]: csv",
    `print_output_file[talkers]: ${TALKERS_CSV}`,
    `print_refresh_time[talkers]: ${TALKERS_WINDOW}`,
    "print_output_file_append[talkers]: false",
    "",
  ].join("\n");
}

/** The top-talkers script's table: interface index, kind, name. */
export function renderFlowLinks(plan: SitePlan): string {
  return flowLinks(plan)
    .map((l) => `${l.index} ${l.kind} ${l.name}\n`)
    .join("");
}
