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
 * On a segment of an `encrypted` zone the probe also asks what an encrypted-DNS client asks, at the segment's first
 * gateway (IPv4 where it has one) once plain DNS answered there: DoT on 853, verifying the certificate against the
 * site's DNS CA and the router's name in the segment's domain (a DoT client configured with the name), and DoH at
 * `https://ADDRESS/dns-query`, verifying it against the CA and the address (a client configured with the URL). Both
 * must give the address back. The chain behind dnsdist just answered plain DNS, so a DoT or DoH failure is the
 * front's TLS listener (its certificate, its binding): the line names the protocol and ends in `→ dns-front`. The
 * CA certificate (public; never its key) is part of the script, written to a temporary file for kdig.
 *
 * The tools are the DNS image's busybox nslookup and Knot's kdig; each query is bounded (QUERY_S, one try), so a
 * segment costs at most QUERIES_PER_ADDRESS seconds per gateway (and TLS_QUERIES more on an encrypted zone), and a
 * segment that answers costs one query per gateway (and TLS_QUERIES more on an encrypted zone). The
 * script runs in the DNS image on the host network (the rollout gate's pod,
 * components/network-services/rollout.ts), takes the segment names to probe as its arguments, prints one line per
 * gateway query (`ok …` or `FAIL segment NAME: DNS at ADDRESS: …; … → DAEMON`, `FAIL segment NAME: DoT at ADDRESS:
 * … → dns-front`) and exits 1 when any failed.
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
  /** Whether the segment's zone has DoT and DoH on the router (its `encrypted`): those are probed too. */
  encrypted: boolean;
  /** SHA-256 of what the DNS stack was told about the segment (the segment and its zone): a change touches it. */
  fingerprint: string;
}

/** Longest wait for one answer, in seconds (nslookup's -timeout, with one try). */
export const QUERY_S = 1;
/** The daemons a query passes through: dnsdist, then Unbound, then Knot (the site's zone is a stub to it). */
export const DNS_PROBE_DAEMONS = ["dns-front", "dns-resolver", "dns-auth"];
/** Queries of one gateway address at most: the front, then (after a failure) the resolver and the authoritative. */
export const QUERIES_PER_ADDRESS = 3;
/** Queries of an encrypted zone's segment beyond the plain ones: DoT and DoH at its first gateway. */
export const TLS_QUERIES = 2;
/** Where DoT and DoH listen on the gateways (dnsdist.ts addTLSLocal, addDOHLocal). */
export const DOT_PORT = 853;
export const DOH_PORT = 443;
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
      out.push({
        segment: name,
        name: `${plan.hostname}.${seg.domain}`,
        servers,
        encrypted: zone.encrypted,
        fingerprint,
      });
    }
  return out.sort((a, b) => a.segment.localeCompare(b.segment));
}

/** The queries of one segment: `check_dns` per gateway address, then `check_tls` at the first on an encrypted zone. */
function caseOf(p: DnsProbe): string {
  const args = (s: string) => [p.segment, p.name, s, familyOf(s) === 4 ? "a" : "aaaa"].map(q).join(" ");
  const checks = p.servers.map((s) => `check_dns ${args(s)}`);
  // DoT and DoH only where plain DNS answered: a failure then is the front's TLS listener, not the chain behind it
  if (p.encrypted) checks[0] += ` && check_tls ${args(p.servers[0])}`;
  return `    ${q(p.segment)}) ${checks.join("; ")} ;;`;
}

/**
 * The TLS half of the script: the CA file and `check_tls SEGMENT NAME ADDRESS TYPE`, which asks NAME over DoT
 * (verifying NAME) and DoH (verifying ADDRESS) at ADDRESS with kdig (+short: the answer's data, one a line; its
 * `;; ` lines say what failed) and prints a line per protocol.
 */
function tlsPart(caPem: string): string[] {
  return [
    'CA="${TMPDIR:-/tmp}/dns-probe-ca.$$"',
    "trap 'rm -f \"$CA\"' EXIT",
    "cat > \"$CA\" <<'END_OF_CA'",
    caPem.trim(),
    "END_OF_CA",
    // ask_tls PROTO NAME TYPE ADDRESS: $got as ask's, $why what kdig said went wrong
    "ask_tls() {",
    `  case "$1" in DoT) how="+tls -p ${DOT_PORT} +tls-hostname=$2" ;; *) how="+https=/dns-query -p ${DOH_PORT}" ;; esac`,
    '  out=$(kdig @"$4" $how +tls-ca="$CA" +timeout="$QUERY_S" +retry=0 +short "$2" "$3" 2>&1)',
    // only address lines: kdig 3.2 may abort after a TLS timeout, and glibc's complaint is no answer
    "  got=$(echo \"$out\" | grep -E '^[0-9A-Fa-f.:]+$' | tr '\\n' ' ')",
    // (the image has no locales: kdig's warning about that says nothing about the query)
    '  why=$(echo "$out" | awk \'/^;; / && !/setlocale/ {sub(/^;; /, ""); printf "%s%s", sep, $0; sep="; "}\')',
    "}",
    "check_tls() {",
    "  seg=$1 name=$2 server=$3 type=$4",
    "  for proto in DoT DoH; do",
    '    ask_tls "$proto" "$name" "$type" "$server"',
    '    case " $got" in',
    '      *" $server "*) echo "ok segment $seg: $proto at $server answers $name $type with $server" ;;',
    '      " ") bad=1; echo "FAIL segment $seg: $proto at $server: no answer for $name $type (${why:-none within ${QUERY_S}s}), plain DNS answers → dns-front" ;;',
    '      *) bad=1; echo "FAIL segment $seg: $proto at $server: $name $type is ${got}not $server, plain DNS answers → dns-front" ;;',
    "    esac",
    "  done",
    "}",
  ];
}

/**
 * The probe script (POSIX sh: busybox in the image). Arguments: the names of the segments to probe. nslookup
 * comes from PATH (busybox's, whose answer lines follow a `Name:` line as `Address: A`; `-port=` picks the port),
 * and so does kdig (encrypted zones only). `caPem` is the site's DNS CA certificate, which an encrypted zone needs.
 */
export function dnsProbeScript(probes: DnsProbe[], caPem?: string): string {
  const tls = probes.some((p) => p.encrypted);
  if (tls && !caPem) throw new Error("the DNS probe of an encrypted zone needs the site's DNS CA certificate");
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
    "  return 1",
    "}",
    ...(tls ? tlsPart(caPem!) : []),
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
export function dnsProbeStep(image: string, probes: DnsProbe[], caPem?: string): ProbeStep {
  return {
    image,
    name: "dns-probe",
    state: DNS_PROBE_STATE,
    subject: "DNS daemons",
    script: dnsProbeScript(probes, caPem),
    segments: probes.map((p) => ({ segment: p.segment, fingerprint: p.fingerprint, daemons: DNS_PROBE_DAEMONS })),
    // two gateway addresses, each asked at most QUERIES_PER_ADDRESS times, then DoT and DoH
    segmentMs: (2 * QUERIES_PER_ADDRESS + TLS_QUERIES) * QUERY_S * 1000 + 500,
    capabilities: [],
    // The daemon a DNS, DoT or DoH line names; a line naming none (a probe that could not tell) implicates every one.
    blame: DNS_PROBE_DAEMONS.map((daemon) => ({ daemon, pattern: `(DNS|DoT|DoH) at ([^→]*|.* → ${daemon})$` })),
  };
}
