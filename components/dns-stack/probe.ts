/**
 * The DNS probe: what the router checks from its own side once the DNS daemons rolled out — on each segment of a
 * zone the stack serves that the change touched, the router's addresses there (the segment's gateways, where its
 * clients send their queries) answer the router's own name in the segment's domain with that very address: an A
 * query at the IPv4 gateway, an AAAA query at the IPv6 one. The name is the site's own (Knot is authoritative for
 * it, through Unbound's stub and dnsdist), so it answers without the internet, and a wrong listener, a broken
 * chain or a zone that lost the record all fail it. The tool is the DNS image's busybox nslookup; each query is
 * bounded (QUERY_S, one try), so a segment costs at most two seconds. The script runs in the DNS image on the host
 * network (the rollout gate's pod, components/network-services/rollout.ts), takes the segment names to probe as
 * its arguments, prints one line per query (`ok …` or `FAIL segment NAME: DNS at ADDRESS: …`) and exits 1 when any
 * failed. Pure: plain text.
 */
import { createHash } from "node:crypto";
import type { SitePlan } from "../site/plan";
import { familyOf } from "../site/ip";
import { q } from "../talos-node/scripts";
import type { ProbeStep } from "../network-services/rollout";
import type { DnsPlan } from "./plan";

/** What one segment must answer. */
export interface DnsProbe {
  /** The segment's name (router:segments[].name), for messages. */
  segment: string;
  /** The router's name in the segment's domain (`<hostname>.<segment>.<site domain>`). */
  name: string;
  /** The segment's gateway addresses: each must answer `name` with itself. */
  servers: string[];
  /** SHA-256 of what the DNS stack was told about the segment (the segment and its zone): a change touches it. */
  fingerprint: string;
}

/** Longest wait for one answer, in seconds (nslookup's -timeout, with one try). */
export const QUERY_S = 1;
/** The daemons a query passes through: dnsdist, then Unbound, then Knot (the site's zone is a stub to it). */
export const DNS_PROBE_DAEMONS = ["dns-front", "dns-resolver", "dns-auth"];
/** The ConfigMap that remembers what last answered DNS (apart from the services' probe state). */
export const DNS_PROBE_STATE = "dns-probe-state";

/** The probes of every segment of a zone the stack serves, by segment name. */
export function dnsProbes(plan: SitePlan, dns: DnsPlan): DnsProbe[] {
  const out: DnsProbe[] = [];
  for (const zone of dns.zones)
    for (const name of zone.segments) {
      const seg = plan.segments.find((s) => s.name === name)!;
      const servers = [seg.ipv4?.gateway, seg.ipv6?.gateway].filter((a): a is string => !!a);
      if (servers.length === 0) continue;
      const fingerprint = createHash("sha256")
        .update(JSON.stringify({ segment: seg, zone }))
        .digest("hex");
      out.push({ segment: name, name: `${plan.hostname}.${seg.domain}`, servers, fingerprint });
    }
  return out.sort((a, b) => a.segment.localeCompare(b.segment));
}

/** The queries of one segment: `check_dns` per gateway address. */
function caseOf(p: DnsProbe): string {
  const checks = p.servers.map(
    (s) => `check_dns ${[p.segment, p.name, s, familyOf(s) === 4 ? "a" : "aaaa"].map(q).join(" ")}`,
  );
  return `    ${q(p.segment)}) ${checks.join("; ")} ;;`;
}

/**
 * The probe script (POSIX sh: busybox in the image). Arguments: the names of the segments to probe. nslookup
 * comes from PATH (busybox's, whose answer lines follow a `Name:` line as `Address: A`).
 */
export function dnsProbeScript(probes: DnsProbe[]): string {
  return [
    "set -u",
    `QUERY_S=${QUERY_S}`,
    "bad=0",
    "check_dns() {",
    "  seg=$1 name=$2 server=$3 type=$4",
    '  out=$(nslookup -type="$type" -timeout="$QUERY_S" -retry=1 "$name" "$server" 2>&1)',
    "  got=$(echo \"$out\" | sed -n '/^Name:/,$s/^Address: *//p' | tr '\\n' ' ')",
    '  case " $got" in',
    '    *" $server "*) echo "ok segment $seg: DNS at $server answers $name $type with $server" ;;',
    '    " ") echo "FAIL segment $seg: DNS at $server: no answer for $name $type within ${QUERY_S}s ($(echo "$out" | grep -v \'^[[:space:]]*$\' | tail -n 1))"; bad=1 ;;',
    '    *) echo "FAIL segment $seg: DNS at $server: $name $type is ${got}not $server"; bad=1 ;;',
    "  esac",
    "}",
    'for s in "$@"; do',
    '  case "$s" in',
    ...probes.map(caseOf),
    '    *) echo "FAIL segment $s: not a segment the router answers DNS on"; bad=1 ;;',
    "  esac",
    "done",
    'exit "$bad"',
  ].join("\n");
}

/** The rollout gate's probe step of the DNS stack: this script in the DNS image, with no capability. */
export function dnsProbeStep(image: string, probes: DnsProbe[]): ProbeStep {
  return {
    image,
    name: "dns-probe",
    state: DNS_PROBE_STATE,
    subject: "DNS daemons",
    script: dnsProbeScript(probes),
    segments: probes.map((p) => ({ segment: p.segment, fingerprint: p.fingerprint, daemons: DNS_PROBE_DAEMONS })),
    segmentMs: 2 * QUERY_S * 1000 + 500,
    capabilities: [],
    blame: DNS_PROBE_DAEMONS.map((daemon) => ({ daemon, pattern: "DNS at " })),
  };
}
