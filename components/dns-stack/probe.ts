/**
 * The DNS probe: what the router checks from its own side once the DNS daemons rolled out — on each segment of a
 * zone the stack serves that the change touched, the router's addresses there (the segment's gateways, where its
 * clients send their queries) answer the router's own name in the segment's domain with that very address: an A
 * query at the IPv4 gateway, an AAAA query at the IPv6 one. The name is the site's own (Knot is authoritative for
 * it, through Unbound's stub and dnsdist), so it answers without the internet, and a wrong listener, a broken
 * chain or a zone that lost the record all fail it.
 *
 * A failed query names the daemon that broke the chain: only then the probe asks the next hops directly, where
 * they listen on the node's loopback — Unbound (PORTS.resolver) for the same name and type; when it does not
 * answer right either, Knot (PORTS.authoritative). The resolver answering right blames the front (dns-front),
 * the authoritative server answering right blames the resolver (dns-resolver), and neither blames the
 * authoritative server (dns-auth): the line ends in `→ DAEMON`, and the rollout gate rolls back only that one.
 * busybox's nslookup always sets RD; Knot has no recursion and answers its own zones authoritatively whatever
 * the bit says (RFC 1035 §4.1.1: RD is copied into the response, recursion is optional), so it answers as it
 * answers Unbound's stub queries (which leave RD off).
 *
 * The tool is the DNS image's busybox nslookup; each query is bounded (QUERY_S, one try), so a segment costs at
 * most QUERIES_PER_ADDRESS seconds per gateway, and a segment that answers costs one query per gateway. The
 * script runs in the DNS image on the host network (the rollout gate's pod,
 * components/network-services/rollout.ts), takes the segment names to probe as its arguments, prints one line per
 * gateway query (`ok …` or `FAIL segment NAME: DNS at ADDRESS: …; … → DAEMON`) and exits 1 when any failed.
 * Pure: plain text.
 */
import { createHash } from "node:crypto";
import type { SitePlan } from "../site/plan";
import { familyOf } from "../site/ip";
import { q } from "../talos-node/scripts";
import type { ProbeStep } from "../network-services/rollout";
import { PORTS, type DnsPlan } from "./plan";

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
/** Queries of one gateway address at most: the front, then (after a failure) the resolver and the authoritative. */
export const QUERIES_PER_ADDRESS = 3;
/** Where Unbound and Knot listen on the node (unbound.ts `interface:`, knot.ts `listen:`). */
const LOOPBACK = "127.0.0.1";
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
 * comes from PATH (busybox's, whose answer lines follow a `Name:` line as `Address: A`; `-port=` picks the port).
 */
export function dnsProbeScript(probes: DnsProbe[]): string {
  return [
    "set -u",
    `QUERY_S=${QUERY_S}`,
    `LOOPBACK=${LOOPBACK} RESOLVER_PORT=${PORTS.resolver} AUTH_PORT=${PORTS.authoritative}`,
    "bad=0",
    // ask NAME TYPE SERVER [PORT]: $got is the answer's addresses (space-separated), $last the output's last line
    "ask() {",
    '  out=$(nslookup -type="$2" -timeout="$QUERY_S" -retry=1 ${4:+-port=$4} "$1" "$3" 2>&1)',
    "  got=$(echo \"$out\" | sed -n '/^Name:/,$s/^Address: *//p' | tr '\\n' ' ')",
    "  last=$(echo \"$out\" | grep -v '^[[:space:]]*$' | tail -n 1)",
    "}",
    // said WHO WANT: what the last query got, when it is not WANT
    'said() { if [ -z "$got" ]; then echo "$1 gives no address ($last)"; else echo "$1 answers ${got}not $2"; fi; }',
    // blame NAME TYPE WANT: after the front failed, which daemon of the chain broke it
    "blame() {",
    '  ask "$1" "$2" "$LOOPBACK" "$RESOLVER_PORT"',
    '  case " $got" in *" $3 "*) echo "resolver answers, front does not → dns-front"; return ;; esac',
    '  resolver=$(said "resolver at $LOOPBACK#$RESOLVER_PORT" "$3")',
    '  ask "$1" "$2" "$LOOPBACK" "$AUTH_PORT"',
    '  case " $got" in *" $3 "*) echo "authoritative answers, $resolver → dns-resolver"; return ;; esac',
    '  echo "$resolver, $(said "authoritative at $LOOPBACK#$AUTH_PORT" "$3") → dns-auth"',
    "}",
    "check_dns() {",
    "  seg=$1 name=$2 server=$3 type=$4",
    '  ask "$name" "$type" "$server"',
    '  case " $got" in',
    '    *" $server "*) echo "ok segment $seg: DNS at $server answers $name $type with $server"; return ;;',
    '    " ") front="no answer for $name $type within ${QUERY_S}s ($last)" ;;',
    '    *) front="$name $type is ${got}not $server" ;;',
    "  esac",
    "  bad=1",
    '  echo "FAIL segment $seg: DNS at $server: $front; $(blame "$name" "$type" "$server")"',
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
    // two gateway addresses, each asked at most QUERIES_PER_ADDRESS times
    segmentMs: 2 * QUERIES_PER_ADDRESS * QUERY_S * 1000 + 500,
    capabilities: [],
    // The daemon a DNS line names; a DNS line naming none (a probe that could not tell) implicates every one.
    blame: DNS_PROBE_DAEMONS.map((daemon) => ({ daemon, pattern: `DNS at ([^→]*|.* → ${daemon})$` })),
  };
}
