/**
 * The real loader binary with a real configuration file: `--check` validation, and a running
 * loader guarding the WAN side of a pair of network namespaces (traffic, metrics, table swaps,
 * rejected tables and rulesets, restart without a gap).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kernelHasNftQueue, withoutNftQueue } from "../helpers/nft-queue";
import { tier } from "../helpers/tier";
import {
  BUILD,
  BUILD_COMMANDS,
  FIXTURES,
  LOADER,
  TOOLS,
  buildEbpf,
  collect,
  ensureBpffs,
  inNetns,
  ip,
  jsonLines,
  metricsUp,
  parseMetrics,
  replaceFile,
  sendFrames,
  sleep,
  spawnInNetns,
  startLoaderIn,
  stopProcess,
  tempDir,
  udpSink,
  waitFor,
} from "./lib";

const t = tier("ebpf-loader", { root: true, commands: [...BUILD_COMMANDS, "ip", "nsenter", "curl", "nft"] });

const TABLES = join(FIXTURES, "tables");

/** A configuration in the contract's format; `extra` is appended verbatim. */
function config(o: {
  pinRoot: string;
  stateDir: string;
  port: number;
  block: string;
  nft?: string;
  extra?: string;
}): string {
  return `# router-dataplane test configuration
[global]
pin_root = ${o.pinRoot}             ; maps and links
metrics_address = 127.0.0.1
metrics_port = ${o.port}
${o.nft ? `nft_ruleset = ${o.nft}` : ""}
state_dir = ${o.stateDir}

[interface wan0]
role = wan
xdp_mode = native

[interface lan0.10]
role = segment
segment = trusted
segment_id = 10
qos_default_priority = 0
qos_dscp_priority = 46:6
qos_dscp_priority = 8:1
qos_trust_pcp = true

[features]
bogons_ipv4 = true
bogons_ipv6 = true
blocklist = true
geoip = true
ratelimit = true

[bogons]
extra = ${join(TABLES, "bogons-extra.txt")}

[tables]
allow = ${join(TABLES, "allow.txt")}
block = ${o.block}
geo = ${join(TABLES, "geo.txt")}
block_countries = RU,KP

[ratelimit]
syn_rate = 200
syn_burst = 400
icmp_rate = 20
icmp_burst = 40
udp_rate = 100000
udp_burst = 200000
slots = 65536
${o.extra ?? ""}`;
}

interface LogLine {
  level: string;
  event: string;
  msg: string;
}

function check(conf: string): { status: number | null; log: LogLine[] } {
  const r = spawnSync(LOADER, ["--config", conf, "--check"], { encoding: "utf8" });
  return { status: r.status, log: jsonLines<LogLine>(r.stderr) };
}

describe.skipIf(!t.ok)("router-dataplane --check", () => {
  let dir = "";
  beforeAll(() => {
    buildEbpf("loader");
    dir = tempDir("dp-check-");
  }, 600_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const base = () => ({
    pinRoot: "/sys/fs/bpf/unused",
    stateDir: join(dir, "state"),
    port: 0,
    block: join(TABLES, "block.txt"),
    nft: join(FIXTURES, "router.nft"),
  });

  function writeConf(name: string, text: string): string {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  }

  it("accepts the contract's configuration with the fixture tables and the sample ruleset, and checks the fallback too", () => {
    const conf = config(base()).replace(
      "[global]\n",
      "[global]\nenable_forwarding = true\nmanagement_links = lan0.10\nmanagement_ports = 50000, 50001, 6443\ngeneration = 0a1b\n",
    );
    const r = check(writeConf("good.conf", conf));
    expect(r.log.find((l) => l.event === "check_ok")?.msg).toMatch(
      /and ruleset are valid \(the fail-closed fallback too\)$/,
    );
    expect(r.status).toBe(0);
  });

  it("accepts stale_route_protocols and names the protocols whose routes it removes (empty: none)", () => {
    const conf = config(base()).replace("[global]\n", "[global]\nstale_route_protocols = 12, 188, 249\n");
    const r = check(writeConf("stale.conf", conf));
    expect(r.log.find((l) => l.event === "check_ok")?.msg).toMatch(/; routes of protocols 12, 188, 249 are removed$/);
    expect(r.status).toBe(0);
    const none = check(writeConf("stale-none.conf", conf.replace("= 12, 188, 249", "=")));
    expect(none.log.find((l) => l.event === "check_ok")?.msg).not.toMatch(/routes of protocols/);
    expect(none.status).toBe(0);
  });

  const bad: Array<{
    name: string;
    why: string;
    conf: (c: string) => string;
    files?: Record<string, string>;
    expect: RegExp[];
  }> = [
    {
      name: "an unknown key",
      why: "a misspelt feature switch would silently keep its default",
      conf: (c) => c.replace("blocklist = true", "blocklits = true"),
      expect: [
        /good\.conf:\d+: \[features\] blocklits = true: unknown key; \[features\] allows bogons_ipv4, bogons_ipv6, blocklist, geoip, ratelimit/,
      ],
    },
    {
      name: "an unknown section",
      why: "settings under a misspelt section would never apply",
      conf: (c) => c.replace("[ratelimit]", "[ratelimits]"),
      expect: [/unknown section \[ratelimits\]; allowed: \[global\], \[interface NAME\]/],
    },
    {
      name: "slots that are not a power of two",
      why: "the bucket hash takes the top bits, so other sizes would leave slots unused or out of range",
      conf: (c) => c.replace("slots = 65536", "slots = 100000"),
      expect: [/\[ratelimit\] slots = 100000: expected a power of two from 1024 to 1048576/],
    },
    {
      name: "more slots than the bucket array holds",
      why: "the program's bucket array is sized for 1048576 per class; an index past it would not load",
      conf: (c) => c.replace("slots = 65536", "slots = 2097152"),
      expect: [/\[ratelimit\] slots = 2097152: expected a power of two from 1024 to 1048576/],
    },
    {
      name: "a repeated single-valued key",
      why: "two values for one setting leave the effective one to chance",
      conf: (c) => c.replace("xdp_mode = native", "xdp_mode = native\nxdp_mode = generic"),
      expect: [/\[interface wan0\] xdp_mode = generic: given twice \(first at line \d+\)/],
    },
    {
      name: "a segment without a segment_id",
      why: "its counters and policy would land on VLAN 0",
      conf: (c) => c.replace("segment_id = 10\n", ""),
      expect: [/\[interface lan0\.10\]: segment_id \(0-4095, the VLAN id\) is required/],
    },
    {
      name: "a missing blocklist file",
      why: "starting without the blocklist would leave the WAN unprotected while looking configured",
      conf: (c) => c.replace(join(TABLES, "block.txt"), join(dir, "nope.txt")),
      expect: [/nope\.txt: cannot open: No such file or directory/],
    },
    {
      name: "a blocklist line that is not a CIDR",
      why: "a half-read blocklist would let the sources after the bad line through",
      files: { "bad-block.txt": "45.155.205.233\n# comment\n185.220.101.0/33\n" },
      conf: (c) => c.replace(join(TABLES, "block.txt"), join(dir, "bad-block.txt")),
      expect: [/bad-block\.txt:3: prefix length 33 is longer than 32/],
    },
    {
      name: "a blocklist prefix with host bits set",
      why: "the intended network is ambiguous (a typo in the address or in the length)",
      files: { "host-bits.txt": "10.1.2.3/8\n" },
      conf: (c) => c.replace(join(TABLES, "block.txt"), join(dir, "host-bits.txt")),
      expect: [/host-bits\.txt:1: host bits set beyond \/8 \(did you mean 10\.0\.0\.0\/8\?\)/],
    },
    {
      name: "a ruleset that flushes the whole ruleset",
      why: "it would wipe Talos' inet talos table and Cilium's tables along with ours",
      files: { "flush.nft": "flush ruleset\n" + readFileSync(join(FIXTURES, "router.nft"), "utf8") },
      conf: (c) => c.replace(join(FIXTURES, "router.nft"), join(dir, "flush.nft")),
      expect: [
        /flush\.nft:1: 'flush ruleset' is not allowed at the top level: the file may only define table inet router/,
      ],
    },
    {
      name: "a ruleset that defines another table",
      why: "the loader replaces only inet router; another table would escape the atomic swap and clash with Talos",
      files: { "talos.nft": "table inet talos {\n  chain ingress { type filter hook input priority 0; }\n}\n" },
      conf: (c) => c.replace(join(FIXTURES, "router.nft"), join(dir, "talos.nft")),
      expect: [/talos\.nft:1: only table inet router may be defined here, found 'table inet talos'/],
    },
    {
      name: "a ruleset nftables itself rejects",
      why: "applying half of it is impossible, and the dry run must say where it fails",
      files: {
        "syntax.nft":
          "table inet router {\n  chain forward {\n    type filter hook forward priority filter; policy drop;\n    iifname $UNDEFINED accept\n  }\n}\n",
      },
      conf: (c) => c.replace(join(FIXTURES, "router.nft"), join(dir, "syntax.nft")),
      expect: [/syntax\.nft: nftables rejected the ruleset:/, /syntax\.nft:4:/],
    },
  ];

  const WAN = `
[wan wan0]
priority = 10
mark = 0x10
table = 101
probe = 1.1.1.1
probe_interval = 2s
probe_timeout = 1s
down_after = 3
up_after = 2
`;
  const FEED = `
[feed spamhaus-drop]
url = https://www.spamhaus.org/drop/drop.txt
kind = block
refresh = 12h
`;
  const withExtra = (extra: string) => (c: string) => `${c}\n${extra}`;
  const inGlobal = (line: string) => (c: string) => c.replace("[global]\n", `[global]\n${line}\n`);
  bad.push(
    {
      name: "an XDP mode that does not exist",
      why: "a typo must not pick a mode the NIC cannot run or silently drop the strictness asked for",
      conf: (c) => c.replace("xdp_mode = native", "xdp_mode = driver"),
      expect: [
        /\[interface wan0\] xdp_mode = driver: expected native \(driver mode, generic where the driver has none\), native-only or generic/,
      ],
    },
    {
      name: "a management link that is a WAN",
      why: "the fail-closed fallback would accept the management ports from the internet",
      conf: inGlobal("management_links = lan0.10, wan0"),
      expect: [
        /good\.conf:\d+: \[global\] management_links: wan0 is a WAN link; management is never accepted from a WAN/,
      ],
    },
    {
      name: "a management port out of range",
      why: "the fallback's management rule would not load, leaving the box without one",
      conf: inGlobal("management_ports = 50000, 70000"),
      expect: [/\[global\] management_ports = 70000: expected an integer from 1 to 65535/],
    },
    {
      name: "a generation that is not a hexadecimal digest",
      why: "the health check compares it with the renderer's digest; anything else can never match",
      conf: inGlobal("generation = not-a-digest"),
      expect: [/\[global\] generation = not-a-digest: expected 1-64 lower-case hexadecimal digits/],
    },
    ...(
      [
        ["0", /protocol 0 is the kernel's own \(0 unspec, 1 redirect, 2 kernel, 3 boot, 4 static/],
        ["12, 2", /protocol 2 is the kernel's own/],
        ["201", /protocol 201 marks the loader's own routes; expected 5-255 other than 201/],
        ["300", /'300' is not a route protocol number \(expected 5-255 other than 201\)/],
        ["bird", /'bird' is not a route protocol number \(expected 5-255 other than 201\)/],
        ["12, 12", /protocol 12 is listed twice/],
      ] as const
    ).map(([v, why]) => ({
      name: `stale_route_protocols = ${v}`,
      why: "the sweep would delete the kernel's, the network configuration's or the loader's own routes, or not the ones meant",
      conf: inGlobal(`stale_route_protocols = ${v}`),
      expect: [new RegExp(`good\\.conf:\\d+: \\[global\\] stale_route_protocols = ${v}: ${why.source}`)],
    })),
    {
      name: "enable_forwarding that is not a boolean",
      why: "forwarding must come on only when asked for, and then surely",
      conf: inGlobal("enable_forwarding = yes"),
      expect: [/\[global\] enable_forwarding = yes: expected true or false/],
    },
  );
  bad.push(
    {
      name: "a WAN mark outside the WAN bits",
      why: "marks outside 0xf0 collide with kube-proxy's and Cilium's mark bits",
      conf: withExtra(WAN.replace("mark = 0x10", "mark = 0x100")),
      expect: [
        /\[wan wan0\] mark = 0x100: expected a non-zero mark within 0xf0 \(bits 4-7, e\.g\. 0x10, 0x20, \.\.\. 0xf0\)/,
      ],
    },
    {
      name: "a WAN without its routing table",
      why: "its replies and probes would have no table to leave through",
      conf: withExtra(WAN.replace("table = 101\n", "")),
      expect: [/good\.conf:\d+: \[wan wan0\]: table required \(priority 0-65535, mark within 0xf0, table\)/],
    },
    {
      name: "a WAN table that is main",
      why: "copying default routes into the main table would duplicate networkd's routes",
      conf: withExtra(WAN.replace("table = 101", "table = 254")),
      expect: [
        /\[wan wan0\] table = 254: expected a routing table number from 1 to 4294967295 other than 253, 254 and 255/,
      ],
    },
    {
      name: "two WANs with the same priority",
      why: "the active WAN would depend on the order of the sections",
      conf: withExtra(`${WAN}${WAN.replace("[wan wan0]", "[wan wan1]").replace("0x10", "0x20").replace("101", "102")}`),
      expect: [/\[wan wan1\]: priority 10 is already used by \[wan wan0\] \(line \d+\)/],
    },
    {
      name: "a probe timeout longer than the interval",
      why: "rounds would overlap and failover would take longer than interval × down_after",
      conf: withExtra(WAN.replace("probe_timeout = 1s", "probe_timeout = 3s")),
      expect: [/\[wan wan0\]: probe_timeout \(3000 ms\) is longer than probe_interval \(2000 ms\)/],
    },
    {
      name: "a probe target that is a host name",
      why: "resolving names needs DNS through the very uplink being probed",
      conf: withExtra(WAN.replace("probe = 1.1.1.1", "probe = one.one.one.one")),
      expect: [/\[wan wan0\] probe = one\.one\.one\.one: expected an IPv4 or IPv6 address literal/],
    },
    {
      name: "a malformed probe interval",
      why: "a unit-less number is ambiguous (seconds? milliseconds?)",
      conf: withExtra(WAN.replace("probe_interval = 2s", "probe_interval = 2")),
      expect: [/\[wan wan0\] probe_interval = 2: expected a duration such as 500ms, 2s, 5m or 1h30m/],
    },
    {
      name: "a feed over plain HTTP",
      why: "an unauthenticated download could inject or remove blocklist entries",
      conf: withExtra(FEED.replace("https://", "http://")),
      expect: [/\[feed spamhaus-drop\] url = http:\/\/www\.spamhaus\.org\/drop\/drop\.txt: expected an https:\/\/ URL/],
    },
    {
      name: "a feed of an unknown kind",
      why: "the list would land in no table",
      conf: withExtra(FEED.replace("kind = block", "kind = deny")),
      expect: [/\[feed spamhaus-drop\] kind = deny: expected block, allow or geo/],
    },
    {
      name: "a feed name that is not a file name",
      why: "the name becomes the cache file's name under state_dir",
      conf: withExtra(FEED.replace("[feed spamhaus-drop]", "[feed ../etc]")),
      expect: [/'\.\.\/etc' is not a valid feed name \(1-63 of a-z 0-9 '-'/],
    },
    {
      name: "a feed timeout beyond an hour",
      why: "a stalled download would hold up every other feed that long",
      conf: withExtra(`${FEED}timeout = 2h\n`),
      expect: [/\[feed spamhaus-drop\] timeout = 2h: expected a duration from 1s to 1h/],
    },
    {
      name: "a feed that may have no entries",
      why: "an empty download would replace a real list",
      conf: withExtra(`${FEED}min_entries = 0\n`),
      expect: [/\[feed spamhaus-drop\] min_entries = 0: expected an integer from 1 to 100000000/],
    },
    {
      name: "a relative resolv_conf",
      why: "its nameservers are what no feed may block; a relative path depends on the working directory",
      conf: (c: string) => c.replace("[global]\n", "[global]\nresolv_conf = etc/resolv.conf\n"),
      expect: [/\[global\] resolv_conf = etc\/resolv\.conf: expected an absolute path/],
    },
  );

  it("accepts the renderer's dev output as rendered (multi-WAN and feed sections included), paths adjusted", () => {
    const out = join(dir, "render");
    const r = spawnSync(
      "node",
      ["--import", "tsx", join(__dirname, "../../cli/render.ts"), "--stack", "dev", "--out", out],
      {
        encoding: "utf8",
        cwd: join(__dirname, "../.."),
      },
    );
    expect(r.status, r.stderr).toBe(0);
    // the IDS queue as this kernel can load it (test/helpers/nft-queue.ts); as rendered where it has nft queue
    const nft = join(out, "dataplane/router.nft");
    if (!kernelHasNftQueue()) writeFileSync(nft, withoutNftQueue(readFileSync(nft, "utf8")));
    const text = readFileSync(join(out, "dataplane/dataplane.conf"), "utf8");
    expect(text).toMatch(/^\[wan wan0\]$/m);
    expect(text).toMatch(/^\[feed /m);
    const conf = writeConf(
      "rendered.conf",
      text
        .replaceAll("/usr/local/etc/router-dataplane", join(out, "dataplane"))
        .replaceAll("/var/lib/router-dataplane", join(dir, "rendered-state")),
    );
    const c = check(conf);
    expect(c.log.map((l) => `${l.event}: ${l.msg}`)).toContainEqual(
      expect.stringMatching(/^check_ok: .*0 of 1 feeds cached\) and ruleset are valid/),
    );
    expect(c.status).toBe(0);
    // a cached copy of the feed is part of the check (as it is of a start)
    mkdirSync(join(dir, "rendered-state/feeds"), { recursive: true });
    writeFileSync(join(dir, "rendered-state/feeds/spamhaus-drop.txt"), "; cached\n1.10.16.0/20 ; SBL256894\n");
    expect(check(conf).log.map((l) => l.msg)).toContainEqual(expect.stringMatching(/\(1 of 1 feeds cached\)/));
  });

  for (const b of bad) {
    it(`rejects ${b.name} with the file, line and what is allowed (${b.why})`, () => {
      for (const [f, text] of Object.entries(b.files ?? {})) writeFileSync(join(dir, f), text);
      const name = "good.conf";
      const r = check(writeConf(name, b.conf(config(base()))));
      const msgs = r.log
        .filter((l) => l.level === "error")
        .map((l) => l.msg)
        .join("\n");
      for (const re of b.expect) expect(msgs).toMatch(re);
      expect(r.status).toBe(2);
    });
  }
});

describe.skipIf(!t.ok)("router-dataplane guarding the WAN of a namespace pair", () => {
  const RTR = `dprtr${process.pid % 100000}`;
  const PEER = `dppeer${process.pid % 100000}`;
  const pinRoot = `/sys/fs/bpf/router-dataplane-test-${process.pid}`;
  const port = 19000 + (process.pid % 1000);
  const WAN_ADDR = "81.2.69.1";
  const CLEAN = "8.8.8.8";
  const BLOCKED = "185.220.101.5"; // 185.220.101.0/24 in the blocklist fixture
  const LATER_BLOCKED = "77.247.181.10";
  let dir = "";
  let conf = "";
  let blockFile = "";
  let nftFile = "";
  let wanMac = "";
  let lanMac = "";
  let loader: ChildProcess | undefined;
  let loaderLog = "";
  const sinks: ChildProcess[] = [];

  function metrics(): Map<string, number> {
    return parseMetrics(inNetns(RTR, "curl", ["-sf", `http://127.0.0.1:${port}/metrics`]));
  }

  function metric(name: string): number {
    return metrics().get(name) ?? 0;
  }

  function events(): LogLine[] {
    return jsonLines<LogLine>(loaderLog);
  }

  async function startLoader(): Promise<void> {
    loader = await startLoaderIn(RTR, [LOADER, "--config", conf], {
      log: () => loaderLog,
      onLog: (d) => (loaderLog += d),
      ready: () => metricsUp(metrics),
    });
  }

  const stopLoader = () => stopProcess(loader);

  /** Starts a UDP sink in the router namespace; stop() returns per-tag counts. */
  const sink = (p = 9999) => udpSink(RTR, sinks, p);

  /** Sends UDP frames from src (spoofed as needed) to the router's WAN address. */
  function send(src: string, tag: number, count: number, pps: number, ns = PEER, ifname = "wanp", mac = "") {
    return sendFrames(ns, { ifname, dstMac: mac || wanMac, src, dst: WAN_ADDR, tag, count, pps });
  }

  const replace = replaceFile;

  function routerTable(): string {
    return inNetns(RTR, "nft", ["list", "table", "inet", "router"]);
  }

  beforeAll(async () => {
    buildEbpf("loader");
    buildEbpf("tests");
    ensureBpffs();
    dir = tempDir("dp-netns-");
    for (const ns of [RTR, PEER]) spawnSync("ip", ["netns", "del", ns]);
    ip("netns", "add", RTR);
    ip("netns", "add", PEER);
    ip("link", "add", "wan0", "netns", RTR, "type", "veth", "peer", "name", "wanp", "netns", PEER);
    ip("link", "add", "lan0.10", "netns", RTR, "type", "veth", "peer", "name", "lanp", "netns", PEER);
    for (const [ns, dev] of [
      [RTR, "lo"],
      [RTR, "wan0"],
      [RTR, "lan0.10"],
      [PEER, "lo"],
      [PEER, "wanp"],
      [PEER, "lanp"],
    ])
      ip("-n", ns, "link", "set", dev, "up");
    ip("-n", RTR, "addr", "add", `${WAN_ADDR}/24`, "dev", "wan0");
    ip("-n", RTR, "addr", "add", "192.168.10.1/24", "dev", "lan0.10");
    inNetns(RTR, "sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.wan0.rp_filter=0"]);
    wanMac = (JSON.parse(ip("-n", RTR, "-j", "link", "show", "wan0")) as Array<{ address: string }>)[0].address;
    lanMac = (JSON.parse(ip("-n", RTR, "-j", "link", "show", "lan0.10")) as Array<{ address: string }>)[0].address;
    // a stand-in for Talos' own table: the loader must never touch it
    inNetns(
      RTR,
      "nft",
      ["-f", "-"],
      "table inet talos {\n chain ingress { type filter hook input priority 0; policy accept; }\n}\n",
    );

    blockFile = join(dir, "block.txt");
    copyFileSync(join(TABLES, "block.txt"), blockFile);
    nftFile = join(dir, "router.nft");
    copyFileSync(join(FIXTURES, "router.nft"), nftFile);
    conf = join(dir, "dataplane.conf");
    writeFileSync(conf, config({ pinRoot, stateDir: join(dir, "state"), port, block: blockFile, nft: nftFile }));
    await startLoader();
  }, 600_000);

  afterAll(async () => {
    for (const s of sinks) if (s.exitCode === null) s.kill("SIGKILL");
    await stopLoader();
    for (const ns of [RTR, PEER]) spawnSync("ip", ["netns", "del", ns]);
    rmSync(pinRoot, { recursive: true, force: true });
    rmSync(`${pinRoot}-orphans`, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("attaches XDP natively on the WAN and tcx on the segment, pinned under pin_root", () => {
    expect(ip("-n", RTR, "link", "show", "wan0")).toMatch(/prog\/xdp id \d+ name wan_guard/);
    const links = spawnSync("ls", [join(pinRoot, "links")], { encoding: "utf8" })
      .stdout.split("\n")
      .filter(Boolean);
    expect(links.sort()).toEqual(["tcx_egress@lan0:10", "tcx_ingress@lan0:10", "xdp@wan0"]);
    expect(routerTable()).toContain('comment "router transit policy v1"');
  });

  it("drops a blocklisted source, passes a clean one, and /metrics reports both", async () => {
    const before = metrics();
    const s = await sink();
    const [clean, blocked] = await Promise.all([send(CLEAN, 1, 300, 1000), send(BLOCKED, 2, 300, 1000)]);
    const got = await s.stop();
    expect(clean).toBe(300);
    expect(blocked).toBe(300);
    expect(got["1"]?.distinct).toBe(300);
    expect(got["2"]).toBeUndefined();
    const after = metrics();
    const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    expect(delta('router_dataplane_drop_packets_total{reason="blocklist"}')).toBe(300);
    expect(delta('router_dataplane_drop_bytes_total{reason="blocklist"}')).toBe(300 * 60);
    expect(delta('router_dataplane_xdp_passed_packets_total{reason="clean"}')).toBeGreaterThanOrEqual(300);
    expect(delta('router_dataplane_vlan_packets_total{vlan="0"}')).toBeGreaterThanOrEqual(600);
    expect(after.get('router_dataplane_table_entries{table="block",family="ipv4"}')).toBe(4);
    expect(after.get('router_dataplane_table_entries{table="block",family="ipv6"}')).toBe(6);
    // the fixture's /29 is stored as 8 keys of the IPv6 /32 index, next to the other /32 keys
    expect(after.get('router_dataplane_table_stored_entries{structure="host4"}')).toBe(1);
    expect(after.get('router_dataplane_table_stored_entries{structure="pfx6"}')).toBeGreaterThanOrEqual(8);
    const text = inNetns(RTR, "curl", ["-sf", `http://127.0.0.1:${port}/metrics`]);
    expect(text).toContain("# TYPE router_dataplane_drop_packets_total counter");
    expect(text).toContain("# HELP router_dataplane_reload_failures_total");
  });

  it("counts segment traffic in both directions", async () => {
    const before = metrics();
    // into the router from the segment, and out of the router towards it
    await send("192.168.10.50", 5, 100, 1000, PEER, "lanp", lanMac);
    const lanpMac = (JSON.parse(ip("-n", PEER, "-j", "link", "show", "lanp")) as Array<{ address: string }>)[0].address;
    await send("192.168.10.1", 6, 50, 1000, RTR, "lan0.10", lanpMac);
    const after = metrics();
    const key = (d: string) =>
      `router_dataplane_segment_packets_total{segment="trusted",segment_id="10",direction="${d}"}`;
    expect((after.get(key("ingress")) ?? 0) - (before.get(key("ingress")) ?? 0)).toBeGreaterThanOrEqual(100);
    expect((after.get(key("egress")) ?? 0) - (before.get(key("egress")) ?? 0)).toBeGreaterThanOrEqual(50);
  });

  it("swaps the blocklist (file replaced by rename) under continuous clean traffic without losing a clean packet", async () => {
    const reloads = metric("router_dataplane_reloads_total");
    const s = await sink();
    const clean = send(CLEAN, 1, 6000, 2000);
    const original = readFileSync(blockFile, "utf8");
    for (let i = 0; i < 3; i++) {
      await sleep(600);
      replace(blockFile, `${original}\n# swap ${i}\n${LATER_BLOCKED}/32\n10${i}.1.2.0/24\n`);
      await waitFor(`reload ${i + 1}`, () => metric("router_dataplane_reloads_total") >= reloads + i + 1, 10_000);
    }
    const sent = await clean;
    const got = await s.stop();
    expect(sent).toBe(6000);
    expect(got["1"]?.distinct).toBe(6000);
    // the new entry is active
    const s2 = await sink();
    await send(LATER_BLOCKED, 3, 100, 1000);
    expect((await s2.stop())["3"]).toBeUndefined();
    expect(metric('router_dataplane_table_entries{table="block",family="ipv4"}')).toBe(6);
  }, 60_000);

  it("rejects a malformed table file, keeps the running table, counts the failure, and recovers on SIGHUP", async () => {
    const good = `${readFileSync(join(TABLES, "block.txt"), "utf8")}${LATER_BLOCKED}/32\n`;
    const reloads0 = metric("router_dataplane_reloads_total");
    replace(blockFile, good);
    await waitFor("the baseline table", () => metric("router_dataplane_reloads_total") > reloads0);
    const failures = metric('router_dataplane_reload_failures_total{kind="tables"}');
    // a feed cut mid-line must not replace a complete table
    replace(blockFile, `${good}\n185.220.10\n`);
    await waitFor(
      "the table failure",
      () => metric('router_dataplane_reload_failures_total{kind="tables"}') === failures + 1,
    );
    const lines = good.split("\n").length;
    await waitFor("the rejection in the log", () =>
      events().some((e) => e.event === "tables_rejected" && e.msg.includes(`block.txt:${lines + 1}:`)),
    );
    const s = await sink();
    await Promise.all([send(CLEAN, 1, 100, 1000), send(BLOCKED, 2, 100, 1000), send(LATER_BLOCKED, 3, 100, 1000)]);
    const got = await s.stop();
    expect(got["1"]?.distinct).toBe(100);
    expect(got["2"]).toBeUndefined();
    expect(got["3"]).toBeUndefined();

    writeFileSync(blockFile, good);
    const reloads = metric("router_dataplane_reloads_total");
    loader!.kill("SIGHUP");
    await waitFor("the SIGHUP reload", () => metric("router_dataplane_reloads_total") > reloads);
    expect(metric('router_dataplane_reload_failures_total{kind="tables"}')).toBe(failures + 1);
  }, 60_000);

  it("rejects a ruleset outside table inet router or one nftables refuses, keeps the previous ruleset, and never touches inet talos", async () => {
    const failures = metric('router_dataplane_reload_failures_total{kind="nftables"}');
    const v1 = readFileSync(join(FIXTURES, "router.nft"), "utf8");
    // wiping the ruleset would take Talos' and Cilium's tables with it
    replace(nftFile, `flush ruleset\n${v1}`);
    await waitFor(
      "the scope rejection",
      () => metric('router_dataplane_reload_failures_total{kind="nftables"}') === failures + 1,
    );
    // a rule nftables itself refuses must not half-apply
    replace(nftFile, v1.replace("iifname $TRUSTED accept", "iifname $TRUSTED jump nowhere"));
    await waitFor(
      "the nftables rejection",
      () => metric('router_dataplane_reload_failures_total{kind="nftables"}') === failures + 2,
    );
    expect(routerTable()).toContain('comment "router transit policy v1"');
    // the error names the operator's file and the line nftables refused
    await waitFor("the rejection in the log", () =>
      events().some((e) => e.event === "nft_rejected" && /router\.nft:\d+:\d+-\d+: Error/.test(e.msg)),
    );

    replace(nftFile, v1.replace("router transit policy v1", "router transit policy v2"));
    await waitFor("the v2 ruleset", () => routerTable().includes("router transit policy v2"));
    expect(inNetns(RTR, "nft", ["list", "table", "inet", "talos"])).toContain("chain ingress");
    expect(metric("router_dataplane_nft_last_success_timestamp_seconds")).toBeGreaterThan(0);
  }, 60_000);

  it("fills a wan_addr4_ set with its WAN link's IPv4 addresses when it loads the ruleset, and follows them when they change", async () => {
    const v1 = readFileSync(join(FIXTURES, "router.nft"), "utf8");
    // the set a hairpin rule matches for a DHCP WAN: declared empty, the loader fills it; a link that does not
    // exist leaves its set as rendered
    const withSets = v1.replace(
      'comment "router transit policy v1"',
      'comment "router transit policy wan-addr"\n\tset wan_addr4_wan0 { type ipv4_addr; }\n\tset wan_addr4_nolink0 { type ipv4_addr; elements = { 192.0.2.9 } }',
    );
    expect(withSets).not.toBe(v1);
    const elements = (set: string) => {
      const out = inNetns(RTR, "nft", ["-j", "list", "set", "inet", "router", set]);
      const found = (JSON.parse(out) as { nftables: Array<{ set?: { elem?: string[] } }> }).nftables.find((x) => x.set);
      return [...(found?.set?.elem ?? [])].sort();
    };
    replace(nftFile, withSets);
    await waitFor("the ruleset with the WAN address set", () =>
      routerTable().includes("router transit policy wan-addr"),
    );
    // filled in the same load: the first listing that shows the new ruleset has the address already
    expect(elements("wan_addr4_wan0")).toEqual([WAN_ADDR]);
    expect(elements("wan_addr4_nolink0")).toEqual(["192.0.2.9"]);
    try {
      // a DHCP renewal that brings another address: the set follows, the other set stays
      ip("-n", RTR, "addr", "add", "81.2.70.7/24", "dev", "wan0");
      await waitFor("the new address in the set", () => elements("wan_addr4_wan0").includes("81.2.70.7"));
      expect(elements("wan_addr4_wan0")).toEqual(["81.2.69.1", "81.2.70.7"]);
      expect(elements("wan_addr4_nolink0")).toEqual(["192.0.2.9"]);
      expect(routerTable()).toContain("router transit policy wan-addr");
    } finally {
      spawnSync("ip", ["-n", RTR, "addr", "del", "81.2.70.7/24", "dev", "wan0"]);
    }
    // the old address leaves the set when the link loses it
    await waitFor("the old address gone from the set", () => !elements("wan_addr4_wan0").includes("81.2.70.7"));
    expect(elements("wan_addr4_wan0")).toEqual([WAN_ADDR]);
    replace(nftFile, v1);
    await waitFor("the v1 ruleset again", () => routerTable().includes("router transit policy v1"));
  }, 60_000);

  it("rejects a broken configuration on reload and keeps running with the previous one", async () => {
    const failures = metric('router_dataplane_reload_failures_total{kind="config"}');
    const good = readFileSync(conf, "utf8");
    // a typo in a feature switch must not silently re-enable or drop a feature
    replace(conf, good.replace("geoip = true", "geoip = yes"));
    await waitFor(
      "the config failure",
      () => metric('router_dataplane_reload_failures_total{kind="config"}') === failures + 1,
    );
    await waitFor("the rejection in the log", () =>
      events().some(
        (e) =>
          e.event === "config_rejected" &&
          /dataplane\.conf:\d+: \[features\] geoip = yes: expected true or false/.test(e.msg),
      ),
    );
    const s = await sink();
    await Promise.all([send(CLEAN, 1, 100, 1000), send(BLOCKED, 2, 100, 1000)]);
    const got = await s.stop();
    expect(got["1"]?.distinct).toBe(100);
    expect(got["2"]).toBeUndefined();
    const reloads = metric("router_dataplane_reloads_total");
    replace(conf, good);
    await waitFor("the repaired configuration", () => metric("router_dataplane_reloads_total") > reloads);
  }, 60_000);

  it("switches the WAN between native and generic XDP when the configuration says so", async () => {
    const good = readFileSync(conf, "utf8");
    replace(conf, good.replace("xdp_mode = native", "xdp_mode = generic"));
    await waitFor("generic XDP", () => /xdpgeneric/.test(ip("-n", RTR, "link", "show", "wan0")));
    const s = await sink();
    await send(BLOCKED, 2, 100, 1000);
    expect((await s.stop())["2"]).toBeUndefined();
    replace(conf, good);
    await waitFor(
      "native XDP again",
      () =>
        /prog\/xdp id \d+ name wan_guard/.test(ip("-n", RTR, "link", "show", "wan0")) &&
        !/xdpgeneric/.test(ip("-n", RTR, "link", "show", "wan0")),
    );
    expect(events().some((e) => e.event === "xdp_mode_change")).toBe(true);
  }, 60_000);

  it("restarts without a window: the guard stays attached and no blocklisted packet passes while the loader is replaced", async () => {
    const progBefore = ip("-n", RTR, "link", "show", "wan0").match(/prog\/xdp id (\d+)/)?.[1];
    const dropsBefore = metric('router_dataplane_drop_packets_total{reason="blocklist"}');
    const s = await sink();
    const traffic = Promise.all([send(CLEAN, 1, 4000, 2000), send(BLOCKED, 2, 4000, 2000)]);
    await sleep(500);
    await stopLoader();
    // between the two loaders the pinned link keeps the old program in place
    expect(ip("-n", RTR, "link", "show", "wan0")).toMatch(/prog\/xdp id \d+ name wan_guard/);
    await startLoader();
    await traffic;
    const got = await s.stop();
    expect(got["2"]).toBeUndefined();
    expect(got["1"]?.distinct).toBe(4000);
    const progAfter = ip("-n", RTR, "link", "show", "wan0").match(/prog\/xdp id (\d+)/)?.[1];
    expect(progAfter).not.toBe(progBefore); // the new program replaced the old one in place
    expect(
      events().filter((e) => e.event === "attach" && e.msg.includes("updated in place")).length,
    ).toBeGreaterThanOrEqual(3);
    // counters survived the restart (pinned maps reused)
    expect(metric('router_dataplane_drop_packets_total{reason="blocklist"}')).toBeGreaterThanOrEqual(
      dropsBefore + 4000,
    );
  }, 60_000);

  it("after a killed loader whose pins are gone (its bpffs went with it), takes over its guard on the WAN instead of failing with EBUSY, so the guard keeps dropping once the old link is released", async () => {
    const orphans = `${pinRoot}-orphans`;
    loader!.kill("SIGKILL");
    await new Promise((r) => loader!.once("close", r));
    // the killed loader's link pins, out of the new loader's sight: the links stay attached while they exist
    expect(spawnSync("mv", [join(pinRoot, "links"), orphans]).status).toBe(0);
    expect(ip("-n", RTR, "link", "show", "wan0")).toMatch(/prog\/xdp id \d+ name wan_guard/);
    const from = events().length;
    try {
      await startLoader();
    } finally {
      // the old pins go, as the killed loader's bpffs does: what the new loader did not take over is released
      rmSync(orphans, { recursive: true, force: true });
    }
    const s = await sink();
    const [clean, blocked] = await Promise.all([send(CLEAN, 1, 200, 1000), send(BLOCKED, 2, 200, 1000)]);
    const got = await s.stop();
    expect([clean, blocked]).toEqual([200, 200]);
    expect({ blocked: got["2"]?.distinct ?? 0, clean: got["1"]?.distinct }).toEqual({ blocked: 0, clean: 200 });
    expect(ip("-n", RTR, "link", "show", "wan0")).toMatch(/prog\/xdp id \d+ name wan_guard/);
    const started = events().slice(from);
    expect(started.filter((e) => e.event === "bpf_degraded").map((e) => e.msg)).toEqual([]);
    expect(started.some((e) => e.event === "xdp_adopt")).toBe(true);
  }, 60_000);

  it("started while another XDP program holds the WAN (EBUSY): degraded and loud, and attaches by itself once that program is gone", async () => {
    const attachDegraded = () => metric('router_dataplane_degraded{reason="attach"}');
    await stopLoader();
    rmSync(join(pinRoot, "links"), { recursive: true, force: true }); // our links go: the WAN runs nothing
    ip("-n", RTR, "link", "set", "dev", "wan0", "xdp", "obj", join(BUILD, "bench_pass.bpf.o"), "sec", "xdp");
    try {
      await startLoader();
      expect(attachDegraded()).toBe(1);
      expect(ip("-n", RTR, "link", "show", "wan0")).toMatch(/prog\/xdp id \d+ name bench_pass/);
    } finally {
      ip("-n", RTR, "link", "set", "dev", "wan0", "xdp", "off");
    }
    await waitFor(
      "the guard on the WAN again",
      () => /prog\/xdp id \d+ name wan_guard/.test(ip("-n", RTR, "link", "show", "wan0")),
      15_000,
    );
    await waitFor("the attach to recover", () => attachDegraded() === 0, 5_000);
    const s = await sink();
    const [clean, blocked] = await Promise.all([send(CLEAN, 1, 200, 1000), send(BLOCKED, 2, 200, 1000)]);
    const got = await s.stop();
    expect([clean, blocked]).toEqual([200, 200]);
    expect({ blocked: got["2"]?.distinct ?? 0, clean: got["1"]?.distinct }).toEqual({ blocked: 0, clean: 200 });
  }, 60_000);
});

describe.skipIf(!t.ok || !tier("ebpf-upstream", { root: true, commands: ["busybox", "conntrack"] }).ok)(
  "router-dataplane on a WAN behind an ISP box (a private upstream handing out the WAN address by DHCP)",
  () => {
    const tag = process.pid % 100000;
    const RTR = `dpupr${tag}`;
    const ISP = `dpupi${tag}`;
    const INET = `dpupn${tag}`;
    const pinRoot = `/sys/fs/bpf/router-dataplane-upstream-${process.pid}`;
    const port = 20000 + (process.pid % 1000);
    const SERVER = "93.184.216.34";
    let dir = "";
    let conf = "";
    let wanMac = "";
    let loader: ChildProcess | undefined;
    let loaderLog = "";
    let udhcpd: ChildProcess | undefined;
    let udhcpc: ChildProcess | undefined;
    const children: ChildProcess[] = [];

    const metrics = () => parseMetrics(inNetns(RTR, "curl", ["-sf", `http://127.0.0.1:${port}/metrics`]));
    const metric = (name: string) => metrics().get(name) ?? 0;
    const upstreamLog = () =>
      jsonLines<LogLine>(loaderLog)
        .filter((e) => e.event === "upstream")
        .map((e) => e.msg);
    const wanAddrs = () =>
      (
        JSON.parse(ip("-n", RTR, "-j", "addr", "show", "dev", "wan0")) as Array<{
          addr_info: Array<{ family: string; local: string; prefixlen: number }>;
        }>
      )[0].addr_info
        .filter((a) => a.family === "inet")
        .map((a) => `${a.local}/${a.prefixlen}`);

    /** The ISP box's DHCP server for subnet 192.168.N.0/24 (gateway .1, one address .100 to lease). */
    function startDhcpServer(n: number): void {
      const cfg = join(dir, `udhcpd-${n}.conf`);
      writeFileSync(
        cfg,
        [
          `start 192.168.${n}.100`,
          `end 192.168.${n}.100`,
          "interface cust",
          `lease_file ${join(dir, `udhcpd-${n}.leases`)}`,
          `pidfile ${join(dir, `udhcpd-${n}.pid`)}`,
          "option subnet 255.255.255.0",
          `option router 192.168.${n}.1`,
          "option lease 600",
          "",
        ].join("\n"),
      );
      writeFileSync(join(dir, `udhcpd-${n}.leases`), "");
      udhcpd = spawnInNetns(ISP, "busybox", ["udhcpd", "-f", cfg]);
      children.push(udhcpd);
    }

    /** A DHCP client on the router's WAN as a host's would be: it configures the lease and the default route. */
    function startDhcpClient(): void {
      const script = join(dir, "udhcpc.script");
      writeFileSync(
        script,
        [
          "#!/bin/sh",
          'case "$1" in',
          'deconfig) ip -4 addr flush dev "$interface" ;;',
          'bound|renew) ip -4 addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface";' +
            ' [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface" ;;',
          "esac",
          "exit 0",
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      udhcpc = spawnInNetns(RTR, "busybox", [
        "udhcpc",
        "-f",
        "-i",
        "wan0",
        "-s",
        script,
        "-t",
        "30",
        "-T",
        "1",
        "-A",
        "1",
      ]);
      children.push(udhcpc);
    }

    /** Spoofed UDP frames from the ISP's side of the WAN link to the router's address, from src. */
    const sendFromIsp = (
      src: string,
      dst: string,
      p: number,
      tagN: number,
      count: number,
      pps: number,
      sport = 40000,
    ) => sendFrames(ISP, { ifname: "cust", dstMac: wanMac, src, dst, port: p, sport, tag: tagN, count, pps });

    /** Counts UDP datagrams on port p of the router; stop() returns per-tag counts. */
    const sink = (p: number) => udpSink(RTR, children, p);

    /** Asks a UDP echo server from the router; the addresses it saw the questions come from. */
    function ask(dst: string, p: number, count = 2): string[] {
      const out = inNetns(RTR, join(TOOLS, "traffic"), [
        "ask",
        "--dst",
        dst,
        "--port",
        String(p),
        "--count",
        String(count),
        "--timeout-ms",
        "1000",
      ]);
      return jsonLines<{ seen_as?: string; error?: string }>(out).map((l) => l.seen_as ?? `error: ${l.error}`);
    }

    beforeAll(async () => {
      buildEbpf("loader");
      buildEbpf("tests");
      ensureBpffs();
      dir = tempDir("dp-upstream-");
      for (const ns of [RTR, ISP, INET]) spawnSync("ip", ["netns", "del", ns]);
      for (const ns of [RTR, ISP, INET]) ip("netns", "add", ns);
      ip("link", "add", "wan0", "netns", RTR, "type", "veth", "peer", "name", "cust", "netns", ISP);
      ip("link", "add", "uplink", "netns", ISP, "type", "veth", "peer", "name", "isp", "netns", INET);
      for (const [ns, dev] of [
        [RTR, "lo"],
        [RTR, "wan0"],
        [ISP, "lo"],
        [ISP, "cust"],
        [ISP, "uplink"],
        [INET, "lo"],
        [INET, "isp"],
      ])
        ip("-n", ns, "link", "set", dev, "up");
      // the ISP box: 192.168.1.1 on the customer side, NAT to its own public address
      ip("-n", ISP, "addr", "add", "192.168.1.1/24", "dev", "cust");
      ip("-n", ISP, "addr", "add", "81.23.0.1/30", "dev", "uplink");
      ip("-n", ISP, "route", "add", "default", "via", "81.23.0.2");
      inNetns(ISP, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
      inNetns(
        ISP,
        "nft",
        ["-f", "-"],
        'table ip box {\n chain post { type nat hook postrouting priority srcnat; oifname "uplink" masquerade; }\n}\n',
      );
      ip("-n", INET, "addr", "add", "81.23.0.2/30", "dev", "isp");
      ip("-n", INET, "addr", "add", `${SERVER}/32`, "dev", "lo");
      wanMac = (JSON.parse(ip("-n", RTR, "-j", "link", "show", "wan0")) as Array<{ address: string }>)[0].address;
      for (const [ns, bind] of [
        [ISP, "isp-echo"],
        [INET, "inet-echo"],
      ]) {
        const echo = spawnInNetns(ns, join(TOOLS, "traffic"), ["echo", "--port", "7"]);
        children.push(echo);
        let ready = "";
        echo.stdout?.on("data", (d) => (ready += d));
        await waitFor(`the ${bind} server`, () => ready.includes('"ready"'));
      }

      conf = join(dir, "dataplane.conf");
      const nft = join(dir, "router.nft");
      copyFileSync(join(FIXTURES, "router.nft"), nft);
      writeFileSync(
        conf,
        config({ pinRoot, stateDir: join(dir, "state"), port, block: join(TABLES, "block.txt"), nft })
          .replace("udp_rate = 100000", "udp_rate = 200")
          .replace("udp_burst = 200000", "udp_burst = 200"),
      );
      // the guard runs before the WAN has an address, as at boot
      loader = spawnInNetns(RTR, LOADER, ["--config", conf]);
      loader.stderr?.on("data", (d) => (loaderLog += d));
      await waitFor(
        "the loader to start",
        () => /"event":"started"/.test(loaderLog) || loader!.exitCode !== null,
        30_000,
      );
      if (loader.exitCode !== null) throw new Error(`loader exited ${loader.exitCode}:\n${loaderLog}`);
      await waitFor("the metrics endpoint", () => metricsUp(metrics));
    }, 600_000);

    afterAll(async () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      await stopProcess(loader);
      for (const ns of [RTR, ISP, INET]) spawnSync("ip", ["netns", "del", ns]);
      rmSync(pinRoot, { recursive: true, force: true });
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("gets its lease through the guard (the offer comes from the box's private address before the WAN has one) and learns the upstream", async () => {
      expect(ip("-n", RTR, "link", "show", "wan0")).toMatch(/prog\/xdp id \d+ name wan_guard/);
      expect(wanAddrs()).toEqual([]);
      expect(metric('router_dataplane_upstream_prefixes{interface="wan0",family="ipv4"}')).toBe(0);
      startDhcpServer(1);
      startDhcpClient();
      await waitFor("the lease", () => wanAddrs().includes("192.168.1.100/24"), 30_000);
      await waitFor(
        "the upstream to follow the lease",
        () =>
          upstreamLog().at(-1) ===
          "[interface wan0]: bogon sources let through from its upstream: 192.168.1.0/24, 192.168.1.1/32",
      );
      expect(metric('router_dataplane_upstream_prefixes{interface="wan0",family="ipv4"}')).toBe(2);
    }, 60_000);

    it("reaches the ISP box (a bogon source) and the internet host through it", () => {
      expect(ask("192.168.1.1", 7)).toEqual(["192.168.1.100", "192.168.1.100"]);
      // the box NATs the router to its own public address
      expect(ask(SERVER, 7)).toEqual(["81.23.0.1", "81.23.0.1"]);
    });

    it("still drops a spoofed bogon (10.0.0.0/8) on the WAN link, while the upstream's other hosts pass", async () => {
      const before = metrics();
      const s = await sink(9999);
      await Promise.all([
        sendFromIsp("10.9.9.9", "192.168.1.100", 9999, 1, 200, 1000),
        sendFromIsp("192.168.1.77", "192.168.1.100", 9999, 2, 200, 1000),
      ]);
      const got = await s.stop();
      expect(got["1"]).toBeUndefined();
      expect(got["2"]?.distinct).toBe(200);
      expect(
        metric('router_dataplane_drop_packets_total{reason="bogon"}') -
          (before.get('router_dataplane_drop_packets_total{reason="bogon"}') ?? 0),
      ).toBe(200);
    });

    it("when the lease moves to another subnet, the old subnet is a bogon again and the new one passes", async () => {
      // the box is renumbered; the router releases its lease and asks again
      udhcpd!.kill("SIGTERM");
      await collect(udhcpd!);
      ip("-n", ISP, "addr", "flush", "dev", "cust");
      ip("-n", ISP, "addr", "add", "192.168.2.1/24", "dev", "cust");
      startDhcpServer(2);
      udhcpc!.kill("SIGUSR2");
      await waitFor("the release", () => wanAddrs().length === 0);
      udhcpc!.kill("SIGUSR1");
      await waitFor("the new lease", () => wanAddrs().includes("192.168.2.100/24"), 30_000);
      await waitFor("the upstream to follow", () =>
        (upstreamLog().at(-1) ?? "").endsWith("upstream: 192.168.2.0/24, 192.168.2.1/32"),
      );
      expect(metric('router_dataplane_upstream_prefixes{interface="wan0",family="ipv4"}')).toBe(2);
      const s = await sink(9999);
      await Promise.all([
        sendFromIsp("192.168.1.77", "192.168.2.100", 9999, 1, 100, 1000),
        sendFromIsp("192.168.2.77", "192.168.2.100", 9999, 2, 100, 1000),
      ]);
      const got = await s.stop();
      expect(got["1"]).toBeUndefined();
      expect(got["2"]?.distinct).toBe(100);
      expect(ask("192.168.2.1", 7)).toEqual(["192.168.2.100", "192.168.2.100"]);
    }, 60_000);

    it("passes a UDP reply flow at 5x its source's limit without a ratelimit drop, while unsolicited UDP from the same source to another port is limited", async () => {
      // the router starts a flow to the server from port 45000 (no answer needed: the flow is in conntrack)
      inNetns(RTR, join(TOOLS, "traffic"), [
        "ask",
        "--dst",
        SERVER,
        "--port",
        "4433",
        "--sport",
        "45000",
        "--timeout-ms",
        "100",
      ]);
      expect(inNetns(RTR, "conntrack", ["-L", "-p", "udp", "--dport", "4433"])).toMatch(/sport=45000 dport=4433/);
      expect(metric("router_dataplane_conntrack_replies")).toBe(1);
      const before = metrics();
      const replies = await sink(45000);
      const other = await sink(45001);
      // 2 s at 1000/s each, the limit being 200/s with a burst of 200 (what comes back through the box's NAT)
      const [sentReplies, sentOther] = await Promise.all([
        sendFromIsp(SERVER, "192.168.2.100", 45000, 1, 2000, 1000, 4433),
        sendFromIsp(SERVER, "192.168.2.100", 45001, 2, 2000, 1000, 4433),
      ]);
      const gotReplies = (await replies.stop())["1"]?.distinct ?? 0;
      const gotOther = (await other.stop())["2"]?.distinct ?? 0;
      const after = metrics();
      const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
      expect(sentReplies).toBe(2000);
      expect(sentOther).toBe(2000);
      expect(gotReplies).toBe(2000);
      // the guard's own counters: every ratelimit drop is one of the unsolicited flow's
      expect(delta('router_dataplane_drop_packets_total{reason="ratelimit_udp"}')).toBe(sentOther - gotOther);
      expect(delta('router_dataplane_xdp_passed_packets_total{reason="conntrack_reply"}')).toBeGreaterThanOrEqual(
        2000 - 200 - 200 * 3,
      );
      // the unsolicited flow gets at most what the bucket gives the source in the time (the replies take their share)
      expect(gotOther).toBeLessThanOrEqual(200 + 200 * 3);
      expect(gotOther).toBeLessThan(sentOther / 2);
    }, 60_000);
  },
);
