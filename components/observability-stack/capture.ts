/**
 * Packet capture on demand (`npm run capture`, cli/capture.ts over `talosctl pcap`): the router links an operator
 * may capture on, by the names the site gives them, the capture filter, and the bounds every capture has. Pure.
 */
import type { SitePlan } from "../site/plan";
import { TALOS_API_PORTS } from "../talos-node/firewall";

export interface CaptureLink {
  /** The name in the site: a WAN's or trunk's alias, a segment's VLAN link. */
  name: string;
  /** What it carries (the usage text and the summary). */
  what: string;
}

/** Every router link of the site, WANs first, then trunks, then segments by VLAN. */
export function captureLinks(plan: SitePlan): CaptureLink[] {
  return [
    ...[...plan.wans].sort((a, b) => a.priority - b.priority).map((w) => ({ name: w.name, what: `WAN ${w.name}` })),
    ...plan.trunks.map((t) => ({ name: t.name, what: `trunk of ${t.vlans.length} VLANs (tagged frames)` })),
    ...[...plan.segments]
      .sort((a, b) => a.vlan - b.vlan)
      .map((s) => ({ name: s.link, what: `segment ${s.name} (VLAN ${s.vlan})` })),
  ];
}

/**
 * The filter expression (tcpdump/pcap-filter syntax) a capture runs with: the operator's, and never the Talos API
 * session to the management address — the capture's own stream, which would otherwise feed itself on the
 * management link.
 */
export function captureExpression(plan: SitePlan, filter?: string): string {
  const own = `host ${plan.managementAddress} and tcp port ${TALOS_API_PORTS[0]}`;
  return filter?.trim() ? `(${filter.trim()}) and not (${own})` : `not (${own})`;
}

/** Bounds of a capture: how long and how large, by default and at most. */
export const CAPTURE_LIMITS = {
  seconds: { default: 60, max: 3600 },
  bytes: { default: 50 * 1024 ** 2, min: 1024, max: 2 * 1024 ** 3 },
} as const;

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  kib: 1024,
  mb: 1e6,
  mib: 1024 ** 2,
  gb: 1e9,
  gib: 1024 ** 3,
};

/** Bytes of a size such as `50MB`, `20MiB` or `4096`; undefined when it is not one. */
export function parseSize(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?$/i.exec(s.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * UNITS[(m[2] ?? "").toLowerCase()]);
}
