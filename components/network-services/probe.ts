/**
 * The segment probe: what a production router checks from its own side once the network services rolled out —
 * on each segment the change touched, Kea answers a DHCPv4 discover with an offer in the segment's subnet
 * (images/services/dhcp4-probe.c: the offer is read, never requested, so no lease is taken) and radvd answers a
 * router solicitation with the segment's prefix (rdisc6). The script runs in the services image on the host
 * network (a short-lived pod the rollout gate starts, rollout.ts), takes the segment names to probe as its
 * arguments, prints one line per check (`ok …` or `FAIL segment NAME: …`) and exits 1 when any check failed.
 * Each check is bounded (DHCP_MS, RA_MS), so a segment costs at most a few seconds. Pure: plain text.
 */
import { createHash } from "node:crypto";
import type { Site } from "../site/schema";
import type { SegmentPlan, SitePlan } from "../site/plan";
import { radvdInterface } from "../vlan-segment/services";
import { q } from "../talos-node/scripts";

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
  /** SHA-256 of what the node and the daemons were told about this segment: a change of it touches the segment. */
  fingerprint: string;
}

/** Longest wait for a DHCPv4 offer, in ms. */
export const DHCP_MS = 3000;
/** Longest wait for each of the two router solicitations, in ms. */
export const RA_MS = 1000;

/** The probe of one segment, or undefined when no daemon serves it (no DHCPv4, no router advertisements). */
function probeOf(site: Site, seg: SegmentPlan): SegmentProbe | undefined {
  const dhcp4 = seg.ipv4 && seg.dhcp.enabled ? seg.ipv4.cidr : undefined;
  const radvd = radvdInterface(site, seg);
  const ra = radvd && seg.ipv6 ? seg.ipv6.prefix : undefined;
  if (!dhcp4 && !ra) return undefined;
  const fingerprint = createHash("sha256")
    .update(JSON.stringify({ segment: seg, radvd: radvd ?? null }))
    .digest("hex");
  return { segment: seg.name, link: seg.link, ...(dhcp4 ? { dhcp4 } : {}), ...(ra ? { ra } : {}), fingerprint };
}

/** The probes of every segment a daemon serves, by segment name. */
export function segmentProbes(site: Site, plan: SitePlan): SegmentProbe[] {
  return plan.segments
    .map((s) => probeOf(site, s))
    .filter((p): p is SegmentProbe => !!p)
    .sort((a, b) => a.segment.localeCompare(b.segment));
}

/** The daemons whose answers a probe checks (a new revision of one touches the segment). */
export function probeDaemons(p: SegmentProbe): string[] {
  return [...(p.dhcp4 ? ["kea-dhcp4"] : []), ...(p.ra ? ["radvd"] : [])];
}

/** The checks of one segment: `check_segment` with its values. */
function caseOf(p: SegmentProbe): string {
  return `    ${q(p.segment)}) check_segment ${[p.segment, p.link, p.dhcp4 ?? "", p.ra ?? ""].map(q).join(" ")} ;;`;
}

/**
 * The probe script (POSIX sh: busybox in the image). Arguments: the names of the segments to probe. The tools come
 * from PATH: dhcp4-probe and rdisc6 of the services image.
 */
export function segmentProbeScript(probes: SegmentProbe[]): string {
  return [
    "set -u",
    `DHCP_MS=${DHCP_MS}`,
    `RA_MS=${RA_MS}`,
    "bad=0",
    "check_segment() {",
    "  seg=$1 link=$2 v4=$3 v6=$4",
    '  if [ -n "$v4" ]; then',
    '    if out=$(dhcp4-probe "$link" "$v4" "$DHCP_MS" 2>&1); then echo "ok segment $seg: DHCPv4 on $link: $out"',
    "    else echo \"FAIL segment $seg: DHCPv4 on $link: $(echo \"$out\" | tr '\\n' ' ' | sed 's/ *$//')\"; bad=1; fi",
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
