/**
 * The internet's DNS for tests, built offline in a directory (the DNS test bed's addresses by default, or those of
 * the virtual appliance's internet: InternetDnsOptions): a root zone of our own, signed, delegating
 *   - good.example    signed, its DS in the root: answers validate (AD bit);
 *   - broken.example  signed, its DS in the root, then an answer altered after signing: its signature fails and
 *                     a validating resolver answers SERVFAIL;
 *   - plain.example   unsigned (no DS): ordinary internet names, any name below it answers (a wildcard);
 * all served by one authoritative Knot, plus a DoT resolver (Unbound, recursing from our root through stub zones at
 * the authoritative server, not validating so that the broken zone reaches the router's validator) with a
 * certificate of a test CA for `resolver.example` (or the names asked for), and an HTTPS server of domain lists
 * (`openssl s_server -WWW` on `lists4`, serving the files of `www/`; its certificate also holds the host names of
 * `listsHosts`, which the resolver answers with `lists4`). With `rootWildcard` the root answers every
 * other name (`*.` → plain4), so that any name, e.g. a site's list entries, resolves on the test internet.
 * The router trusts our root's key as its root trust anchor. Zones are signed with BIND's dnssec-keygen and
 * dnssec-signzone. (Unbound answers NXDOMAIN for .test names on its own, so the test domains are under example.)
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NEW_EC_KEY, selfSigned } from "../../helpers/tls";

export const INTERNET_DNS = {
  /** The authoritative server of the root and the test zones. */
  authoritative4: "198.51.100.54",
  /** The DoT resolver the router forwards to (the site's upstream). */
  resolver4: "198.51.100.53",
  resolverName: "resolver.example",
  /** What plain.example's names answer. */
  plain4: "198.51.100.80",
  good4: "198.51.100.81",
  broken4: "198.51.100.82",
  /** The HTTPS server of domain lists (its certificate names this address). */
  lists4: "198.51.100.55",
} as const;

export type InternetDnsAddresses = { -readonly [K in keyof typeof INTERNET_DNS]: string };

/**
 * `server:` lines of an Unbound the tests run as a plain process: no user switch, chroot, pid file or syslog, no
 * validation (iterator only), IPv4 only.
 */
export const TEST_UNBOUND = [
  '  username: ""',
  '  chroot: ""',
  '  pidfile: ""',
  "  use-syslog: no",
  '  module-config: "iterator"',
  "  do-ip6: no",
];

/** What broken.example's name answers after its signed data was altered. */
export const BROKEN_ALTERED = "198.51.100.99";

export interface InternetDnsOptions {
  /** Addresses (the bed's INTERNET_DNS where not given). */
  addresses?: Partial<InternetDnsAddresses>;
  /** Port the authoritative server listens on (53). */
  authPort?: number;
  /** Where the resolver answers: plain DNS and DoT as Unbound `interface` lines (default resolver4@53 and @853). */
  resolverPlain?: string[];
  resolverTls?: string[];
  /** Port of the resolver's TLS service (853). */
  tlsPort?: number;
  /** Names the resolver's certificate holds (resolverName). */
  resolverNames?: string[];
  /** The root answers every name without data of its own (`*.` → plain4). */
  rootWildcard?: boolean;
  /**
   * Host names of the lists server (a site's feed URLs): its certificate holds them beside lists4, and the
   * resolver answers them with lists4 (as local data: names in the root zone would hide its wildcard below them).
   */
  listsHosts?: string[];
}

export interface InternetDns {
  dir: string;
  /** The root's DS record: the router's root trust anchor. */
  rootAnchor: string;
  /** The test CA (PEM) that signed the DoT resolver's certificate. */
  caPem: string;
  /** Commands to run in the internet's namespace (each a long-running process). */
  daemons: { name: string; argv: string[] }[];
}

function run(dir: string, cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Keys of a zone (a KSK and a ZSK) and the DS of its KSK. */
function keys(dir: string, zone: string): string {
  const ksk = run(dir, "dnssec-keygen", ["-q", "-a", "ECDSAP256SHA256", "-f", "KSK", zone]).trim();
  run(dir, "dnssec-keygen", ["-q", "-a", "ECDSAP256SHA256", zone]);
  return run(dir, "dnssec-dsfromkey", ["-2", `${ksk}.key`]).trim();
}

/** Signs zone.unsigned into zone.signed with every key of the zone in dir. */
function sign(dir: string, zone: string, file: string): void {
  run(dir, "dnssec-signzone", ["-S", "-K", dir, "-o", zone, "-f", `${file}.signed`, "-N", "keep", file]);
}

const SOA = "@ 3600 IN SOA a.root-servers.example. hostmaster.example. 1 3600 600 604800 60";

/** Builds the zones, keys and configurations in `dir`. */
export function buildInternetDns(dir: string, opts: InternetDnsOptions = {}): InternetDns {
  const I: InternetDnsAddresses = { ...INTERNET_DNS, ...opts.addresses };
  const authPort = opts.authPort ?? 53;
  const tlsPort = opts.tlsPort ?? 853;
  const names = opts.resolverNames ?? [I.resolverName];
  mkdirSync(join(dir, "knot-db"), { recursive: true });
  mkdirSync(join(dir, "knot-run"), { recursive: true });
  const zone = (name: string, body: string[]) => {
    const file = `${name === "." ? "root" : name}.zone`;
    writeFileSync(
      join(dir, file),
      [`$ORIGIN ${name === "." ? "." : `${name}.`}`, SOA, "@ 3600 IN NS a.root-servers.example.", ...body, ""].join(
        "\n",
      ),
    );
    return file;
  };
  const goodDs = keys(dir, "good.example");
  const brokenDs = keys(dir, "broken.example");
  sign(dir, "good.example", zone("good.example", [`www 300 IN A ${I.good4}`]));
  sign(dir, "broken.example", zone("broken.example", [`www 300 IN A ${I.broken4}`]));
  // Alter the signed answer: its RRSIG no longer matches (what a validating resolver must refuse).
  const signed = join(dir, "broken.example.zone.signed");
  writeFileSync(signed, readFileSync(signed, "utf8").replace(I.broken4, BROKEN_ALTERED));
  zone("plain.example", [`www 300 IN A ${I.plain4}`, `* 300 IN A ${I.plain4}`]);
  const rootDs = keys(dir, ".");
  sign(
    dir,
    ".",
    zone(".", [
      `a.root-servers.example. 3600 IN A ${I.authoritative4}`,
      "good.example. 3600 IN NS a.root-servers.example.",
      goodDs,
      "broken.example. 3600 IN NS a.root-servers.example.",
      brokenDs,
      "plain.example. 3600 IN NS a.root-servers.example.",
      ...(opts.rootWildcard ? [`*.  300 IN A ${I.plain4}`] : []),
    ]),
  );
  writeFileSync(
    join(dir, "knot.conf"),
    [
      "server:",
      `    listen: ${I.authoritative4}@${authPort}`,
      `    rundir: ${join(dir, "knot-run")}`,
      "database:",
      `    storage: ${join(dir, "knot-db")}`,
      "template:",
      "  - id: default",
      `    storage: ${dir}`,
      "zone:",
      "  - domain: .",
      "    file: root.zone.signed",
      "  - domain: good.example",
      "    file: good.example.zone.signed",
      "  - domain: broken.example",
      "    file: broken.example.zone.signed",
      "  - domain: plain.example",
      "    file: plain.example.zone",
      "",
    ].join("\n"),
  );
  // The DoT resolver's certificate, from a test CA.
  const openssl = (...args: string[]) => run(dir, "openssl", args);
  selfSigned(dir, "/CN=internet test CA");
  openssl("req", ...NEW_EC_KEY, "-keyout", "resolver.key", "-out", "resolver.csr", "-subj", `/CN=${I.resolverName}`);
  writeFileSync(join(dir, "san.ext"), `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\n`);
  openssl(
    "x509",
    "-req",
    "-in",
    "resolver.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "resolver.pem",
    "-days",
    "2",
    "-extfile",
    "san.ext",
  );
  openssl("req", ...NEW_EC_KEY, "-keyout", "lists.key", "-out", "lists.csr", "-subj", "/CN=lists");
  const listsHosts = opts.listsHosts ?? [];
  const listsSans = [`IP:${I.lists4}`, ...listsHosts.map((h) => `DNS:${h}`)];
  writeFileSync(join(dir, "lists.ext"), `subjectAltName=${listsSans.join(",")}\n`);
  openssl(
    "x509",
    "-req",
    "-in",
    "lists.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "lists.pem",
    "-days",
    "2",
    "-extfile",
    "lists.ext",
  );
  mkdirSync(join(dir, "www"), { recursive: true });
  writeFileSync(
    join(dir, "resolver.conf"),
    [
      "server:",
      ...(opts.resolverTls ?? [`${I.resolver4}@853`]).map((i) => `  interface: ${i}`),
      ...(opts.resolverPlain ?? [`${I.resolver4}@53`]).map((i) => `  interface: ${i}`),
      `  tls-port: ${tlsPort}`,
      `  tls-service-key: ${join(dir, "resolver.key")}`,
      `  tls-service-pem: ${join(dir, "resolver.pem")}`,
      "  access-control: 0.0.0.0/0 allow",
      "  access-control: ::/0 allow",
      ...TEST_UNBOUND,
      "  qname-minimisation: no",
      ...listsHosts.map((h) => `  local-data: "${h}. 300 IN A ${I.lists4}"`),
      // every zone of the test internet is on the authoritative server (its port need not be 53)
      ...[".", "good.example", "broken.example", "plain.example"].flatMap((z) => [
        "stub-zone:",
        `  name: "${z}"`,
        `  stub-addr: ${I.authoritative4}@${authPort}`,
      ]),
      "remote-control:",
      "  control-enable: no",
      "",
    ].join("\n"),
  );
  return {
    dir,
    rootAnchor: `${rootDs}\n`,
    caPem: readFileSync(join(dir, "ca.pem"), "utf8"),
    daemons: [
      { name: "internet-knot", argv: ["knotd", "-c", join(dir, "knot.conf")] },
      { name: "internet-resolver", argv: ["unbound", "-d", "-c", join(dir, "resolver.conf")] },
      {
        name: "internet-lists",
        argv: [
          "sh",
          "-c",
          `cd ${join(dir, "www")} && exec openssl s_server -quiet -WWW -accept ${I.lists4}:443 -cert ${join(dir, "lists.pem")} -key ${join(dir, "lists.key")}`,
        ],
      },
    ],
  };
}
