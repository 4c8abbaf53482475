/**
 * Unbound: the recursive resolver behind dnsdist, on the node's loopback only. It validates DNSSEC, drops
 * private addresses from public answers (rebinding protection; the site's own domain may hold them), caches,
 * prefetches, and either forwards to the site's upstreams (DoT with the certificate's name checked, never mixed
 * with plain DNS) or recurses from the root servers. The site's own zones are stubs to Knot, uncached so a
 * released lease's name is gone at once. Pure.
 */
import type { Site } from "../site/schema";
import { PATHS, PORTS, type DnsPlan } from "./plan";

const q = (s: string) => `"${s}"`;

/** Unbound's control socket (its probes use unbound-control through it). */
export const UNBOUND_CONTROL = "/run/unbound/control.sock";
/** The root trust anchor Unbound keeps current (RFC 5011), seeded from the image's copy on first start. */
export const ROOT_ANCHOR = `${PATHS.unboundState}/root.key`;

function serverBlock(dns: DnsPlan): string[] {
  const local = dns.authZones.map((z) => z.name);
  return [
    "server:",
    `  interface: 127.0.0.1@${PORTS.resolver}`,
    "  access-control: 127.0.0.0/8 allow",
    // Runs as its pod's own unprivileged user: no chroot, no user switch.
    '  username: ""',
    '  chroot: ""',
    `  directory: ${q(PATHS.unboundState)}`,
    '  pidfile: ""',
    "  use-syslog: no",
    '  logfile: ""',
    "  log-time-ascii: yes",
    "  verbosity: 1",
    "  num-threads: 1",
    "  so-reuseport: yes",
    `  do-ip6: ${dns.ipv6Upstream ? "yes" : "no"}`,
    "  prefer-ip6: no",
    "  edns-buffer-size: 1232",
    "  msg-cache-size: 16m",
    "  rrset-cache-size: 32m",
    "  prefetch: yes",
    "  prefetch-key: yes",
    // RFC 8767: an expired answer beats no answer while an upstream is unreachable.
    "  serve-expired: yes",
    "  serve-expired-ttl: 86400",
    "  serve-expired-client-timeout: 1800",
    "  qname-minimisation: yes",
    "  minimal-responses: yes",
    "  hide-identity: yes",
    "  hide-version: yes",
    "  harden-glue: yes",
    "  harden-below-nxdomain: yes",
    `  harden-dnssec-stripped: ${dns.dnssec ? "yes" : "no"}`,
    "  extended-statistics: yes",
    `  module-config: ${q(dns.dnssec ? "validator iterator" : "iterator")}`,
    ...(dns.dnssec ? [`  auto-trust-anchor-file: ${q(ROOT_ANCHOR)}`, "  val-log-level: 1"] : []),
    ...dns.trustAnchors.map((a) => `  trust-anchor: ${q(a)}`),
    `  tls-cert-bundle: ${q(PATHS.caBundle)}`,
    "  # rebinding protection: public answers may not point inside",
    ...dns.privateAddresses.map((a) => `  private-address: ${a}`),
    ...dns.privateDomains.map((d) => `  private-domain: ${q(d)}`),
    "  # the site's own zones: served by Knot, not signed, and not Unbound's built-in empty zones (home.arpa, RFC 1918)",
    "  do-not-query-localhost: no",
    ...local.map((z) => `  domain-insecure: ${q(z)}`),
    ...local.map((z) => `  local-zone: ${q(`${z}.`)} transparent`),
  ];
}

function stubs(dns: DnsPlan): string[] {
  return dns.authZones.flatMap((z) => [
    "stub-zone:",
    `  name: ${q(`${z.name}.`)}`,
    `  stub-addr: 127.0.0.1@${PORTS.authoritative}`,
    "  stub-no-cache: yes",
  ]);
}

function forward(dns: DnsPlan): string[] {
  if (dns.forwarders.length === 0) return ["# no forwarding: recursion from the root servers"];
  const tls = dns.forwarders.every((f) => f.tlsName);
  return [
    "forward-zone:",
    '  name: "."',
    `  forward-tls-upstream: ${tls ? "yes" : "no"}`,
    ...dns.forwarders.map((f) => `  forward-addr: ${f.address}@${f.port}${f.tlsName ? `#${f.tlsName}` : ""}`),
  ];
}

export function renderUnbound(site: Site, dns: DnsPlan): string {
  return [
    `# unbound of site ${site.site.name}: the recursive resolver behind dnsdist (rendered).`,
    ...serverBlock(dns),
    "remote-control:",
    "  control-enable: yes",
    `  control-interface: ${q(UNBOUND_CONTROL)}`,
    ...stubs(dns),
    ...forward(dns),
    "",
  ].join("\n");
}
