/**
 * The segment probe: what a production router checks from its own side once the network services rolled out —
 * on each segment the change touched, Kea answers a DHCPv4 discover with an offer in the segment's subnet
 * (images/services/dhcp4-probe.c: the offer is read, never requested, so no lease is taken) and radvd answers a
 * router solicitation with the segment's prefix (rdisc6), and where Kea's DHCPv6 serves the segment, a DHCPv6
 * solicit gets an advertise with an address of the segment's pool (stateful) or an information request gets a
 * reply naming the router's DNS server (stateless) — images/services/dhcp6-probe.c, never followed by a request,
 * so no lease is taken. The script runs in the services image on the host network (a short-lived pod the rollout
 * gate starts, rollout.ts), takes the segment names to probe as its arguments, prints one line per check (`ok …`
 * or `FAIL segment NAME: …`) and exits 1 when any check failed. Each check is bounded (DHCP_MS, RA_MS), so a
 * segment costs at most a few seconds. Pure: plain text.
 */
import { createHash } from "node:crypto";
import type { Site } from "../site/schema";
import type { SegmentPlan, SitePlan } from "../site/plan";
import { dhcpv6Range, keaSubnet6, radvdInterface, type KeaOption } from "../vlan-segment/services";
import { q } from "../talos-node/scripts";
import { PROBE_STATE, type ProbeStep } from "./rollout";

/** What one segment must answer, and which daemons answer it. */
export interface SegmentProbe {
  /** The segment's name (router:segments[].name), for messages. */
  segment: string;
  /** Kernel link of the segment (`lan0.10`). */
  link: string;
  /** IPv4 subnet Kea hands out on the link (absent: the segment has no DHCPv4). */
  dhcp4?: string;
  /** IPv6 prefix radvd announces on the link (absent: no router advertisements there). */
  ra?: string;
  /** What Kea's DHCPv6 must answer on the link (absent: it does not serve the segment). */
  dhcp6?: Dhcp6Check;
  /** SHA-256 of what the node and the daemons were told about this segment: a change of it touches the segment. */
  fingerprint: string;
}

/**
 * The DHCPv6 check of a segment: stateful, the advertise to a solicit carries an address of `pool` (`start-end`);
 * stateless, the reply to an information request names `dns` (absent: the router hands out no DNS server there,
 * and any reply will do).
 */
export type Dhcp6Check = { mode: "stateful"; pool: string } | { mode: "stateless"; dns?: string };

/** Longest wait for a DHCPv4 offer, and for a DHCPv6 advertise or reply, in ms. */
export const DHCP_MS = 3000;
/** Longest wait for each of the two router solicitations, in ms. */
export const RA_MS = 1000;

/**
 * The DHCPv6 check of a segment, from what Kea's DHCPv6 is told about it (undefined: Kea does not serve it): the
 * pool of a stateful segment; the first DNS server Kea hands out on a stateless one (the router's address where it
 * answers DNS in the segment's zone).
 */
function dhcp6Of(site: Site, plan: SitePlan, seg: SegmentPlan): Dhcp6Check | undefined {
  const subnet = keaSubnet6(site, plan, seg);
  if (!subnet) return undefined;
  const range = dhcpv6Range(site, seg);
  if (range) return { mode: "stateful", pool: `${range.start}-${range.end}` };
  const dns = (subnet["option-data"] as KeaOption[])
    .find((o) => o.name === "dns-servers")
    ?.data.split(",")[0]
    .trim();
  return { mode: "stateless", ...(dns ? { dns } : {}) };
}

/** The probe of one segment, or undefined when no daemon serves it (no DHCPv4, DHCPv6 or router advertisements). */
function probeOf(site: Site, plan: SitePlan, seg: SegmentPlan): SegmentProbe | undefined {
  const dhcp4 = seg.ipv4 && seg.dhcp.enabled ? seg.ipv4.cidr : undefined;
  const radvd = radvdInterface(site, seg);
  const ra = radvd && seg.ipv6 ? seg.ipv6.prefix : undefined;
  const dhcp6 = dhcp6Of(site, plan, seg);
  if (!dhcp4 && !ra && !dhcp6) return undefined;
  // Kea's DHCPv6 subnet is part of what the segment was told (its pool and options are not in the plan); absent, it
  // leaves the fingerprint of a segment without DHCPv6 as it was.
  const fingerprint = createHash("sha256")
    .update(JSON.stringify({ segment: seg, radvd: radvd ?? null, kea6: keaSubnet6(site, plan, seg) }))
    .digest("hex");
  return {
    segment: seg.name,
    link: seg.link,
    ...(dhcp4 ? { dhcp4 } : {}),
    ...(ra ? { ra } : {}),
    ...(dhcp6 ? { dhcp6 } : {}),
    fingerprint,
  };
}

/** The probes of every segment a daemon serves, by segment name. */
export function segmentProbes(site: Site, plan: SitePlan): SegmentProbe[] {
  return plan.segments
    .map((s) => probeOf(site, plan, s))
    .filter((p): p is SegmentProbe => !!p)
    .sort((a, b) => a.segment.localeCompare(b.segment));
}

/** The daemons whose answers a probe checks (a new revision of one touches the segment). */
export function probeDaemons(p: SegmentProbe): string[] {
  return [...(p.dhcp4 ? ["kea-dhcp4"] : []), ...(p.dhcp6 ? ["kea-dhcp6"] : []), ...(p.ra ? ["radvd"] : [])];
}

/** The checks of one segment: `check_segment` with its values. */
function caseOf(p: SegmentProbe): string {
  const d6 = !p.dhcp6
    ? ["", ""]
    : p.dhcp6.mode === "stateful"
      ? ["stateful", p.dhcp6.pool]
      : ["stateless", p.dhcp6.dns ?? "-"];
  const args = [p.segment, p.link, p.dhcp4 ?? "", p.ra ?? "", ...d6];
  return `    ${q(p.segment)}) check_segment ${args.map(q).join(" ")} ;;`;
}

/**
 * The probe script (POSIX sh: busybox in the image). Arguments: the names of the segments to probe. The tools come
 * from PATH: dhcp4-probe, dhcp6-probe and rdisc6 of the services image.
 */
export function segmentProbeScript(probes: SegmentProbe[]): string {
  return [
    "set -u",
    `DHCP_MS=${DHCP_MS}`,
    `RA_MS=${RA_MS}`,
    "bad=0",
    "check_segment() {",
    "  seg=$1 link=$2 v4=$3 v6=$4 d6=$5 d6arg=$6",
    '  if [ -n "$v4" ]; then',
    '    if out=$(dhcp4-probe "$link" "$v4" "$DHCP_MS" 2>&1); then echo "ok segment $seg: DHCPv4 on $link: $out"',
    "    else echo \"FAIL segment $seg: DHCPv4 on $link: $(echo \"$out\" | tr '\\n' ' ' | sed 's/ *$//')\"; bad=1; fi",
    "  fi",
    '  if [ -n "$d6" ]; then',
    '    if [ "$d6" = stateless ]; then set -- -i "$link" "$d6arg" "$DHCP_MS"; else set -- "$link" "$d6arg" "$DHCP_MS"; fi',
    '    if out=$(dhcp6-probe "$@" 2>&1); then echo "ok segment $seg: DHCPv6 on $link: $out"',
    "    else echo \"FAIL segment $seg: DHCPv6 on $link: $(echo \"$out\" | tr '\\n' ' ' | sed 's/ *$//')\"; bad=1; fi",
    "  fi",
    '  if [ -n "$v6" ]; then',
    '    out=$(rdisc6 -1 -w "$RA_MS" -r 2 "$link" 2>&1)',
    "    seen=$(echo \"$out\" | sed -n 's/^ *Prefix *: *//p' | tr '\\n' ' ')",
    '    if echo "$out" | grep -q "^ *Prefix *: *$v6\\$"; then echo "ok segment $seg: router advertisement on $link announces $v6"',
    '    elif [ -n "$seen" ]; then echo "FAIL segment $seg: RA on $link: announces ${seen}but not $v6"; bad=1',
    '    else echo "FAIL segment $seg: RA on $link: no router advertisement answered a solicitation"; bad=1; fi',
    "  fi",
    "}",
    'for s in "$@"; do',
    '  case "$s" in',
    ...probes.map(caseOf),
    '    *) echo "FAIL segment $s: not a segment any service answers on"; bad=1 ;;',
    "  esac",
    "done",
    'exit "$bad"',
  ].join("\n");
}

/**
 * The rollout gate's probe step of the network services: this script in the services image, with NET_RAW (and
 * NET_BIND_SERVICE when a segment is asked DHCPv6).
 */
export function servicesProbeStep(image: string, probes: SegmentProbe[]): ProbeStep {
  return {
    image,
    name: "segment-probe",
    state: PROBE_STATE,
    subject: "services",
    script: segmentProbeScript(probes),
    segments: probes.map((p) => ({ segment: p.segment, fingerprint: p.fingerprint, daemons: probeDaemons(p) })),
    segmentMs: 2 * DHCP_MS + 2 * RA_MS,
    // NET_BIND_SERVICE: the DHCPv6 client port (546) is a privileged one.
    capabilities: ["NET_RAW", ...(probes.some((p) => p.dhcp6) ? ["NET_BIND_SERVICE"] : [])],
    blame: [
      { daemon: "kea-dhcp4", pattern: "DHCPv4 " },
      { daemon: "kea-dhcp6", pattern: "DHCPv6 " },
      { daemon: "radvd", pattern: "RA " },
    ],
  };
}
