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
 * segment costs at most a few seconds.
 * On a segment OSPF runs on, when BIRD restarted with a new revision (the gate passes the daemons whose revision
 * changed in PROBE_CHANGED), every neighbour BIRD had Full there just before (the status the previous bird pod left,
 * ospf.previous.json, images/services/router-ospf-status) must be Full again in a status the new pod wrote, within
 * OSPF_REFORM_S: an area or timer typo in a routing change that BIRD accepts but its neighbours refuse is caught
 * and BIRD rolled back, as the try path holds adjacencies through a host change (components/talos-node/scripts.ts).
 * A segment taken out of OSPF, or made passive, holds nothing. Pure: plain text.
 */
import { createHash } from "node:crypto";
import type { Site } from "../site/schema";
import type { SegmentPlan, SitePlan } from "../site/plan";
import { dhcpv6Range, keaSubnet6, radvdInterface, type KeaOption } from "../vlan-segment/services";
import { q } from "../talos-node/scripts";
import { PROBE_STATE, type ProbeStep } from "./rollout";
import { OSPF_DEAD_S, OSPF_HELLO_S } from "./bird";
import { OSPF_STATUS_DIR } from "./k8s";

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
  /** OSPF runs on the link (not passive): BIRD's neighbours there are held through its restarts. */
  ospf?: true;
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
 * Longest wait, once BIRD restarted, for the neighbours it had Full to be Full again, in seconds: a dead interval
 * (a new BIRD waits that long for a designated router unless a neighbour's hello names one) and a hello interval
 * (the neighbour's next hello, which lists the new BIRD).
 */
export const OSPF_REFORM_S = OSPF_DEAD_S + OSPF_HELLO_S;
/**
 * The previous status must have been written at most this long before BIRD's restart, in seconds (its container
 * writes every few seconds; the pod's replacement takes a few more): older, its container had stopped writing, and
 * what it says holds nothing (a WARNING says so).
 */
export const OSPF_PREVIOUS_FRESH_S = 60;

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
  // OSPFv2: the segment's IPv4 link, when it is one of OSPF's (not passive) segments
  const ospf = !!seg.ipv4 && (site.routing.ospf?.segments.includes(seg.name) ?? false);
  if (!dhcp4 && !ra && !dhcp6 && !ospf) return undefined;
  // Kea's DHCPv6 subnet is part of what the segment was told (its pool and options are not in the plan); absent, it
  // leaves the fingerprint of a segment without DHCPv6 as it was, and so does OSPF's flag.
  const fingerprint = createHash("sha256")
    .update(
      JSON.stringify({
        segment: seg,
        radvd: radvd ?? null,
        kea6: keaSubnet6(site, plan, seg),
        ...(ospf ? { ospf } : {}),
      }),
    )
    .digest("hex");
  return {
    segment: seg.name,
    link: seg.link,
    ...(dhcp4 ? { dhcp4 } : {}),
    ...(ra ? { ra } : {}),
    ...(dhcp6 ? { dhcp6 } : {}),
    ...(ospf ? { ospf: true as const } : {}),
    fingerprint,
  };
}

/** The probes of every segment a daemon serves or OSPF runs on, by segment name. */
export function segmentProbes(site: Site, plan: SitePlan): SegmentProbe[] {
  return plan.segments
    .map((s) => probeOf(site, plan, s))
    .filter((p): p is SegmentProbe => !!p)
    .sort((a, b) => a.segment.localeCompare(b.segment));
}

/** The daemons whose answers a probe checks (a new revision of one touches the segment). */
export function probeDaemons(p: SegmentProbe): string[] {
  return [
    ...(p.dhcp4 ? ["kea-dhcp4"] : []),
    ...(p.dhcp6 ? ["kea-dhcp6"] : []),
    ...(p.ra ? ["radvd"] : []),
    ...(p.ospf ? ["bird"] : []),
  ];
}

/** The checks of one segment: `check_segment` with its values. */
function caseOf(p: SegmentProbe): string {
  const d6 = !p.dhcp6
    ? ["", ""]
    : p.dhcp6.mode === "stateful"
      ? ["stateful", p.dhcp6.pool]
      : ["stateless", p.dhcp6.dns ?? "-"];
  const args = [p.segment, p.link, p.dhcp4 ?? "", p.ra ?? "", ...d6, p.ospf ? "ospf" : ""];
  return `    ${q(p.segment)}) check_segment ${args.map(q).join(" ")} ;;`;
}

/**
 * The OSPF hold of one segment (sh functions). ospf_read FILE LINK prints the status file's head
 * (`S UPTIME SINCE BOOT READABLE`) and each neighbour on LINK (`N ROUTER-ID ADDRESS STATE`); it fails when there is
 * no file. ospf_check SEGMENT LINK does nothing unless bird is in PROBE_CHANGED; otherwise it holds the neighbours
 * that were Full on LINK in the previous status and waits up to OSPF_REFORM_S for all of them to be Full in a
 * status written since BIRD restarted (its `since` is not before the previous status).
 */
const OSPF_CHECK = [
  "ospf_read() {",
  '  [ -r "$1" ] || return 1',
  '  awk -v link="$2" \'',
  '    function str(o, k) { return match(o, "\\"" k "\\":\\"[^\\"]*\\"") ? substr(o, RSTART + length(k) + 4, RLENGTH - length(k) - 5) : "" }',
  '    function num(o, k) { return match(o, "\\"" k "\\":[-0-9.]+") ? substr(o, RSTART + length(k) + 3, RLENGTH - length(k) - 3) : "-" }',
  "    NR == 1 {",
  '      i = index($0, "\\"neighbours\\":")',
  "      head = i ? substr($0, 1, i - 1) : $0",
  '      print "S", num(head, "uptime"), num(head, "since"), (str(head, "boot") == "" ? "-" : str(head, "boot")), (index(head, "\\"readable\\":true") ? "yes" : "no")',
  '      n = i ? split(substr($0, i), part, "{") : 0',
  '      for (j = 2; j <= n; j++) if (str(part[j], "interface") == link) print "N", str(part[j], "routerId"), str(part[j], "address"), str(part[j], "state")',
  "    }",
  '    END { if (NR == 0) print "S - - - no" }\' "$1"',
  "}",
  "uptime_s() { cut -d. -f1 /proc/uptime; }",
  "ospf_check() {",
  "  seg=$1 link=$2",
  '  case " ${PROBE_CHANGED:-} " in *" bird "*) ;; *) return 0 ;; esac',
  '  if ! before=$(ospf_read "$OSPF_STATUS_DIR/ospf.previous.json" "$link"); then',
  '    echo "ok segment $seg: OSPF on $link: no status from before BIRD last started (its first start): no neighbour to hold"; return 0',
  "  fi",
  '  set -- $(echo "$before" | sed -n "s/^S //p"); pup=$1 pboot=$3 pread=$4',
  '  held=$(echo "$before" | awk \'$1 == "N" && $4 == "Full" { print $2, $3 }\')',
  '  if [ "$pread" != yes ]; then echo "ok segment $seg: OSPF on $link: WARNING: BIRD could not be read before it last started: no neighbour held"; return 0; fi',
  '  if [ -z "$held" ]; then echo "ok segment $seg: OSPF on $link: no neighbour was Full there before BIRD last started"; return 0; fi',
  "  end=$(( $(uptime_s) + OSPF_REFORM_S ))",
  "  while :; do",
  '    why=""',
  '    if now=$(ospf_read "$OSPF_STATUS_DIR/ospf.json" "$link"); then',
  '      set -- $(echo "$now" | sed -n "s/^S //p"); csince=$2 cboot=$3 cread=$4',
  '      if [ "$cboot" != "$pboot" ]; then echo "ok segment $seg: OSPF on $link: WARNING: the status before BIRD last started is from an earlier boot: no neighbour held"; return 0; fi',
  '      if awk -v s="$csince" -v p="$pup" \'BEGIN { exit !(s == "-" || s + 0 < p + 0) }\'; then why="no status was written since BIRD restarted"',
  '      elif awk -v s="$csince" -v p="$pup" -v f="$OSPF_FRESH_S" \'BEGIN { exit !(s - p > f) }\'; then',
  '        echo "ok segment $seg: OSPF on $link: WARNING: the status before BIRD last started was written more than ${OSPF_FRESH_S}s before it: no neighbour held"; return 0',
  '      elif [ "$cread" != yes ]; then why="BIRD cannot be read since it restarted"',
  "      else",
  '        why=$(echo "$held" | while read -r rid addr; do',
  '          st=$(echo "$now" | awk -v r="$rid" \'$1 == "N" && $2 == r { print $4; exit }\')',
  '          if [ -z "$st" ]; then echo "neighbour $rid ($addr) was Full before BIRD restarted and is gone"',
  '          elif [ "$st" != Full ]; then echo "neighbour $rid ($addr) was Full before BIRD restarted and is $st"; fi',
  '        done | awk \'NR > 1 { printf "; " } { printf "%s", $0 }\')',
  "      fi",
  '    else why="no status was written since BIRD restarted"; fi',
  '    if [ -z "$why" ]; then echo "ok segment $seg: OSPF on $link: $(echo "$held" | awk \'{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }\') Full again since BIRD restarted"; return 0; fi',
  '    [ "$(uptime_s)" -lt "$end" ] || break',
  "    sleep 1",
  "  done",
  '  echo "FAIL segment $seg: OSPF on $link: $why (after ${OSPF_REFORM_S}s)"; bad=1',
  "}",
];

/**
 * The probe script (POSIX sh: busybox in the image). Arguments: the names of the segments to probe. The tools come
 * from PATH: dhcp4-probe, dhcp6-probe and rdisc6 of the services image; OSPF's status from OSPF_STATUS_DIR (the
 * pod's environment). `reformS`: OSPF_REFORM_S unless a test waits less.
 */
export function segmentProbeScript(probes: SegmentProbe[], reformS = OSPF_REFORM_S): string {
  return [
    "set -u",
    `DHCP_MS=${DHCP_MS}`,
    `RA_MS=${RA_MS}`,
    "bad=0",
    ...(probes.some((p) => p.ospf)
      ? [`OSPF_REFORM_S=${reformS}`, `OSPF_FRESH_S=${OSPF_PREVIOUS_FRESH_S}`, ...OSPF_CHECK]
      : []),
    "check_segment() {",
    "  seg=$1 link=$2 v4=$3 v6=$4 d6=$5 d6arg=$6 ospf=$7",
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
    '  if [ -n "$ospf" ]; then ospf_check "$seg" "$link"; fi',
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
export function servicesProbeStep(image: string, probes: SegmentProbe[], reformS = OSPF_REFORM_S): ProbeStep {
  const ospf = probes.some((p) => p.ospf);
  return {
    image,
    name: "segment-probe",
    state: PROBE_STATE,
    subject: "services",
    script: segmentProbeScript(probes, reformS),
    segments: probes.map((p) => ({ segment: p.segment, fingerprint: p.fingerprint, daemons: probeDaemons(p) })),
    segmentMs: 2 * DHCP_MS + 2 * RA_MS,
    // the OSPF hold waits once: the neighbours of every segment re-form together
    ...(ospf ? { onceMs: reformS * 1000, hostDirs: [OSPF_STATUS_DIR], env: { OSPF_STATUS_DIR: OSPF_STATUS_DIR } } : {}),
    // NET_BIND_SERVICE: the DHCPv6 client port (546) is a privileged one.
    capabilities: ["NET_RAW", ...(probes.some((p) => p.dhcp6) ? ["NET_BIND_SERVICE"] : [])],
    blame: [
      { daemon: "kea-dhcp4", pattern: "DHCPv4 " },
      { daemon: "kea-dhcp6", pattern: "DHCPv6 " },
      { daemon: "radvd", pattern: "RA " },
      ...(ospf ? [{ daemon: "bird", pattern: "OSPF " }] : []),
    ],
  };
}
