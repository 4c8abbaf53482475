/**
 * The DNS stack running in network namespaces with the real daemons and the dev site's rendered files (its
 * upstream and lists pointed at the test internet, and its servers zone without DNS: test/dns/lib/site.ts):
 * every daemon run as its DaemonSet runs it (test/dns/lib/bed.ts), the test internet's root, signed and broken
 * zones and DoT resolver (test/dns/lib/internet.ts), Kea DHCPv4/DHCPv6 with the rendered DDNS settings, and the
 * rendered ruleset with the stack's contribution. Clients in their segments' namespaces ask the router.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devSite, type Raw } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { tempDir } from "../helpers/temp";
import { waitFor, sleep } from "../ebpf/lib";
import { planDns, PATHS, reverseName } from "../../components/dns-stack/plan";
import { dnsConfigs, dnsDaemons } from "../../components/dns-stack/k8s";
import { siteRuleset } from "../../components/host-layers";
import { withoutNftQueue } from "../helpers/nft-queue";
import { renderKea4, renderKea6 } from "../../components/network-services/config";
import type { HostDaemon } from "../../components/daemonset";
import { q } from "../../components/images";
import { DnsBed } from "./lib/bed";
import { buildInternetDns, INTERNET_DNS, type InternetDns } from "./lib/internet";
import { ADS_FEED, NAMES, dnsTestSite } from "./lib/site";
import { buildStats, testSecrets } from "./lib/validators";
import { writeListDb } from "./lib/fixtures";

const t = tier("DNS stack in namespaces", {
  root: true,
  commands: [
    "ip",
    "setpriv",
    "dnsdist",
    "unbound",
    "unbound-control",
    "knotd",
    "knotc",
    "kea-dhcp-ddns",
    "kea-dhcp4",
    "kea-dhcp6",
    "dig",
    "dnssec-keygen",
    "dnssec-signzone",
    "cdb",
    "busybox",
    "dhclient",
    "tcpdump",
    "nft",
    "curl",
    "dnsperf",
  ],
});

const TAG = `dns${process.pid % 100000}`;
const SEGMENTS = ["mgmt", "trusted", "iot", "guest", "servers"];
const { site, plan, policy } = devSite(dnsTestSite);
const dns = planDns(site, plan, policy);
const configs = dnsConfigs(site, plan, dns);
const D = plan.domain;
let bed: DnsBed;
let internet: InternetDns;

const gw = (segment: string) => plan.segments.find((s) => s.name === segment)!.ipv4!.gateway;
const client = (segment: string) => bed.clients.get(segment)!;

/** dig from a segment's client, to the router's address in that segment unless `server` is given. */
function dig(segment: string, name: string, type = "A", server = gw(segment), extra: string[] = []) {
  const r = bed.in(client(segment), ["dig", "+time=2", "+tries=1", `@${server}`, name, type, ...extra], {
    allowFail: true,
  });
  const status = /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? "NO ANSWER";
  const flags = /flags: ([a-z ]+);/.exec(r.stdout)?.[1].split(" ") ?? [];
  const answers = [...r.stdout.matchAll(/^\S+\s+\d+\s+IN\s+(?:A|AAAA|PTR|CNAME|TXT|SRV)\s+(.+)$/gm)].map((m) => m[1]);
  return { status, flags, answers, text: r.stdout };
}

/** Writes a list's constant database where the feeds job would, atomically (tinycdb's temporary file + rename). */
function writeFeed(name: string, entries: string[]): void {
  writeListDb(bed.hostPath(PATHS.lists), name, entries);
}

const daemon = (name: string): HostDaemon => dnsDaemons(dns, configs).find((d) => d.name === name)!;

function startDaemon(d: HostDaemon, files = configs) {
  const bundle = join(internet.dir, "ca.pem");
  return bed.startDaemon(d, files, testSecrets(), [`mount --bind -o ro ${bundle} ${PATHS.caBundle}`]);
}

/** Kea DHCPv4 and DHCPv6 with the rendered configurations (state on tmpfs, as the services' pods have it). */
function startKea(): void {
  const dir = join(bed.work, "kea");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "kea-dhcp4.json"), renderKea4(site, plan, policy));
  writeFileSync(join(dir, "kea-dhcp6.json"), renderKea6(site, plan));
  const setup = ["mkdir -p /var/lib/kea /run/kea", "mount -t tmpfs none /var/lib/kea"];
  const env = ["env", "KEA_PIDFILE_DIR=/run/kea", "KEA_LOCKFILE_DIR=/run/kea"];
  bed.startInRouter("kea-dhcp4", setup, [...env, "kea-dhcp4", "-c", join(dir, "kea-dhcp4.json")]);
  bed.startInRouter("kea-dhcp6", setup, [...env, "kea-dhcp6", "-c", join(dir, "kea-dhcp6.json")]);
}

beforeAll(async () => {
  if (!t.ok) return;
  buildStats();
  const work = tempDir("dns-stack-");
  bed = new DnsBed(TAG, work);
  internet = buildInternetDns(join(work, "internet"));
  bed.topology(plan, SEGMENTS, [INTERNET_DNS.resolver4, INTERNET_DNS.authoritative4, INTERNET_DNS.lists4]);
  SEGMENTS.forEach((seg, i) => bed.staticClient(plan, seg, 200 + i));
  for (const c of internet.daemons) bed.start(c.name, bed.internet, `exec ${c.argv.map(q).join(" ")}`);
  // The ruleset the data plane loads, with the DNS stack's share registered in host-layers.ts (the IDS queue's
  // bypass verdicts as accept: this kernel has no nft queue, test/helpers/nft-queue.ts).
  const ruleset = withoutNftQueue(siteRuleset(site, plan, policy));
  writeFileSync(join(work, "router.nft"), ruleset);
  bed.in(bed.router, ["nft", "-f", join(work, "router.nft")]);
  writeFeed("ads", ADS_FEED);
  writeFileSync(join(bed.hostPath(PATHS.unboundState), "root.key"), internet.rootAnchor);
  for (const d of dnsDaemons(dns, configs)) if (d.name !== "dns-feeds") startDaemon(d);
  startKea();
  await waitFor(
    "the router's DNS to answer",
    () => dig("trusted", `lab-rtr1.trusted.${D}`).answers.includes("10.20.0.1"),
    30_000,
    250,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${bed.logs()}`);
  });
}, 180_000);

afterAll(async () => {
  if (process.env.DNS_TEST_LOGS === "1") console.log(bed?.logs(40));
  await bed?.cleanup();
});

function metrics(): Map<string, number> {
  const text = bed.in(bed.router, ["curl", "-s", `http://127.0.0.1:${dns.metricsPort}/metrics`]).stdout;
  return new Map(
    text
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))]),
  );
}

/**
 * The counters once the reports of earlier queries have all arrived: dnsdist's remote logger delivers them in
 * batches, seconds apart after it reconnects, so the count must hold still for 2.5 s.
 */
async function settled(): Promise<Map<string, number>> {
  const counted = (m: Map<string, number>) => m.get('router_dns_stats_messages_total{outcome="counted"}');
  let last = metrics();
  let still = 0;
  while (still < 5) {
    await sleep(500);
    const now = metrics();
    still = counted(now) === counted(last) ? still + 1 : 0;
    last = now;
  }
  return last;
}

describe.skipIf(!t.ok)("resolution through the router", () => {
  it("answers an internet name to a client of every zone with DNS", () => {
    for (const seg of ["mgmt", "trusted", "iot", "guest"]) {
      const name = seg === "iot" ? NAMES.vendor : NAMES.free;
      expect(dig(seg, name).answers, seg).toEqual([INTERNET_DNS.plain4]);
    }
  });

  it("lets no plain DNS leave on the WAN when the upstream speaks DoT", async () => {
    const cap = join(bed.work, "wan.pcap");
    const dump = bed.start(
      "tcpdump-wan",
      bed.router,
      `exec tcpdump -n -U --immediate-mode -i wan0 -w ${cap} port 53 or port 853`,
    );
    await waitFor("tcpdump to listen", () => dump.output.join("").includes("listening on"), 10_000, 50);
    for (let i = 0; i < 5; i++) expect(dig("trusted", `leak${i}.plain.example`).answers).toEqual([INTERNET_DNS.plain4]);
    await sleep(500);
    await bed.stop("tcpdump-wan", "SIGINT");
    const read = (filter: string) =>
      bed
        .in(bed.router, ["tcpdump", "-n", "-r", cap, filter], { allowFail: true })
        .stdout.trim()
        .split("\n")
        .filter(Boolean);
    expect(read("port 53"), "plain DNS on the WAN").toEqual([]);
    expect(read("tcp port 853").length, `DoT to the upstream; the capture:\n${dump.output.join("")}`).toBeGreaterThan(
      0,
    );
  });

  it("validates DNSSEC: a signed answer carries AD, a broken signature is SERVFAIL", () => {
    const good = dig("trusted", "www.good.example", "A", gw("trusted"), ["+dnssec"]);
    expect(good.answers[0]).toBe(INTERNET_DNS.good4);
    expect(good.flags).toContain("ad");
    expect(dig("trusted", "www.broken.example").status).toBe("SERVFAIL");
    // The resolver refused it, not the internet: the same name through the test resolver directly answers.
    const direct = dig("mgmt", "www.broken.example", "A", INTERNET_DNS.resolver4);
    expect(direct.answers).toEqual(["198.51.100.99"]);
  });

  it("answers the site's own names, records and pointers, and drops private addresses from public answers", () => {
    expect(dig("guest", `files.${D}`).answers).toEqual([`nas.servers.${D}.`, "10.50.0.10"]);
    expect(dig("trusted", `_ipp._tcp.printer.trusted.${D}`, "SRV").answers).toEqual([`0 0 631 printer.trusted.${D}.`]);
    expect(dig("mgmt", reverseName("10.20.0.10"), "PTR").answers).toEqual([`desk-pc.trusted.${D}.`]);
    expect(dig("mgmt", reverseName("fd12:3456:789a:20::10"), "PTR").answers).toEqual([`desk-pc.trusted.${D}.`]);
  });
});

describe.skipIf(!t.ok)("filtering by zone", () => {
  it.each([
    // zone, name, expected answer (an address, or a status)
    ["trusted", NAMES.ad, "NXDOMAIN"],
    ["trusted", NAMES.adChild, "NXDOMAIN"],
    ["trusted", NAMES.tracker, INTERNET_DNS.plain4], // on ads, let through by work
    ["trusted", NAMES.social, INTERNET_DNS.plain4], // guest-extra is not in standard
    ["guest", NAMES.ad, "0.0.0.0"],
    ["guest", NAMES.social, "0.0.0.0"],
    ["guest", NAMES.tracker, "0.0.0.0"], // strict has no allow list
    ["guest", NAMES.shortEntryChild, "0.0.0.0"], // a two-label entry covers the names below it
    ["guest", NAMES.free, INTERNET_DNS.plain4],
    ["iot", NAMES.vendor, INTERNET_DNS.plain4],
    ["iot", NAMES.free, "NXDOMAIN"], // allow-only
    ["iot", `lab-rtr1.iot.${D}`, "10.30.0.1"], // the site's own names always resolve
    ["mgmt", NAMES.ad, INTERNET_DNS.plain4], // no profile
  ])("in %s, %s is %s", (zone, name, expected) => {
    const r = dig(zone, name);
    if (/^[A-Z]+$/.test(expected)) expect(r.status).toBe(expected);
    else expect(r.answers).toEqual([expected]);
  });

  it("answers a blocked AAAA query with :: where the profile answers null", () => {
    expect(dig("guest", NAMES.ad, "AAAA").answers).toEqual(["::"]);
  });
});

describe.skipIf(!t.ok)("a zone without DNS", () => {
  it("cannot ask the router, on its own address or another zone's", () => {
    expect(dig("servers", NAMES.free, "A", gw("servers")).status).toBe("NO ANSWER");
    expect(dig("servers", NAMES.free, "A", gw("trusted")).status).toBe("NO ANSWER");
  });
});

describe.skipIf(!t.ok)("forced zones", () => {
  it("answers a guest's port-53 query to an outside resolver from the router (redirect)", () => {
    // The strict profile's null answer proves the router answered, not the outside resolver …
    expect(dig("guest", NAMES.ad, "A", INTERNET_DNS.resolver4).answers).toEqual(["0.0.0.0"]);
    // … which answers the name itself to a zone that is not forced.
    expect(dig("mgmt", NAMES.ad, "A", INTERNET_DNS.resolver4).answers).toEqual([INTERNET_DNS.plain4]);
  });

  it("rejects DoT to another server from a forced zone, and DNS to another server from a rejecting zone", () => {
    const tcp = (seg: string, port: number) =>
      bed.in(client(seg), ["timeout", "3", "bash", "-c", `exec 3<>/dev/tcp/${INTERNET_DNS.resolver4}/${port}`], {
        allowFail: true,
      }).status;
    expect(tcp("mgmt", 853), "control: DoT from an unforced zone").toBe(0);
    expect(tcp("guest", 853)).not.toBe(0);
    expect(tcp("iot", 853)).not.toBe(0);
    expect(tcp("iot", 53)).not.toBe(0);
    expect(dig("iot", NAMES.vendor, "A", INTERNET_DNS.resolver4).status).toBe("NO ANSWER");
  });
});

/** A DHCPv4 client on a macvlan of the segment's client (its own MAC); returns its address once bound. */
async function dhcp4(
  segment: string,
  dev: string,
  mac: string,
  hostname: string,
): Promise<{ ip: string; dns: string }> {
  const ns = client(segment);
  bed.in(ns, ["ip", "link", "add", dev, "link", "eth0", "address", mac, "type", "macvlan", "mode", "bridge"]);
  bed.in(ns, ["ip", "link", "set", dev, "up"]);
  const out = join(bed.work, `${dev}.lease`);
  const script = join(bed.work, `${dev}.sh`);
  // As a client's own script would: configure the leased address (a release is sent from it), note the lease.
  writeFileSync(
    script,
    [
      "#!/bin/sh",
      'case "$1" in',
      // the note whole or not at all (renamed into place): the test reads it as soon as it exists
      `  bound) ip addr add "$ip/$mask" dev "$interface"; echo "ip=$ip dns=$dns" > ${out}.new && mv ${out}.new ${out} ;;`,
      '  deconfig) ip addr flush dev "$interface" ;;',
      "esac",
      "exit 0",
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  bed.start(`udhcpc-${dev}`, ns, `exec busybox udhcpc -f -R -i ${dev} -x hostname:${hostname} -s ${script} -t 10 -T 1`);
  await waitFor(`a lease for ${dev}`, () => existsSync(out), 20_000, 100);
  const text = readFileSync(out, "utf8");
  return { ip: /ip=(\S+)/.exec(text)![1], dns: /dns=(\S*)/.exec(text)?.[1] ?? "" };
}

describe.skipIf(!t.ok)("names of DHCP clients", () => {
  it("a DHCPv4 client's name resolves from another segment within 5 s of its lease, and is gone within 5 s of its release", async () => {
    const { ip, dns: servers } = await dhcp4("trusted", "mv1", "02:00:00:00:20:01", "laptop");
    expect(servers).toBe("10.20.0.1");
    const leased = Date.now();
    await waitFor("laptop's A", () => dig("mgmt", `laptop.trusted.${D}`).answers.includes(ip), 5_000, 100);
    await waitFor(
      "laptop's PTR",
      () => dig("mgmt", reverseName(ip), "PTR").answers.includes(`laptop.trusted.${D}.`),
      5_000 - (Date.now() - leased),
      100,
    );
    // RFC 4703: another client asking for the same name, or a reserved one, does not get it.
    const other = await dhcp4("trusted", "mv2", "02:00:00:00:20:02", "laptop");
    const squatter = await dhcp4("trusted", "mv3", "02:00:00:00:20:03", "desk-pc");
    await sleep(1500);
    expect(dig("mgmt", `laptop.trusted.${D}`).answers).toEqual([ip]);
    expect(dig("mgmt", `desk-pc.trusted.${D}`).answers).toEqual(["10.20.0.10"]);
    expect(dig("mgmt", reverseName(other.ip), "PTR").answers).not.toContain(`laptop.trusted.${D}.`);
    expect(squatter.ip).not.toBe("10.20.0.10");
    await bed.stop("udhcpc-mv1");
    const released = Date.now();
    await waitFor("laptop's A to go", () => dig("mgmt", `laptop.trusted.${D}`).status === "NXDOMAIN", 5_000, 100);
    await waitFor(
      "laptop's PTR to go",
      () => dig("mgmt", reverseName(ip), "PTR").answers.length === 0,
      5_000 - (Date.now() - released),
      100,
    );
  }, 90_000);

  it("a DHCPv6 client's name (AAAA and PTR) resolves within 5 s of its lease and is gone within 5 s of its release", async () => {
    const ns = client("trusted");
    bed.in(ns, ["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
    bed.in(ns, [
      "ip",
      "link",
      "add",
      "mv6",
      "link",
      "eth0",
      "address",
      "02:00:00:00:20:06",
      "type",
      "macvlan",
      "mode",
      "bridge",
    ]);
    bed.in(ns, ["ip", "link", "set", "mv6", "up"]);
    const cf = join(bed.work, "dhclient6.conf");
    const lf = join(bed.work, "dhclient6.leases");
    // dhclient sends the name it is given as a fully qualified one (its wire form ends at the root).
    writeFileSync(cf, `send fqdn.fqdn "phone6.trusted.${D}.";\nsend fqdn.server-update on;\n`);
    const args = ["-6", "-cf", cf, "-lf", lf, "-pf", join(bed.work, "dhclient6.pid"), "-sf", "/bin/true"];
    await sleep(1500); // the link-local address of mv6 and of the router's side
    bed.in(ns, ["dhclient", ...args, "-1", "mv6"], { timeoutMs: 30_000 });
    const ip = /iaaddr ([0-9a-f:]+)/.exec(readFileSync(lf, "utf8"))![1];
    const leased = Date.now();
    await waitFor("phone6's AAAA", () => dig("mgmt", `phone6.trusted.${D}`, "AAAA").answers.includes(ip), 5_000, 100);
    await waitFor(
      "phone6's PTR",
      () => dig("mgmt", reverseName(ip), "PTR").answers.includes(`phone6.trusted.${D}.`),
      5_000 - (Date.now() - leased),
      100,
    );
    bed.in(ns, ["dhclient", ...args, "-r", "mv6"], { timeoutMs: 30_000 });
    const released = Date.now();
    await waitFor(
      "phone6's AAAA to go",
      () => dig("mgmt", `phone6.trusted.${D}`, "AAAA").answers.length === 0,
      5_000,
      100,
    );
    await waitFor(
      "phone6's PTR to go",
      () => dig("mgmt", reverseName(ip), "PTR").answers.length === 0,
      5_000 - (Date.now() - released),
      100,
    );
  }, 90_000);

  it("tells a client of a zone without DNS no DNS server", async () => {
    const lease = await dhcp4("servers", "mv9", "02:00:00:00:50:09", "box");
    expect(lease.ip).toMatch(/^10\.50\.0\./);
    expect(lease.dns).toBe("");
  }, 60_000);

  it("keeps every dynamic name when the resolver and the authoritative server are killed, and across a changed static zone", async () => {
    const { ip } = await dhcp4("trusted", "mv4", "02:00:00:00:20:04", "tablet");
    await waitFor("tablet's A", () => dig("mgmt", `tablet.trusted.${D}`).answers.includes(ip), 5_000, 100);
    for (const name of ["dns-resolver", "dns-auth"]) await bed.stop(name, "SIGKILL");
    expect(dig("mgmt", `tablet.trusted.${D}`).status).not.toBe("NOERROR");
    startDaemon(daemon("dns-auth"));
    startDaemon(daemon("dns-resolver"));
    await waitFor(
      "tablet's A after the restart",
      () => dig("mgmt", `tablet.trusted.${D}`).answers.includes(ip),
      20_000,
      200,
    );
    // A new static record: a new zone file (and a new ConfigMap); the pod rolls; the lease's name stays.
    const changed = devSite((raw: Raw) => {
      dnsTestSite(raw);
      raw.dns.records.push({ name: `scanner.trusted.${D}`, type: "A", address: "10.20.0.30" });
    });
    const changedDns = planDns(changed.site, changed.plan, changed.policy);
    const files = dnsConfigs(changed.site, changed.plan, changedDns);
    await bed.stop("dns-auth");
    startDaemon(
      dnsDaemons(changedDns, files).find((d) => d.name === "dns-auth")!,
      files,
    );
    await waitFor(
      "the new static record",
      () => dig("mgmt", `scanner.trusted.${D}`).answers.includes("10.20.0.30"),
      20_000,
      200,
    );
    expect(dig("mgmt", `tablet.trusted.${D}`).answers).toEqual([ip]);
  }, 90_000);
});

describe.skipIf(!t.ok)("lists swapped under load", () => {
  it("loses no query while the ads list is replaced five times, and the new list takes effect", async () => {
    const queries = join(bed.work, "queries.txt");
    const names = [NAMES.free, NAMES.ad, NAMES.tracker, "newad.plain.example", `lab-rtr1.trusted.${D}`];
    writeFileSync(
      queries,
      Array.from({ length: 200 }, (_, i) => `${names[i % names.length].replace("www", `w${i}`)} A`).join("\n"),
    );
    const before = await settled();
    const perf = bed.inAsync(client("trusted"), `dnsperf -s ${gw("trusted")} -d ${queries} -l 8 -Q 1500 -c 4`, 60_000);
    for (let i = 0; i < 5; i++) {
      await sleep(1200);
      writeFeed("ads", i % 2 ? ADS_FEED : [...ADS_FEED, "newad.plain.example"]);
    }
    const r = await perf;
    const sent = Number(/Queries sent:\s+(\d+)/.exec(r.stdout)?.[1]);
    const completed = Number(/Queries completed:\s+(\d+)/.exec(r.stdout)?.[1]);
    expect(sent, r.stdout).toBeGreaterThan(5000);
    expect(completed, r.stdout).toBe(sent);
    expect(/Queries lost:\s+(\d+)/.exec(r.stdout)?.[1], r.stdout).toBe("0");
    // Every answer was counted in its zone, none lost on the way to the collector.
    const after = await settled();
    const trusted = 'router_dns_queries_total{zone="trusted"}';
    expect((after.get(trusted) ?? 0) - (before.get(trusted) ?? 0)).toBe(completed);
    // The last list (with newad) is in use within dnsdist's refresh interval.
    await waitFor("newad to be blocked", () => dig("trusted", "newad.plain.example").status === "NXDOMAIN", 8_000, 200);
  }, 60_000);
});

describe.skipIf(!t.ok)("fetched lists", () => {
  const www = () => join(internet.dir, "www");
  const lists = () => bed.hostPath(PATHS.lists);
  /** Publishes the list on the test internet's HTTPS server (replaced by rename, as a publisher would). */
  function publish(text: string): void {
    writeFileSync(join(www(), ".ads.txt"), text);
    execFileSync("mv", [join(www(), ".ads.txt"), join(www(), "ads.txt")]);
  }
  /** Runs the feeds job once as its DaemonSet runs it (unprivileged), with every list due. */
  async function fetchOnce(): Promise<void> {
    execFileSync("sh", ["-c", `rm -f "${lists()}"/*.next`]);
    const spec = daemon("dns-feeds");
    const p = startDaemon({ ...spec, command: [...spec.command, "--once"] });
    await new Promise((r) => (p.child.exitCode !== null ? r(null) : p.child.once("exit", r)));
    expect(p.child.exitCode, p.output.join("")).toBe(0);
  }
  const status = () =>
    Object.fromEntries(
      readFileSync(join(lists(), "ads.status"), "utf8")
        .trim()
        .split("\n")
        .map((l) => l.split(" ")),
    ) as Record<string, string>;

  it("fetches a list over HTTPS as an unprivileged user and blocks its names", async () => {
    publish("# hosts-file list\n0.0.0.0 fetched-ad.plain.example\n0.0.0.0 ads.plain.example\n");
    await fetchOnce();
    expect(statSync(join(lists(), "ads.txt")).uid, "the checked list is the unprivileged job's").toBe(65534);
    expect(statSync(join(lists(), "ads.cdb")).uid).toBe(65534);
    expect(status()).toMatchObject({ entries: "2", failures: "0" });
    await waitFor(
      "the fetched name to be blocked",
      () => dig("trusted", "fetched-ad.plain.example").status === "NXDOMAIN",
      8_000,
      200,
    );
  }, 60_000);

  it.each([
    ["an empty download", ""],
    ["a page that is no list", "<html><body>503 Service Unavailable</body></html>\n"],
    ["a list that would block the site's own domain", `0.0.0.0 ${D}\n0.0.0.0 other-ad.plain.example\n`],
  ])(
    "keeps the last good list after %s",
    async (_what, text) => {
      const failures = Number(status().failures);
      publish(text);
      await fetchOnce();
      expect(Number(status().failures)).toBe(failures + 1);
      expect(status().entries).toBe("2");
      await sleep(6000); // longer than dnsdist's refresh interval: a wrongly swapped list would show
      expect(dig("trusted", "fetched-ad.plain.example").status).toBe("NXDOMAIN");
      expect(dig("trusted", "other-ad.plain.example").answers).toEqual([INTERNET_DNS.plain4]);
    },
    60_000,
  );

  it("keeps using the cached list across a restart of the front, before any new fetch", async () => {
    await bed.stop("dns-front");
    startDaemon(daemon("dns-front"));
    await waitFor("the front to answer", () => dig("trusted", NAMES.free).answers.length > 0, 20_000, 200);
    expect(dig("trusted", "fetched-ad.plain.example").status).toBe("NXDOMAIN");
  }, 60_000);

  it("puts a new list in force when the database in use carries a later time (the clock stepped back)", async () => {
    // dnsdist reopens a database only when its mtime, in whole seconds, is later than the one it has open (the
    // same holds for a database built in the same second as the last one).
    const ahead = Math.floor(Date.now() / 1000) + 3600;
    utimesSync(join(lists(), "ads.cdb"), ahead, ahead);
    // A lookup after the front's refresh interval makes it reopen the database, now with the later time.
    for (let i = 0; i < 2; i++) {
      await sleep(1100);
      expect(dig("trusted", "fetched-ad.plain.example").status).toBe("NXDOMAIN");
    }
    // The new list drops fetched-ad (the analytics below expect two names on it).
    publish("0.0.0.0 ads.plain.example\n0.0.0.0 later-ad.plain.example\n");
    await fetchOnce();
    expect(status()).toMatchObject({ entries: "2", failures: "3" });
    await waitFor(
      "the new list's name to be blocked",
      () => dig("trusted", "later-ad.plain.example").status === "NXDOMAIN",
      8_000,
      200,
    );
    expect(dig("trusted", "fetched-ad.plain.example").answers).toEqual([INTERNET_DNS.plain4]);
  }, 60_000);
});

describe.skipIf(!t.ok)("analytics", () => {
  it("counts queries, cache hits, blocked queries by list and SERVFAIL per zone, with a latency histogram", async () => {
    const before = await settled();
    const get = (m: Map<string, number>, k: string) => m.get(k) ?? 0;
    dig("trusted", "count.plain.example");
    dig("trusted", "count.plain.example");
    dig("trusted", NAMES.ad);
    dig("trusted", "www.broken.example");
    dig("guest", NAMES.social);
    const counted = 'router_dns_stats_messages_total{outcome="counted"}';
    await waitFor("the five reports", () => get(metrics(), counted) - get(before, counted) >= 5, 10_000, 200).catch(
      () => undefined,
    );
    const after = await settled();
    const delta = (k: string) => get(after, k) - get(before, k);
    if (process.env.DNS_TEST_LOGS === "1")
      console.log(
        [...after]
          .filter(([k, v]) => v !== get(before, k))
          .map(([k, v]) => `${k} +${v - get(before, k)}`)
          .join("\n"),
      );
    expect(delta('router_dns_queries_total{zone="trusted"}')).toBe(4);
    expect(delta('router_dns_cache_hits_total{zone="trusted"}')).toBeGreaterThanOrEqual(1);
    expect(delta('router_dns_blocked_total{zone="trusted",list="ads"}')).toBe(1);
    expect(delta('router_dns_servfail_total{zone="trusted"}')).toBe(1);
    expect(delta('router_dns_blocked_total{zone="guest",list="guest-extra"}')).toBe(1);
    expect(delta('router_dns_latency_seconds_count{zone="trusted"}')).toBe(4);
    // Every answer of a zone with a query log is in its histogram; one in 32 of the others.
    expect(get(after, 'router_dns_latency_sampled{zone="trusted"}')).toBe(1);
    expect(get(after, 'router_dns_latency_sampled{zone="guest"}')).toBe(32);
    expect(get(after, 'router_dns_latency_seconds_bucket{zone="trusted",le="+Inf"}')).toBe(
      get(after, 'router_dns_latency_seconds_count{zone="trusted"}'),
    );
    // The fetched list's state, from the feeds job (one good fetch, three refused above).
    expect(get(after, 'router_dns_list_loaded{list="ads"}')).toBe(1);
    expect(get(after, 'router_dns_list_entries{list="ads"}')).toBe(2);
    expect(get(after, 'router_dns_list_failures_total{list="ads"}')).toBe(3);
  });

  it("puts about one answer in 32 of a zone whose log is off in its latency histogram, and counts them all", async () => {
    const queries = join(bed.work, "sampled.txt");
    writeFileSync(queries, "sampled.plain.example A\n");
    const perf = (n: number) =>
      bed.in(client("guest"), ["dnsperf", "-s", gw("guest"), "-d", queries, "-n", String(n), "-c", "1"]).stdout;
    perf(1); // in the cache (dnsperf's query, without EDNS, is cached apart from dig's)
    const before = await settled();
    const n = 960;
    const out = perf(n);
    expect(/Queries completed:\s+(\d+)/.exec(out)?.[1], out).toBe(String(n));
    const after = await settled();
    const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    expect(delta('router_dns_queries_total{zone="guest"}')).toBe(n);
    expect(delta('router_dns_cache_hits_total{zone="guest"}')).toBe(n);
    // Binomial(960, 1/32): 30 expected, 10 and 60 both more than three and a half standard deviations away
    // (one in eight would give 120).
    const sampled = delta('router_dns_latency_seconds_count{zone="guest"}');
    expect(sampled).toBeGreaterThanOrEqual(10);
    expect(sampled).toBeLessThanOrEqual(60);
  });

  it("logs a zone's queries (client, name, type, answer, blocked-by), and none of a zone whose log is off", async () => {
    dig("trusted", NAMES.ad);
    dig("guest", "private.plain.example");
    await sleep(1500);
    const log = readFileSync(join(bed.hostPath(PATHS.queryLog), "queries.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const blocked = log.filter((e) => e.zone === "trusted" && e.name === `${NAMES.ad}.`).at(-1);
    expect(blocked).toMatchObject({ client: "10.20.0.201", type: 1, rcode: "NXDOMAIN", blocked_by: "ads" });
    expect(log.some((e) => e.zone === "trusted" && (e.answer as string[]).includes(INTERNET_DNS.plain4))).toBe(true);
    expect(log.filter((e) => e.zone === "guest")).toEqual([]);
  });
});
