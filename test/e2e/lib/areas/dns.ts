/**
 * The DNS stack on the appliance: the render's DNS pods (dnsdist, Unbound, Knot, Kea's D2, the stats collector)
 * run as their DaemonSets with Kea handing out leases, and the internet gets DNS of its own (dns-internet.ts: our
 * signed root, a signed and a broken-signature zone, a DoT resolver on the site's upstream addresses) and a server
 * of the site's feed URLs. The feeds job runs for real, on demand (dns-internet.ts runFeeds): once before the first
 * test's queries (a fetched list holds `feedName(list)`), and again where a test publishes a new body.
 *
 * Every expectation comes from the site's keys as documented (components/site/schema-dns.ts): the zones whose
 * services include dns and have a segment are served, at their segments' gateways; a profile blocks a name one of
 * its block lists covers (a list entry covers every name below it) unless an allow list covers it, or, allow-only,
 * every name no allow list covers; blocked names answer NXDOMAIN or the null address; forced zones' queries to
 * other servers are answered by the router (redirect) or refused (reject); a DHCP client's name is
 * `<hostname>.<segment>.<domain>`.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { REFRESH_SECONDS } from "../../../../components/dns-stack/dnsdist";
import { NOBODY } from "../../../../components/dns-stack/k8s";
import { PATHS } from "../../../../components/dns-stack/plan";
import type { Site } from "../../../../components/site/schema";
import type { SegmentPlan, SitePlan } from "../../../../components/site/plan";
import { BROKEN_ALTERED } from "../../../dns/lib/internet";
import { dnsPod } from "../pods";
import { feedName, feedUrls, NET, publishFeed, runFeeds, startInternetDns, type FeedsRun } from "./dns-internet";
import { sleep, waitFor } from "../../../helpers/wait";
import type { Appliance, Host } from "../appliance";
import { INTERNET } from "../internet";
import type { Area, SuiteContext } from "../suite";

// ------------------------------------------------------------------------------------------------ the site's DNS

/** Zones the router answers DNS in: they have a segment and their services include dns (the default's do). */
export function servedZones(site: Site): string[] {
  return site.zones
    .filter((z) => site.segments.some((s) => s.zone === z.name) && (z.services ?? ["dns"]).includes("dns"))
    .map((z) => z.name);
}

function zoneSettings(site: Site, zone: string) {
  return site.dns.zones.find((z) => z.zone === zone);
}

/** A list entry covers the name and every name below it. */
function covers(entries: string[], name: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, "");
  return entries.some((e) => n === e.toLowerCase() || n.endsWith(`.${e.toLowerCase()}`));
}

/** Every name a list holds on the appliance: its inline entries and, when fetched, the name written for it. */
function listNames(site: Site, list: string): string[] {
  const l = site.dns.lists.find((x) => x.name === list);
  if (!l) return [];
  return [...l.entries, ...(l.url ? [feedName(l.name)] : [])];
}

/** What a zone's client gets for an internet name: the answer of the test internet, or the blocked answer. */
export function expectedAnswer(site: Site, zone: string, name: string): string {
  const settings = zoneSettings(site, zone);
  const profile = site.dns.profiles.find((p) => p.name === settings?.profile);
  if (!profile) return NET.plain4;
  const allowed = profile.allow.some((l) => covers(listNames(site, l), name));
  const blocked = profile.allowOnly
    ? !allowed
    : !allowed && profile.block.some((l) => covers(listNames(site, l), name));
  if (!blocked) return NET.plain4;
  return profile.blockedAnswer === "null" ? "0.0.0.0" : "NXDOMAIN";
}

/** Names the filtering table asks: each list's names and a name below each, and one on no list. */
function filterNames(site: Site): string[] {
  const names = site.dns.lists.flatMap((l) => listNames(site, l.name).flatMap((n) => [n, `e2e.${n}`]));
  return [...new Set([...names, "nolist.plain.example"])].sort();
}

function segmentsOf(plan: SitePlan, zone: string): SegmentPlan[] {
  return plan.segments.filter((s) => s.zone === zone && s.ipv4);
}

/** Whether the resolver forwards over DoT: forwarding on and some upstream speaks DoT (DoT ones win). */
function forwardsDot(site: Site): boolean {
  return site.dns.forward && site.dns.upstreams.some((u) => u.protocol === "DoT");
}

// ------------------------------------------------------------------------------------------------ queries

interface Answer {
  status: string;
  flags: string[];
  answers: string[];
  text: string;
}

/** dig from a host (one try, short timeout); status "NO ANSWER" when nothing DNS came back. */
async function dig(
  app: Appliance,
  h: Host,
  server: string,
  name: string,
  type = "A",
  extra: string[] = [],
): Promise<Answer> {
  // a stub resolver's patience (glibc: 5 s, 2 attempts), not a single 2 s try: on shared CPUs a first answer that
  // goes upstream over DoT can take longer, and a lost datagram is retried as a client would
  const r = await app.run(h.ns, ["dig", "+time=3", "+tries=2", `@${server}`, name, type, ...extra], {
    allowFail: true,
  });
  const status = /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? "NO ANSWER";
  const flags = /flags: ([a-z ]+);/.exec(r.stdout)?.[1].split(" ") ?? [];
  const answers = [...r.stdout.matchAll(/^\S+\s+\d+\s+IN\s+(?:A|AAAA|PTR|CNAME|TXT|SRV)\s+(.+)$/gm)].map((m) => m[1]);
  return { status, flags, answers, text: r.stdout };
}

/** The answer as the tables compare it: the address, or the status when there is none. */
function shown(a: Answer): string {
  return a.answers.length === 1 && a.status === "NOERROR" ? a.answers[0] : a.status;
}

/** A served zone's main client that has an IPv4 address, and the gateway it asks. */
function askers(ctx: SuiteContext): { zone: string; h: Host; gw: string }[] {
  const app = ctx.app;
  return servedZones(ctx.site).flatMap((zone) => {
    const seg = segmentsOf(ctx.plan, zone).find((s) => app.client(s.name).addr4);
    return seg ? [{ zone, h: app.client(seg.name), gw: seg.ipv4!.gateway }] : [];
  });
}

/** The first asker whose zone's profile lets every one of `names` through to the resolver. */
function passingAsker(ctx: SuiteContext, names: string[]): ReturnType<typeof askers>[number] | undefined {
  return askers(ctx).find((a) => names.every((n) => expectedAnswer(ctx.site, a.zone, n) === NET.plain4));
}

/** The DNS pods' last output (failure messages). */
function podLogs(app: Appliance): string {
  return [...app.pods.running]
    .filter(([n]) => n.startsWith("dns-"))
    .map(([n, d]) => `--- ${n}${d.exited ? ` (exited ${d.exitCode})` : ""}\n${d.log().slice(-1200)}`)
    .join("\n");
}

/** The feeds job's first run on each appliance (every fetched list, as its pod's first loop fetches them). */
const firstFetch = new WeakMap<Appliance, Promise<void>>();

/** Runs the feeds job and fails, with its output, unless it exited 0. */
async function fetchFeeds(app: Appliance): Promise<FeedsRun> {
  const run = await runFeeds(app);
  if (run.code !== 0) throw new Error(`the feeds job exited ${run.code}:\n${run.log}`);
  return run;
}

/** The feeds job's first run: every list fetched and in use, else the job's output. */
async function fetchAll(app: Appliance): Promise<void> {
  const run = await fetchFeeds(app);
  const missing = [...feedUrls(app.site).keys()].filter(
    (l) => !run.log.includes(`"${l}: `) || run.log.includes(`"${l}: fetch failed`),
  );
  if (missing.length) throw new Error(`the feeds job did not fetch ${missing.join(", ")}:\n${run.log}`);
  await sleep(REFRESH_SECONDS * 1000 + 200); // the front opens a changed database after its refresh interval
}

/**
 * Waits for the router's DNS to answer a client of a served zone (the pods started with the clients), the feeds
 * job having fetched every list once and the front having had its refresh interval to open them.
 */
async function ready(ctx: SuiteContext): Promise<void> {
  const app = ctx.app;
  if (feedUrls(ctx.site).size && !firstFetch.has(app)) firstFetch.set(app, fetchAll(app));
  await firstFetch.get(app);
  const a = askers(ctx)[0];
  if (!a) throw new Error("no served zone has a client with an IPv4 address");
  const name = `${ctx.site.site.domain}`;
  await waitFor(
    "the router's DNS to answer",
    async () => (await dig(ctx.app, a.h, a.gw, name, "SOA")).status === "NOERROR",
    30_000,
    250,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${podLogs(ctx.app)}`);
  });
}

// ------------------------------------------------------------------------------------------------ the tests

/** Captures DNS and DoT on every WAN link while `act` runs; returns the plain-DNS and DoT packets seen. */
async function wanCapture(app: Appliance, act: () => Promise<void>): Promise<{ plain: string[]; dot: string[] }> {
  const caps = app.wans.map((w) => {
    const file = join(app.work, `dns-${w.wan.name}.pcap`);
    const d = app.shell.daemon(`dns-tcpdump-${w.wan.name}`, app.router, [
      "tcpdump",
      "-n",
      "-U",
      "--immediate-mode",
      "-i",
      w.wan.name,
      "-w",
      file,
      "port 53 or port 853",
    ]);
    return { file, d };
  });
  for (const c of caps) await waitFor("tcpdump to listen", () => c.d.log().includes("listening on"), 10_000, 50);
  await act();
  await sleep(500);
  for (const c of caps) await c.d.stop("SIGINT");
  const read = (filter: string) =>
    caps.flatMap((c) =>
      app
        .exec(app.router, ["tcpdump", "-n", "-r", c.file, filter], { allowFail: true })
        .stdout.split("\n")
        .filter(Boolean),
    );
  return { plain: read("port 53"), dot: read("tcp port 853") };
}

function resolutionTests(ctx: SuiteContext): void {
  it("answers an internet name to a client of every zone it serves, at its segment's gateway; DNSSEC: a signed answer carries AD, a broken signature is SERVFAIL", async () => {
    const app = ctx.app;
    await ready(ctx);
    const rows = await Promise.all(
      askers(ctx).map(async ({ zone, h, gw }) => {
        // a name the zone's profile lets through (an allow-only profile: an allowed name), else the blocked answer
        const candidates = [`${zone}.resolve.plain.example`, ...filterNames(ctx.site)];
        const name = candidates.find((n) => expectedAnswer(ctx.site, zone, n) === NET.plain4) ?? candidates[0];
        return { zone, name, got: shown(await dig(app, h, gw, name)), want: expectedAnswer(ctx.site, zone, name) };
      }),
    );
    expect(rows.map((r) => ({ ...r, got: r.got }))).toEqual(rows.map((r) => ({ ...r, got: r.want })));
    // DNSSEC from a zone whose profile lets both names through (an allow-only profile answers them itself)
    const asker = passingAsker(ctx, ["www.good.example", "www.broken.example"]);
    if (!asker) {
      console.log(`${ctx.title}: DNSSEC not checked: no served zone's profile lets www.good.example through`);
      return;
    }
    const { h, gw } = asker;
    const good = await dig(app, h, gw, "www.good.example", "A", ["+dnssec"]);
    const broken = await dig(app, h, gw, "www.broken.example");
    if (ctx.site.dns.dnssec) {
      expect({ good: good.answers[0], ad: good.flags.includes("ad"), broken: broken.status }).toEqual({
        good: NET.good4,
        ad: true,
        broken: "SERVFAIL",
      });
    } else {
      expect({ ad: good.flags.includes("ad"), broken: broken.answers }).toEqual({
        ad: false,
        broken: [BROKEN_ALTERED],
      });
    }
  }, 60_000);

  if (forwardsDot(ctx.site))
    it("lets no plain DNS leave on the WANs: the upstreams are asked over DoT", async () => {
      const app = ctx.app;
      const stamp = Date.now().toString(36);
      const leak = (zone: string) => [0, 1, 2, 3, 4].map((i) => `leak${i}-${stamp}.${zone}.plain.example`);
      // names that reach the upstreams: from a zone whose profile lets them through (not answered by the front)
      const asker = askers(ctx).find((a) =>
        leak(a.zone).every((n) => expectedAnswer(ctx.site, a.zone, n) === NET.plain4),
      );
      if (!asker) {
        console.log(`${ctx.title}: no served zone's profile lets an internet name through: nothing goes upstream`);
        return;
      }
      const { h, zone, gw } = asker;
      const names = leak(zone);
      const cap = await wanCapture(app, async () => {
        for (const n of names) expect(shown(await dig(app, h, gw, n)), n).toBe(expectedAnswer(ctx.site, zone, n));
      });
      expect(cap.plain, "plain DNS on the WANs").toEqual([]);
      expect(cap.dot.length, "DoT to the upstreams").toBeGreaterThan(0);
    }, 60_000);
}

function filteringTests(ctx: SuiteContext): void {
  const zones = servedZones(ctx.site).filter((z) => zoneSettings(ctx.site, z)?.profile);
  if (!zones.length || !ctx.site.dns.lists.length) return;
  it("blocks a listed name in the zones whose profile blocks it (NXDOMAIN or the null address, as set), lets allowed names pass and resolves it in the other zones; a fetched list is the feeds job's, fetched from its URL as its unprivileged user", async () => {
    const app = ctx.app;
    await ready(ctx);
    // what the job left of each fetched list: its database, owned by the job's user, and a status file
    const dir = app.pods.hostPath(PATHS.lists);
    const fetched = [...feedUrls(ctx.site).keys()].map((list) => ({
      list,
      owner: statSync(join(dir, `${list}.cdb`)).uid,
      status: /^entries (\d+)$/m.exec(readFileSync(join(dir, `${list}.status`), "utf8"))?.[1],
    }));
    expect(fetched).toEqual(
      fetched.map(({ list }) => ({
        list,
        owner: NOBODY,
        status: String(ctx.site.dns.lists.find((l) => l.name === list)!.minEntries),
      })),
    );
    const names = filterNames(ctx.site);
    // one zone at a time (its names at once): a few dozen queries in flight, not every zone's together
    const rows: { zone: string; name: string; got: string; want: string }[] = [];
    for (const { zone, h, gw } of askers(ctx))
      rows.push(
        ...(await Promise.all(
          names.map(async (name) => ({
            zone,
            name,
            got: shown(await dig(app, h, gw, name)),
            want: expectedAnswer(ctx.site, zone, name),
          })),
        )),
      );
    const line = (r: { zone: string; name: string }, v: string) => `${r.zone} ${r.name} ${v}`;
    expect(rows.map((r) => line(r, r.got))).toEqual(rows.map((r) => line(r, r.want)));
    const blocked = rows.filter((r) => r.want !== NET.plain4).length;
    console.log(`${ctx.title}: ${rows.length} filtered queries, ${blocked} blocked, as the profiles say`);
  }, 60_000);
}

/** A served zone whose profile blocks a fetched list (not allow-only), and that list. */
function feedZone(ctx: SuiteContext): { zone: string; list: string; want: string } | undefined {
  for (const zone of servedZones(ctx.site)) {
    const p = ctx.site.dns.profiles.find((x) => x.name === zoneSettings(ctx.site, zone)?.profile);
    const list = p && !p.allowOnly ? p.block.find((l) => feedUrls(ctx.site).has(l)) : undefined;
    if (p && list) return { zone, list, want: p.blockedAnswer === "null" ? "0.0.0.0" : "NXDOMAIN" };
  }
  return undefined;
}

/** A metric of the DNS stack's collector (router-dns-stats), scraped on the router as Prometheus does. */
function dnsMetric(ctx: SuiteContext, series: string): number {
  const text = ctx.app.exec(ctx.app.router, [
    "curl",
    "-s",
    `http://127.0.0.1:${ctx.site.dns.metricsPort}/metrics`,
  ]).stdout;
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no ${series} in the DNS metrics:\n${text}`);
  return Number(line.slice(series.length + 1));
}

function swapTests(ctx: SuiteContext): void {
  const feed = feedZone(ctx);
  if (!feed) return;
  const { zone, list, want } = feed;
  it("loses no query while the feeds job replaces a fetched list under load (its feed's body changed), and the new list takes effect", async () => {
    const app = ctx.app;
    await ready(ctx);
    const a = askers(ctx).find((x) => x.zone === zone);
    if (!a) throw new Error(`no client in zone ${zone}`);
    const added = `swapped-${Date.now().toString(36)}.plain.example`;
    const names = [feedName(list), `load.${zone}.plain.example`, added, `www.good.example`];
    const queries = join(app.work, "dns-queries.txt");
    writeFileSync(queries, names.map((n) => `${n} A\n`).join(""));
    const perf = app.run(a.h.ns, ["dnsperf", "-s", a.gw, "-d", queries, "-l", "6", "-Q", "1000", "-c", "2"], {
      timeoutMs: 60_000,
      allowFail: true,
    });
    // the job's log says when it put a new list in use (images/dns/dns-feeds)
    const inUse = new RegExp(`"${list}: \\d+ names in use"`);
    let swaps = 0;
    for (let i = 0; i < 4; i++) {
      await sleep(800);
      publishFeed(app, list, { names: i % 2 ? [feedName(list)] : [feedName(list), added] });
      if (inUse.test((await fetchFeeds(app)).log)) swaps++;
    }
    publishFeed(app, list, { names: [feedName(list), added] });
    if (inUse.test((await fetchFeeds(app)).log)) swaps++;
    const r = await perf;
    const count = (what: string) => Number(new RegExp(`Queries ${what}:\\s+(\\d+)`).exec(r.stdout)?.[1]);
    expect({ lost: count("lost"), completed: count("completed") }, r.stdout + r.stderr).toEqual({
      lost: 0,
      completed: count("sent"),
    });
    expect(count("sent"), r.stdout).toBeGreaterThan(3000);
    expect(swaps, "lists the job put in use").toBe(5);
    await waitFor(
      "the replaced list to take effect",
      async () => shown(await dig(app, a.h, a.gw, added)) === want,
      10_000,
      200,
    );
  }, 60_000);

  it("keeps the last good list when a feed's download is junk (an HTML page, a list short of its minEntries), and counts each failure in router_dns_list_failures_total", async () => {
    const app = ctx.app;
    await ready(ctx);
    const a = askers(ctx).find((x) => x.zone === zone)!;
    const minEntries = ctx.site.dns.lists.find((l) => l.name === list)!.minEntries;
    const junk = `junk-${Date.now().toString(36)}.plain.example`;
    const bodies: { what: string; body: Parameters<typeof publishFeed>[2] }[] = [
      { what: "an HTML page", body: { text: `<html><body><p>${junk} is unavailable</p></body></html>\n` } },
      ...(minEntries > 1 ? [{ what: "a short list", body: { names: [junk], count: minEntries - 1 } }] : []),
    ];
    const series = `router_dns_list_failures_total{list="${list}"}`;
    const before = dnsMetric(ctx, series);
    for (const { what, body } of bodies) {
      publishFeed(app, list, body);
      const run = await fetchFeeds(app);
      expect(run.log, what).toContain(`${list}: fetch failed or refused; the last good list stays`);
    }
    expect(dnsMetric(ctx, series)).toBe(before + bodies.length);
    await sleep(REFRESH_SECONDS * 1000 + 500); // past the front's refresh interval: a wrongly swapped list would show
    expect({
      listed: shown(await dig(app, a.h, a.gw, feedName(list))),
      junk: shown(await dig(app, a.h, a.gw, junk)),
    }).toEqual({ listed: want, junk: NET.plain4 });
  }, 60_000);
}

/** The first A record of the site's own (its name and address): only the router answers it. */
function ownRecord(site: Site): { name: string; address: string } | undefined {
  const r = site.dns.records.find((x) => x.type === "A");
  return r && "address" in r ? { name: r.name, address: String(r.address) } : undefined;
}

function forcedTests(ctx: SuiteContext): void {
  const own = ownRecord(ctx.site);
  const forced = servedZones(ctx.site).filter((z) => (zoneSettings(ctx.site, z)?.force ?? "off") !== "off");
  if (!forced.length || !own) return;
  it("answers a forced zone's port-53 query to an outside server from the router (redirect), or refuses it (reject)", async () => {
    const app = ctx.app;
    await ready(ctx);
    const rows = await Promise.all(
      askers(ctx)
        .filter((a) => forced.includes(a.zone))
        .map(async ({ zone, h }) => {
          const a = await dig(app, h, INTERNET.server4, own.name);
          const refused = a.status === "NO ANSWER" && /refused|unreachable/i.test(a.text);
          return { zone, got: refused ? "refused" : shown(a), mode: zoneSettings(ctx.site, zone)!.force };
        }),
    );
    // The outside server is the probe server, no DNS server: a DNS answer with the site's record is the router's.
    expect(rows).toEqual(rows.map((r) => ({ ...r, got: r.mode === "redirect" ? own.address : "refused" })));
  }, 60_000);
}

function withoutDnsTests(ctx: SuiteContext): void {
  const served = servedZones(ctx.site);
  const without = ctx.plan.segments.filter((s) => s.ipv4 && !served.includes(s.zone));
  if (!without.length || !served.length) return;
  it("tells a zone without dns no DNS server (DHCP, RA) and does not answer it, at its own gateway or a served zone's", async () => {
    const app = ctx.app;
    const other = segmentsOf(ctx.plan, served[0])[0].ipv4!.gateway;
    const rows = await Promise.all(
      without
        .filter((s) => app.client(s.name).addr4)
        .map(async (s) => {
          const h = app.client(s.name);
          const ra = s.ipv6
            ? (await app.run(h.ns, ["rdisc6", "-1", "-w", "2000", "eth0"], { allowFail: true })).stdout
            : "";
          return {
            segment: s.name,
            dhcp: h.mode.dhcp4 ? (app.dhcp.lease4(h.ns)?.dns ?? "none") : "none",
            rdnss: /Recursive DNS server/.test(ra) ? "some" : "none",
            own: (await dig(app, h, s.ipv4!.gateway, ctx.site.site.domain, "SOA")).status,
            other: (await dig(app, h, other, ctx.site.site.domain, "SOA")).status,
          };
        }),
    );
    expect(rows.length, "a client in a zone without dns").toBeGreaterThan(0);
    expect(rows).toEqual(
      rows.map((r) => ({ ...r, dhcp: "none", rdnss: "none", own: "NO ANSWER", other: "NO ANSWER" })),
    );
  }, 60_000);
}

/** The reverse name of an IPv4 address. */
function reverse4(ip: string): string {
  return `${ip.split(".").reverse().join(".")}.in-addr.arpa`;
}

/**
 * A new client on a served segment that will ask for `hostname`: its fully qualified name, and a question from a
 * client of another served segment (the same one when it is the only one).
 */
async function namedClient(ctx: SuiteContext, seg: SegmentPlan, hostname: string, index: number) {
  const app = ctx.app;
  await ready(ctx);
  const asker = askers(ctx).find((a) => a.h.segment.name !== seg.name) ?? askers(ctx)[0];
  const host = app.addHost(seg.name, hostname, index);
  const fqdn = `${hostname}.${seg.name}.${ctx.site.site.domain}`;
  const q = (name: string, type: string) => () => dig(app, asker.h, asker.gw, name, type);
  return { app, host, fqdn, q };
}

/** Waits (5 s from now) until a released name's address and pointer are gone, and reports the times. */
async function gone(
  title: string,
  name: { fqdn: string; ip: string; found: number },
  asks: (() => Promise<Answer>)[],
): Promise<void> {
  const released = Date.now();
  for (const [i, ask] of asks.entries()) await within(`the name's record ${i + 1} to go`, ask, [], released, 5000);
  console.log(
    `${title}: ${name.fqdn} (${name.ip}) resolvable ${name.found.toFixed(1)} s after its lease, gone ${((Date.now() - released) / 1000).toFixed(1)} s after its release`,
  );
}

function dynamicNameTests(ctx: SuiteContext): void {
  const served = servedZones(ctx.site);
  const seg = ctx.plan.segments.find((s) => served.includes(s.zone) && s.ipv4 && s.dhcp.enabled);
  if (!seg) return;
  it("resolves a DHCPv4 client's name (A and PTR) from another segment within 5 s of its lease, still after the resolver's and the authoritative server's pods are killed and restarted, and not within 5 s of its release", async () => {
    const { app, host, fqdn, q } = await namedClient(ctx, seg, "e2e-laptop", 0x70);
    const client = app.dhcp.start4(host.ns, "eth0", undefined, ["-R", "-x", "hostname:e2e-laptop"]);
    const ip = await waitFor("a lease", () => app.dhcp.lease4(host.ns)?.ip, 20_000, 100);
    const leased = Date.now();
    await within("the name's A", q(fqdn, "A"), [ip], leased, 5000);
    await within("the name's PTR", q(reverse4(ip), "PTR"), [`${fqdn}.`], leased, 5000);
    const found = (Date.now() - leased) / 1000;
    // The authoritative data survive the resolver's and the authoritative server's pods being killed.
    for (const name of ["dns-auth", "dns-resolver"]) await app.pods.pod(name).stop("SIGKILL", 0);
    for (const name of ["dns-auth", "dns-resolver"]) app.pods.start(app.pods.spec(name));
    await within("the name after the restart", q(fqdn, "A"), [ip], Date.now(), 20_000);
    expect((await q(reverse4(ip), "PTR")()).answers).toEqual([`${fqdn}.`]);
    await client.stop();
    await gone(ctx.title, { fqdn, ip, found }, [q(fqdn, "A"), q(reverse4(ip), "PTR")]);
  }, 60_000);
}

/** The reverse name of an IPv6 address (RFC 3596: its 32 nibbles, last first). */
function reverse6(ip: string): string {
  const [head, tail = ""] = ip.split("::");
  const groups = (x: string) => (x ? x.split(":") : []);
  const missing = 8 - groups(head).length - groups(tail).length;
  const full = [...groups(head), ...Array<string>(ip.includes("::") ? missing : 0).fill("0"), ...groups(tail)];
  const nibbles = full.map((g) => g.padStart(4, "0")).join("");
  return `${[...nibbles].reverse().join(".")}.ip6.arpa`;
}

/** Waits until a name's records of a type are `want` (empty: gone), within `budgetMs` of `since`. */
async function within(
  what: string,
  ask: () => Promise<Answer>,
  want: string[],
  since: number,
  budgetMs: number,
): Promise<void> {
  let last: Answer | undefined;
  await waitFor(
    what,
    async () => {
      last = await ask();
      // gone means answered without the record (a query that timed out proves nothing)
      return want.length
        ? want.every((w) => last!.answers.includes(w))
        : last.status !== "NO ANSWER" && last.answers.length === 0;
    },
    Math.max(100, budgetMs - (Date.now() - since)),
    100,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\nlast answer:\n${last?.text ?? ""}`);
  });
}

function dynamicName6Tests(ctx: SuiteContext): void {
  const served = servedZones(ctx.site);
  const seg = ctx.plan.segments.find(
    (s) => served.includes(s.zone) && s.ipv6 && ctx.site.segments.find((x) => x.name === s.name)?.dhcpv6.enabled,
  );
  if (!seg) return;
  it("resolves a DHCPv6 client's name (AAAA and PTR) within 5 s of its lease, and not within 5 s of its release", async () => {
    const { app, host, fqdn, q } = await namedClient(ctx, seg, "e2e-phone", 0x71);
    const dir = join(app.work, "dns-dhclient6");
    mkdirSync(dir, { recursive: true });
    // dhclient sends the name it is given as a fully qualified one (its wire form ends at the root)
    writeFileSync(join(dir, "conf"), `send fqdn.fqdn "${fqdn}.";\nsend fqdn.server-update on;\n`);
    const args = [
      "-6",
      "-cf",
      join(dir, "conf"),
      "-lf",
      join(dir, "leases"),
      "-pf",
      join(dir, "pid"),
      "-sf",
      "/bin/true",
    ];
    await waitFor(
      "a link-local address",
      () => /inet6 fe80/.test(app.exec(host.ns, ["ip", "-6", "addr"]).stdout),
      5000,
    );
    await sleep(1000); // past DAD of the link-local address
    await app.run(host.ns, ["dhclient", ...args, "-1", "eth0"], { timeoutMs: 30_000 });
    const ip = /iaaddr ([0-9a-f:]+)/.exec(readFileSync(join(dir, "leases"), "utf8"))?.[1];
    if (!ip) throw new Error(`no DHCPv6 lease:\n${readFileSync(join(dir, "leases"), "utf8")}`);
    const leased = Date.now();
    await within("the name's AAAA", q(fqdn, "AAAA"), [ip], leased, 5000);
    await within("the name's PTR", q(reverse6(ip), "PTR"), [`${fqdn}.`], leased, 5000);
    const found = (Date.now() - leased) / 1000;
    await app.run(host.ns, ["dhclient", ...args, "-r", "eth0"], { timeoutMs: 30_000 });
    await gone(ctx.title, { fqdn, ip, found }, [q(fqdn, "AAAA"), q(reverse6(ip), "PTR")]);
  }, 60_000);
}

export const dns: Area = {
  title: "DNS",
  appliesTo: (site) => servedZones(site).length > 0,
  // the feeds job fetches the site's URLs, which the appliance's internet does not serve (see the header)
  pods: dnsPod,
  async beforeLoader(app) {
    if (servedZones(app.site).length) await startInternetDns(app);
  },
  tests(ctx) {
    resolutionTests(ctx);
    filteringTests(ctx);
    swapTests(ctx);
    forcedTests(ctx);
    withoutDnsTests(ctx);
    dynamicNameTests(ctx);
    dynamicName6Tests(ctx);
  },
};
