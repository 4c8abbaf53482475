/**
 * The DNS stack's place on the appliance, apart from its tests (so that benchmarks run it as the e2e does): the
 * pods the appliance runs for it and the test internet's DNS it resolves through. The internet host already serves
 * ports 53 and 853 (the policy matrix's probes), so its DNS (test/dns/lib/internet.ts: our signed root answering
 * every name, a signed and a broken-signature zone, a DoT resolver on the site's upstream addresses with a
 * certificate of a test CA for their names) listens on ports of its own and a DNAT there takes the router's
 * queries to the upstreams to it. The router trusts our root's key and the test CA, as its image trusts the real
 * ones (the CA bundle the feeds job's `ca` line names is the test CA).
 *
 * The feeds job runs for real: the internet's lists server (test/e2e/tools/feed-server.mjs on `lists4`) serves
 * every feed URL of the site, with a certificate of the test CA for the URLs' host names, and bodies the tests
 * publish; the internet's resolver answers those names with `lists4`. The job's pod resolves them as on the node:
 * its resolv.conf (the node's, pods.ts) names Talos' host DNS at 127.0.0.53, which forwards to the site's
 * upstreams as the rendered ResolverConfig says (over DoT when some upstream speaks it); here an Unbound
 * forwarder at 127.0.0.53 in the router's namespace stands in for it (CoreDNS, between the pod and the host DNS
 * on the node, only forwards such names). The job is the image's program (images/dns/dns-feeds with router-fetch)
 * in the pod as rendered (unprivileged, its volumes); the tests run it on demand (`--once` with every list due)
 * instead of on its timer.
 */
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { chownSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { PATHS } from "../../../../components/dns-stack/plan";
import { DNS_SECRET, NOBODY } from "../../../../components/dns-stack/k8s";
import type { Site } from "../../../../components/site/schema";
import { familyOf } from "../../../../components/site/ip";
import { programsDir, removeProgramsDir } from "../../../dns/lib/bed";
import { buildStats, writeTestSecrets } from "../../../dns/lib/fixtures";
import { buildInternetDns, TEST_UNBOUND, type InternetDns, type InternetDnsAddresses } from "../../../dns/lib/internet";
import { waitFor } from "../../../helpers/wait";
import { ROOT, type Appliance } from "../appliance";

/** The test internet's DNS on the appliance's internet host (public-looking: the XDP guard drops bogons). */
export const NET: Omit<InternetDnsAddresses, "resolver4"> = {
  authoritative4: "193.0.14.129",
  resolverName: "resolver.example",
  plain4: "93.184.215.80",
  good4: "93.184.215.81",
  broken4: "93.184.215.82",
  lists4: "93.184.215.83",
};
/** Ports the internet's DNS listens on (53 and 853 are the probe servers'). */
export const AUTH_PORT = 5300;
export const PLAIN_PORT = 8053;
export const TLS_PORT = 8853;
/** The first port the lists server listens on (the feed URLs' ports are taken to it and the next ones). */
export const FEED_PORT = 44300;

/** The name a fetched list holds in the appliance (its feed's body, as first published). */
export function feedName(list: string): string {
  return `${list}.feed.plain.example`;
}

/** Where the Talos host DNS stand-in answers (the node's resolv.conf, pods.ts NODE_FILES). */
const HOST_DNS = "127.0.0.53";

/** The feed URLs of the site's fetched lists, by list name. */
export function feedUrls(site: Site): Map<string, URL> {
  return new Map(site.dns.lists.flatMap((l) => (l.url ? [[l.name, new URL(l.url)] as const] : [])));
}

/** The lists server's directory of bodies (one file per URL, feed-server.mjs). */
function feedBodies(app: Appliance): string {
  return join(app.work, "internet-dns", "feeds");
}

/**
 * Publishes a list's feed body on the lists server, replaced by rename as a publisher would: `text` as given, or
 * a hosts file of `names` padded to `count` entries (the list's `minEntries` by default) with names of its own
 * (below `filler.plain.example`).
 */
export function publishFeed(
  app: Appliance,
  list: string,
  body: { names: string[]; count?: number } | { text: string },
): void {
  const l = app.site.dns.lists.find((x) => x.name === list);
  const url = feedUrls(app.site).get(list);
  if (!l || !url) throw new Error(`list ${list} has no feed URL`);
  let text: string;
  if ("text" in body) text = body.text;
  else {
    const pad = Array.from(
      { length: Math.max(0, (body.count ?? l.minEntries) - body.names.length) },
      (_, i) => `n${i}.${list}.filler.plain.example`,
    );
    text = ["# the test internet's list", ...[...body.names, ...pad].map((n) => `0.0.0.0 ${n}`), ""].join("\n");
  }
  const file = join(feedBodies(app), encodeURIComponent(`${url.hostname}${url.pathname}${url.search}`));
  writeFileSync(`${file}.new`, text);
  renameSync(`${file}.new`, file);
}

/** One run of the feeds job: its exit code and output. */
export interface FeedsRun {
  code: number | null;
  log: string;
}

/**
 * Runs the feeds job once, on demand, as its pod runs it (the rendered command with `--once`, unprivileged as
 * rendered, its volumes), with every list due (its timer's files removed); resolves when it exits.
 */
export async function runFeeds(app: Appliance): Promise<FeedsRun> {
  const dir = app.pods.hostPath(PATHS.lists);
  for (const f of readdirSync(dir)) if (f.endsWith(".next")) rmSync(join(dir, f));
  const spec = app.pods.spec("dns-feeds");
  const d = app.pods.start({ ...spec, command: [...spec.command, "--once"] }, spec.capabilities, true);
  await waitFor("the feeds job to finish", () => d.exited, 60_000, 50);
  return { code: d.exitCode, log: d.log() };
}

/**
 * The feed URLs' ports (443 for https without one) → the lists server's own ports: the internet host's probe
 * servers hold 443, so the server listens on ports of its own and a DNAT takes the URLs' ports to them.
 */
function feedPorts(site: Site): Map<number, number> {
  const ports = [...new Set([...feedUrls(site).values()].map((u) => Number(u.port || "443")))].sort((a, b) => a - b);
  return new Map(ports.map((p, i) => [p, FEED_PORT + i]));
}

/** The lists server on the internet host: every feed URL's host name on `lists4`. */
async function startFeedServer(app: Appliance, internet: InternetDns): Promise<void> {
  const ports = feedPorts(app.site);
  if (!ports.size) return;
  app.topology.addInternetAddress(NET.lists4);
  mkdirSync(feedBodies(app), { recursive: true });
  const d = app.shell.daemon(`${app.inet}-feeds`, app.inet, [
    "node",
    join(ROOT, "test/e2e/tools/feed-server.mjs"),
    NET.lists4,
    join(internet.dir, "lists.pem"),
    join(internet.dir, "lists.key"),
    feedBodies(app),
    ...[...ports.values()].map(String),
  ]);
  for (const l of feedUrls(app.site).keys()) publishFeed(app, l, { names: [feedName(l)] });
  await waitFor("the lists server to listen", () => d.log().includes("listening"), 10_000, 50).catch((e: Error) => {
    throw new Error(`${e.message}\n${d.log()}`);
  });
}

/**
 * The stand-in for Talos' host DNS in the router's namespace: forwards every name to the site's IPv4 upstreams as
 * the rendered ResolverConfig names them (over DoT, checking each upstream's tlsServerName against the image's CA
 * bundle, when some upstream speaks DoT, as the router's resolver does; else plain DNS), without validating.
 */
function startHostDns(app: Appliance, internet: InternetDns): void {
  const ups = app.site.dns.upstreams.filter((u) => familyOf(u.address) === 4);
  const dot = ups.some((u) => u.protocol === "DoT");
  const addrs = ups
    .filter((u) => !dot || u.protocol === "DoT")
    .map((u) => (dot ? `${u.address}@853${u.tlsServerName ? `#${u.tlsServerName}` : ""}` : `${u.address}@53`));
  const conf = join(internet.dir, "host-dns.conf");
  writeFileSync(
    conf,
    [
      "server:",
      `  interface: ${HOST_DNS}@53`,
      "  access-control: 127.0.0.0/8 allow",
      ...TEST_UNBOUND,
      `  tls-cert-bundle: ${join(internet.dir, "ca.pem")}`,
      "forward-zone:",
      '  name: "."',
      `  forward-tls-upstream: ${dot ? "yes" : "no"}`,
      ...addrs.map((a) => `  forward-addr: ${a}`),
      "remote-control:",
      "  control-enable: no",
      "",
    ].join("\n"),
  );
  app.shell.daemon(`${app.router}-host-dns`, app.router, ["unbound", "-d", "-c", conf]);
}

/** The internet's DNS: built, started on the internet host, the upstreams' ports taken to it. */
export async function startInternetDns(app: Appliance): Promise<void> {
  const site = app.site;
  if (!site.dns.forward)
    throw new Error("router:dns.forward false (recursion from the real root servers) is not modelled by the appliance");
  const ups = site.dns.upstreams;
  const v4 = ups.filter((u) => familyOf(u.address) === 4);
  const dir = join(app.work, "internet-dns");
  const listen = (u: (typeof ups)[number], port: number) => `${u.address}@${port}`;
  const internet = buildInternetDns(dir, {
    addresses: { ...NET, resolver4: v4[0]?.address ?? NET.authoritative4 },
    authPort: AUTH_PORT,
    resolverPlain: ups.map((u) => listen(u, PLAIN_PORT)),
    resolverTls: ups.map((u) => listen(u, TLS_PORT)),
    tlsPort: TLS_PORT,
    resolverNames: [...new Set(ups.flatMap((u) => (u.tlsServerName ? [u.tlsServerName] : [])))].sort(),
    rootWildcard: true,
    listsHosts: [...new Set([...feedUrls(site).values()].map((u) => u.hostname))].sort(),
  });
  app.topology.addInternetAddress(NET.authoritative4);
  for (const d of internet.daemons.filter((x) => x.name !== "internet-lists"))
    app.shell.daemon(`${app.inet}-${d.name}`, app.inet, d.argv);
  // The router asks the upstreams at 53 (Do53) or 853 (DoT); the internet's resolver answers at its own ports.
  const rules = ups.flatMap((u) => {
    const f = familyOf(u.address) === 4 ? "ip" : "ip6";
    const to = (port: number) => (f === "ip" ? `${u.address}:${port}` : `[${u.address}]:${port}`);
    return [
      `${f} daddr ${u.address} tcp dport 853 dnat ${f} to ${to(TLS_PORT)}`,
      `${f} daddr ${u.address} udp dport 53 dnat ${f} to ${to(PLAIN_PORT)}`,
      `${f} daddr ${u.address} tcp dport 53 dnat ${f} to ${to(PLAIN_PORT)}`,
    ];
  });
  for (const [from, to] of feedPorts(site))
    rules.push(`ip daddr ${NET.lists4} tcp dport ${from} dnat ip to ${NET.lists4}:${to}`);
  const nft = ["table inet e2e_dns {", "\tchain prerouting {", "\t\ttype nat hook prerouting priority dstnat;"];
  app.exec(app.inet, ["nft", "-f", "-"], {
    input: [...nft, ...rules.map((r) => `\t\t${r}`), "\t}", "}", ""].join("\n"),
  });
  // What the router's image brings, with the test internet's keys: the root trust anchor (the resolver keeps it
  // in state, seeded from the image when missing), the CA bundle, the stack's own programs.
  writeFileSync(join(app.pods.hostPath(PATHS.unboundState), "root.key"), internet.rootAnchor);
  app.pods.imageFiles.set(PATHS.caBundle, join(dir, "ca.pem"));
  app.pods.secrets.set(DNS_SECRET, writeTestSecrets(join(app.work, "dns-secrets")));
  buildStats();
  execFileSync("flock", [join(ROOT, "images/dns/Makefile"), "make", "-s", "-C", join(ROOT, "images/dns"), "fetch"], {
    stdio: "pipe",
  });
  // a world-readable copy: the unprivileged feeds job cannot reach a checkout under a private directory
  app.pods.imagePath.push(programsDir());
  app.onStop.push(removeProgramsDir);
  // what the feeds pod's init step does (k8s.ts): the lists' directory is the unprivileged job's
  chownSync(app.pods.hostPath(PATHS.lists), NOBODY, NOBODY);
  await startFeedServer(app, internet);
  startHostDns(app, internet);
  await waitFor(
    "the internet's resolver to answer",
    () =>
      /status: NOERROR/.test(
        app.exec(
          app.inet,
          ["dig", "+time=1", "+tries=1", "-p", String(PLAIN_PORT), `@${ups[0].address}`, "www.plain.example"],
          {
            allowFail: true,
          },
        ).stdout,
      ),
    20_000,
    250,
  );
}
