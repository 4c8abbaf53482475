/**
 * The loader fails closed, with the real loader in network namespaces: a router whose WAN is a macvlan link (its
 * driver has no native XDP, like Intel e1000e/I219 or Realtek r8169 NICs), an ISP namespace that is also "the
 * internet" (an echo server that reports the address it sees, router advertisements from radvd), a management
 * client and a trusted client. The router starts with forwarding off (as a machine configured to boot with it off);
 * the loader's ruleset is the first thing in.
 * Scenarios: a clean start (forwarding comes on only after the table, the uplink's RA default route survives it),
 * native XDP refused (generic fallback; native-only degraded), a ruleset nftables refuses at start (built-in
 * fallback, then a valid one on reload), programs that cannot load (no CAP_BPF) and a missing bpffs (retried on
 * SIGHUP). /health's digest is checked against the file's SHA-256 computed here.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import {
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
  loaderHealth,
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

const t = tier("ebpf-failclosed", {
  root: true,
  commands: [...BUILD_COMMANDS, "ip", "nsenter", "curl", "nft", "radvd", "setpriv", "mount"],
});

const ID = process.pid % 100000;
const NS = { rtr: `fcr${ID}`, isp: `fci${ID}`, mgmt: `fcm${ID}`, lan: `fct${ID}` };
const PIN = `/sys/fs/bpf/router-dataplane-fc-${process.pid}`;
const PORT = 21000 + (process.pid % 1000);
const WAN = "81.2.69.2";
const ISP = "81.2.69.1";
const MGMT_GW = "10.10.0.1";
const LAN_GW = "10.20.0.1";
const LAN_HOST = "10.20.0.2";
const CLEAN = "8.8.8.8";
const BLOCKED = "185.220.101.5"; // 185.220.101.0/24 in the blocklist fixture
const TALOS_API = 50000;

interface LogLine {
  level: string;
  event: string;
  msg: string;
}

interface Health {
  status: string;
  reasons: { reason: string; message: string }[];
  ruleset: string;
  ruleset_sha256: string | null;
  config_generation: string | null;
  forwarding: string;
  forwarding_ipv4: boolean;
  forwarding_ipv6: boolean;
  reload_failures: { config: number; tables: number; nftables: number };
  interfaces: { interface: string; attached: boolean; mode: string; fell_back?: boolean; error: string | null }[];
}

/** A transit ruleset in the renderer's shape: trusted may reach the WAN (masqueraded), nothing else is forwarded. */
const RULESET = `# fail-closed test ruleset
define if_wan0 = "wan0"

table inet router {
	comment "router transit policy v1"
	chain input {
		type filter hook input priority filter; policy accept;
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan0.20" oifname $if_wan0 accept
		counter drop
	}
	chain nat_postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname $if_wan0 ip saddr 10.0.0.0/8 masquerade
	}
}
`;

/** One that nftables refuses (a jump to a chain that does not exist): it must never half-apply. */
const REFUSED = RULESET.replace('iifname "lan0.20" oifname $if_wan0 accept', 'iifname "lan0.20" jump nowhere');

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function config(
  dir: string,
  o: { xdpMode?: string; pinRoot?: string; generation?: string; metricsAddress?: string; extra?: string } = {},
): string {
  return `[global]
pin_root = ${o.pinRoot ?? PIN}
metrics_address = ${o.metricsAddress ?? "0.0.0.0"}
metrics_port = ${PORT}
nft_ruleset = ${join(dir, "router.nft")}
state_dir = ${join(dir, "state")}
enable_forwarding = true
management_links = lan0.10
management_ports = 50000, 50001, 6443
generation = ${o.generation ?? "0a1b2c"}

[interface wan0]
role = wan
xdp_mode = ${o.xdpMode ?? "native"}

[interface lan0.10]
role = segment
segment = mgmt
segment_id = 10

[interface lan0.20]
role = segment
segment = trusted
segment_id = 20

[tables]
block = ${join(FIXTURES, "tables/block.txt")}
${o.extra ?? ""}`;
}

describe.skipIf(!t.ok)("the loader fails closed: ruleset first, degraded but running, forwarding last", () => {
  let dir = "";
  let loader: ChildProcess | undefined;
  let log = "";
  let radvd: ChildProcess | undefined;
  const children: ChildProcess[] = [];
  const bpffsDir = () => join(dir, "late-bpffs");

  const events = () => jsonLines<LogLine>(log);
  const proc = (key: string) => Number(inNetns(NS.rtr, "cat", [`/proc/sys/${key}`]).trim());
  const forwarding = () => ({ ipv4: proc("net/ipv4/ip_forward"), ipv6: proc("net/ipv6/conf/all/forwarding") });
  const routerTable = () =>
    spawnSync("nsenter", [`--net=/run/netns/${NS.rtr}`, "nft", "list", "table", "inet", "router"], {
      encoding: "utf8",
    }).stdout;

  /** GET /health from ns (default: the router itself); undefined when nothing answers. */
  const health = (ns = NS.rtr, host = "127.0.0.1") => loaderHealth<Health>(ns, PORT, host);

  const metrics = () => parseMetrics(inNetns(NS.rtr, "curl", ["-sf", `http://127.0.0.1:${PORT}/metrics`]));

  /** Asks the echo server at dst (TCP) from ns; the address it saw, or undefined when no answer came. */
  async function seenAs(ns: string, dst: string, port = 7777): Promise<string | undefined> {
    const r = await collect(
      spawnInNetns(ns, join(TOOLS, "traffic"), [
        "ask",
        "--dst",
        dst,
        "--port",
        String(port),
        "--tcp",
        "--timeout-ms",
        "1000",
      ]),
    );
    return jsonLines<{ seen_as?: string }>(r.stdout)[0]?.seen_as;
  }

  /** Starts the loader (prefix: e.g. setpriv dropping capabilities) and waits for its start to finish. */
  async function start(prefix: string[] = []): Promise<void> {
    loader = await startLoaderIn(NS.rtr, [...prefix, LOADER, "--config", join(dir, "dataplane.conf")], {
      log: () => log,
      onLog: (d) => (log += d),
      ready: () => health() !== undefined,
    });
  }

  /** Stops the loader and puts the router back as the machine boots: no table of ours, forwarding off. */
  async function reset(): Promise<void> {
    await stopProcess(loader);
    spawnSync("nsenter", [`--net=/run/netns/${NS.rtr}`, "nft", "delete", "table", "inet", "router"]);
    inNetns(NS.rtr, "sysctl", ["-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"]);
    inNetns(NS.rtr, "sysctl", ["-qw", "net.ipv6.conf.wan0.accept_ra=1"]);
    rmSync(PIN, { recursive: true, force: true });
  }

  const replace = replaceFile;

  function writeConfig(o: Parameters<typeof config>[1] = {}): void {
    replace(join(dir, "dataplane.conf"), config(dir, o));
  }

  /** Spoofed UDP frames from the ISP to the router's WAN address (MAC of the macvlan); returns frames sent. */
  function send(src: string, tag: number, count: number): Promise<number> {
    const mac = (JSON.parse(ip("-n", NS.rtr, "-j", "link", "show", "wan0")) as { address: string }[])[0].address;
    return sendFrames(NS.isp, { ifname: "cust", dstMac: mac, src, dst: WAN, tag, count, pps: 1000 });
  }

  /** Counts what reaches a UDP sink on the router while fn runs: received per tag. */
  async function sinkDuring(fn: () => Promise<unknown>): Promise<Record<string, number>> {
    const sink = await udpSink(NS.rtr, children);
    await fn();
    return Object.fromEntries(Object.entries(await sink.stop()).map(([k, v]) => [k, v.received]));
  }

  beforeAll(async () => {
    buildEbpf("loader");
    buildEbpf("tests");
    ensureBpffs();
    dir = tempDir("dp-fc-");
    mkdirSync(join(dir, "state"));
    for (const ns of Object.values(NS)) {
      spawnSync("ip", ["netns", "del", ns]);
      ip("netns", "add", ns);
      ip("-n", ns, "link", "set", "lo", "up");
      inNetns(ns, "sysctl", ["-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
    }
    // the WAN: a macvlan on the uplink's veth, a driver without native XDP (ndo_bpf)
    ip("link", "add", "wlow", "netns", NS.rtr, "type", "veth", "peer", "name", "cust", "netns", NS.isp);
    inNetns(NS.rtr, "sysctl", ["-qw", "net.ipv6.conf.wlow.accept_ra=0"]);
    ip("-n", NS.rtr, "link", "add", "wan0", "link", "wlow", "type", "macvlan", "mode", "bridge");
    ip("link", "add", "lan0.10", "netns", NS.rtr, "type", "veth", "peer", "name", "eth0", "netns", NS.mgmt);
    ip("link", "add", "lan0.20", "netns", NS.rtr, "type", "veth", "peer", "name", "eth0", "netns", NS.lan);
    for (const [ns, dev] of [
      [NS.rtr, "wlow"],
      [NS.rtr, "wan0"],
      [NS.rtr, "lan0.10"],
      [NS.rtr, "lan0.20"],
      [NS.isp, "cust"],
      [NS.mgmt, "eth0"],
      [NS.lan, "eth0"],
    ])
      ip("-n", ns, "link", "set", dev, "up");
    const addr = (ns: string, a: string, dev: string) => ip("-n", ns, "addr", "add", a, "dev", dev, "nodad");
    addr(NS.rtr, `${WAN}/24`, "wan0");
    addr(NS.isp, `${ISP}/24`, "cust");
    addr(NS.isp, "2a01:4f8:1::1/64", "cust");
    addr(NS.rtr, `${MGMT_GW}/24`, "lan0.10");
    addr(NS.mgmt, "10.10.0.2/24", "eth0");
    addr(NS.rtr, `${LAN_GW}/24`, "lan0.20");
    addr(NS.lan, `${LAN_HOST}/24`, "eth0");
    ip("-n", NS.mgmt, "route", "add", "default", "via", MGMT_GW);
    ip("-n", NS.lan, "route", "add", "default", "via", LAN_GW);
    ip("-n", NS.rtr, "route", "add", "default", "via", ISP);
    // a hostile neighbour: the ISP routes the trusted segment to the router, so WAN→LAN is tested, not assumed
    ip("-n", NS.isp, "route", "add", "10.20.0.0/24", "via", WAN);
    inNetns(NS.rtr, "sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.wan0.rp_filter=0"]);
    inNetns(NS.isp, "sysctl", ["-qw", "net.ipv6.conf.all.forwarding=1"]);
    // the internet's and a trusted host's service, and one on the router at the Talos API's port
    for (const [ns, port] of [
      [NS.isp, 7777],
      [NS.lan, 7777],
      [NS.rtr, TALOS_API],
    ] as const) {
      const echo = spawnInNetns(ns, join(TOOLS, "traffic"), ["echo", "--port", String(port)]);
      children.push(echo);
      let out = "";
      echo.stdout?.on("data", (d) => (out += d));
      await waitFor("the echo server", () => out.includes('"ready"'));
    }
    // the ISP's router advertisements: the WAN takes its IPv6 default route from them (SLAAC)
    writeFileSync(
      join(dir, "radvd.conf"),
      "interface cust {\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 4;\n AdvDefaultLifetime 1800;\n" +
        " prefix 2a01:4f8:1::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n",
    );
    radvd = spawn("nsenter", [
      `--net=/run/netns/${NS.isp}`,
      "radvd",
      "-C",
      join(dir, "radvd.conf"),
      "-p",
      join(dir, "radvd.pid"),
      "-n",
      "-m",
      "stderr",
      "-u",
      "root",
    ]);
    await reset();
  }, 600_000);

  afterAll(async () => {
    await stopProcess(loader);
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    if (radvd && radvd.exitCode === null) radvd.kill("SIGTERM");
    spawnSync("umount", [bpffsDir()]);
    for (const ns of Object.values(NS)) spawnSync("ip", ["netns", "del", ns]);
    rmSync(PIN, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("routes nothing before its ruleset is in, switches forwarding on only after it, and keeps the uplink's RA default route", async () => {
    writeFileSync(join(dir, "router.nft"), RULESET);
    writeConfig();
    await waitFor("the RA default route on the WAN", () =>
      /default via fe80::\S+ dev wan0 proto ra/.test(ip("-n", NS.rtr, "-6", "route", "show", "default")),
    );
    // as the machine boots: forwarding off, so nothing crosses
    expect(forwarding()).toEqual({ ipv4: 0, ipv6: 0 });
    expect(await seenAs(NS.lan, ISP)).toBeUndefined();
    // a watcher that looks for our table the moment forwarding comes on
    const watcher = spawnInNetns(NS.rtr, "timeout", [
      "30",
      "sh",
      "-c",
      'while [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; do :; done; ' +
        "if nft list table inet router >/dev/null 2>&1; then echo table-in; else echo no-table; fi",
    ]);
    children.push(watcher);
    const watched = collect(watcher);
    await start();
    expect((await watched).stdout.trim()).toBe("table-in");
    expect(forwarding()).toEqual({ ipv4: 1, ipv6: 1 });
    const order = events().map((e) => e.event);
    expect(order.indexOf("nft_applied")).toBeGreaterThanOrEqual(0);
    expect(order.indexOf("forwarding_on")).toBeGreaterThan(order.indexOf("nft_applied"));
    // the uplink accepts RAs while forwarding (accept_ra 2 before forwarding, so the kernel kept its route)
    expect(proc("net/ipv6/conf/wan0/accept_ra")).toBe(2);
    expect(ip("-n", NS.rtr, "-6", "route", "show", "default")).toMatch(/default via fe80::\S+ dev wan0 proto ra/);
    // routed, filtered and NATed by the ruleset
    expect(await seenAs(NS.lan, ISP)).toBe(WAN);
    expect(await seenAs(NS.isp, LAN_HOST)).toBeUndefined();
    const h = health()!;
    expect(h.body.ruleset).toBe("applied");
    expect(h.body.ruleset_sha256).toBe(sha256(readFileSync(join(dir, "router.nft"), "utf8")));
    expect(h.body.config_generation).toBe("0a1b2c");
    expect(h.body.forwarding).toBe("on");
  }, 60_000);

  it("runs the guard in generic mode where the driver has no native XDP, says so, and the guard drops a blocklisted source", async () => {
    expect(ip("-n", NS.rtr, "link", "show", "wan0")).toMatch(/xdpgeneric/);
    expect(events().some((e) => e.event === "xdp_generic_fallback" && e.msg.startsWith("wan0:"))).toBe(true);
    const m = metrics();
    expect(m.get('router_dataplane_xdp_mode{interface="wan0",link="wan0",mode="generic"}')).toBe(1);
    expect(m.get('router_dataplane_xdp_mode{interface="wan0",link="wan0",mode="native"}')).toBe(0);
    expect(m.get('router_dataplane_degraded{reason="attach"}')).toBe(0);
    const h = health()!;
    expect(h.code).toBe(200);
    expect(h.body.status).toBe("ok");
    expect(h.body.interfaces.find((i) => i.interface === "wan0")).toMatchObject({
      attached: true,
      mode: "generic",
      fell_back: true,
    });
    const drops = m.get('router_dataplane_drop_packets_total{reason="blocklist"}') ?? 0;
    const got = await sinkDuring(() => Promise.all([send(CLEAN, 1, 100), send(BLOCKED, 2, 100)]));
    expect(got["1"]).toBe(100);
    expect(got["2"]).toBeUndefined();
    expect(metrics().get('router_dataplane_drop_packets_total{reason="blocklist"}')).toBe(drops + 100);
  }, 60_000);

  it("restarts on such a driver without a window: the generic link is updated in place and no blocklisted packet passes", async () => {
    const before = ip("-n", NS.rtr, "link", "show", "wan0").match(/prog\/xdp id (\d+)/)?.[1];
    const from = log.length;
    const got = await sinkDuring(async () => {
      const traffic = Promise.all([send(CLEAN, 1, 3000), send(BLOCKED, 2, 3000)]);
      await sleep(500);
      await stopProcess(loader);
      // between the two loaders the pinned link keeps the old program on the link
      expect(ip("-n", NS.rtr, "link", "show", "wan0")).toMatch(/xdpgeneric/);
      await start();
      await traffic;
    });
    expect(got["2"]).toBeUndefined();
    expect(got["1"]).toBe(3000);
    const after = jsonLines<LogLine>(log.slice(from));
    expect(after.some((e) => e.event === "xdp_mode_change")).toBe(false);
    expect(
      after.some((e) => e.event === "attach" && /^wan0: xdp@wan0 \(updated in place, generic mode\)/.test(e.msg)),
    ).toBe(true);
    expect(ip("-n", NS.rtr, "link", "show", "wan0").match(/prog\/xdp id (\d+)/)?.[1]).not.toBe(before);
  }, 60_000);

  it("reports a digest that is not the file's after a ruleset is rejected on reload, and keeps the previous one in force", async () => {
    const applied = sha256(readFileSync(join(dir, "router.nft"), "utf8"));
    const failures = health()!.body.reload_failures.nftables;
    replace(join(dir, "router.nft"), REFUSED);
    await waitFor("the rejection", () => health()!.body.reload_failures.nftables === failures + 1);
    const h = health()!.body;
    expect(h.ruleset).toBe("applied");
    expect(h.ruleset_sha256).toBe(applied);
    expect(h.ruleset_sha256).not.toBe(sha256(REFUSED));
    expect(routerTable()).toContain("router transit policy v1");
    expect(await seenAs(NS.lan, ISP)).toBe(WAN);
    replace(join(dir, "router.nft"), RULESET.replace("policy v1", "policy v2"));
    await waitFor(
      "the v2 ruleset",
      () => health()!.body.ruleset_sha256 === sha256(RULESET.replace("policy v1", "policy v2")),
    );
  }, 60_000);

  it("with xdp_mode = native-only on such a driver reports degraded (503) and keeps the ruleset in force", async () => {
    writeConfig({ xdpMode: "native-only", generation: "0a1b2d" });
    await waitFor("the native-only configuration", () => health()?.body.config_generation === "0a1b2d");
    const h = health()!;
    expect(h.code).toBe(503);
    expect(h.body.status).toBe("degraded");
    expect(h.body.reasons.map((r) => r.reason)).toEqual(["attach"]);
    expect(h.body.reasons[0].message).toMatch(/wan0: cannot attach XDP \(native mode\): Operation not supported/);
    expect(h.body.interfaces.find((i) => i.interface === "wan0")).toMatchObject({ attached: false, mode: "none" });
    const m = metrics();
    expect(m.get('router_dataplane_degraded{reason="attach"}')).toBe(1);
    expect(m.get('router_dataplane_xdp_mode{interface="wan0",link="wan0",mode="none"}')).toBe(1);
    expect(routerTable()).toContain("router transit policy v2");
    expect(await seenAs(NS.isp, LAN_HOST)).toBeUndefined();
    expect(await seenAs(NS.lan, ISP)).toBe(WAN);
    expect(loader!.exitCode).toBeNull();
  }, 60_000);

  it("loads its built-in fail-closed ruleset when nftables refuses the configured one at start, and a valid one on reload replaces it", async () => {
    await reset();
    writeFileSync(join(dir, "router.nft"), REFUSED);
    writeConfig();
    await start();
    expect(events().some((e) => e.event === "ruleset_fallback")).toBe(true);
    expect(routerTable()).toContain("router-dataplane fail-closed fallback");
    const h = health()!;
    expect(h.code).toBe(503);
    expect(h.body).toMatchObject({ status: "degraded", ruleset: "fallback", ruleset_sha256: null, forwarding: "off" });
    expect(h.body.reasons.map((r) => r.reason)).toContain("ruleset");
    expect(metrics().get("router_dataplane_ruleset_fallback")).toBe(1);
    // forwarding stays off with only the fallback in
    expect(forwarding()).toEqual({ ipv4: 0, ipv6: 0 });
    // the management ports (the Talos API, the loader's metrics and health) answer from the management link only
    expect(await seenAs(NS.mgmt, MGMT_GW, TALOS_API)).toBe("10.10.0.2");
    expect(health(NS.mgmt, MGMT_GW)?.body.ruleset).toBe("fallback");
    expect(await seenAs(NS.lan, LAN_GW, TALOS_API)).toBeUndefined();
    expect(health(NS.lan, LAN_GW)).toBeUndefined();
    expect(await seenAs(NS.isp, WAN, TALOS_API)).toBeUndefined();
    expect(health(NS.isp, WAN)).toBeUndefined();
    // even with forwarding on (Cilium's agent turns it on when it starts), the fallback forwards nothing new
    inNetns(NS.rtr, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
    expect(await seenAs(NS.isp, LAN_HOST)).toBeUndefined();
    expect(await seenAs(NS.lan, ISP)).toBeUndefined();
    inNetns(NS.rtr, "sysctl", ["-qw", "net.ipv4.ip_forward=0"]);

    replace(join(dir, "router.nft"), RULESET);
    await waitFor("the configured ruleset", () => health()?.body.ruleset === "applied");
    const after = health()!;
    expect(after.code).toBe(200);
    expect(after.body.ruleset_sha256).toBe(sha256(RULESET));
    expect(routerTable()).toContain("router transit policy v1");
    expect(forwarding()).toEqual({ ipv4: 1, ipv6: 1 });
    expect(metrics().get("router_dataplane_ruleset_fallback")).toBe(0);
    expect(await seenAs(NS.lan, ISP)).toBe(WAN);
    expect(await seenAs(NS.isp, LAN_HOST)).toBeUndefined();
  }, 60_000);

  it("names an uplink that appears after the start (by its Talos alias) in the fallback's DHCP rules", async () => {
    await reset();
    writeFileSync(join(dir, "router.nft"), REFUSED);
    writeConfig({ extra: "\n[interface uplink9]\nrole = wan\n" });
    await start();
    expect(routerTable()).toMatch(/iifname \{ "wan0", "uplink9" \} udp sport 67 udp dport 68 accept/);
    // the NIC shows up with its kernel name and the alias Talos gives it
    ip("link", "add", "xup9", "netns", NS.rtr, "type", "veth", "peer", "name", "xup9p", "netns", NS.isp);
    ip("-n", NS.rtr, "link", "set", "xup9", "alias", "uplink9");
    await waitFor("the fallback with the NIC's kernel name", () =>
      /iifname \{ "wan0", "xup9" \} udp sport 67 udp dport 68 accept/.test(routerTable()),
    );
    expect(health()!.body.ruleset).toBe("fallback");
    ip("-n", NS.rtr, "link", "del", "xup9");
  }, 60_000);

  it("keeps filtering, NATing and serving /health when the programs cannot be loaded (no CAP_BPF), and stays up", async () => {
    await reset();
    writeFileSync(join(dir, "router.nft"), RULESET);
    writeConfig();
    await start(["setpriv", "--bounding-set=-bpf,-sys_admin,-perfmon", "--"]);
    expect(events().some((e) => e.event === "bpf_degraded" && /the programs cannot be loaded/.test(e.msg))).toBe(true);
    const h = health()!;
    expect(h.code).toBe(503);
    expect(h.body).toMatchObject({ status: "degraded", ruleset: "applied", forwarding: "on" });
    expect(h.body.reasons.map((r) => r.reason)).toEqual(["bpf"]);
    expect(h.body.ruleset_sha256).toBe(sha256(RULESET));
    expect(metrics().get('router_dataplane_degraded{reason="bpf"}')).toBe(1);
    expect(ip("-n", NS.rtr, "link", "show", "wan0")).not.toMatch(/xdp/);
    expect(await seenAs(NS.lan, ISP)).toBe(WAN);
    expect(await seenAs(NS.isp, LAN_HOST)).toBeUndefined();
    await sleep(1500);
    expect(loader!.exitCode).toBeNull();
  }, 60_000);

  it("serves /health once its address comes up after the start (as at boot), without a restart", async () => {
    await reset();
    writeFileSync(join(dir, "router.nft"), RULESET);
    writeConfig({ metricsAddress: "10.10.0.9" });
    loader = await startLoaderIn(NS.rtr, [LOADER, "--config", join(dir, "dataplane.conf")], {
      log: () => log,
      onLog: (d) => (log += d),
      ready: () => events().some((e) => e.event === "metrics" && /cannot serve metrics on 10\.10\.0\.9/.test(e.msg)),
    });
    expect(health(NS.mgmt, "10.10.0.9")).toBeUndefined();
    ip("-n", NS.rtr, "addr", "add", "10.10.0.9/32", "dev", "lan0.10");
    await waitFor("/health on the new address", () => health(NS.mgmt, "10.10.0.9") !== undefined, 12_000, 500);
    expect(health(NS.mgmt, "10.10.0.9")!.body.ruleset).toBe("applied");
    ip("-n", NS.rtr, "addr", "del", "10.10.0.9/32", "dev", "lan0.10");
  }, 60_000);

  it("retries the programs on SIGHUP: a bpffs mounted after the start is used without a restart", async () => {
    await reset();
    mkdirSync(bpffsDir(), { recursive: true });
    writeFileSync(join(dir, "router.nft"), RULESET);
    writeConfig({ pinRoot: join(bpffsDir(), "pins") });
    await start();
    const h = health()!;
    expect(h.body.reasons.map((r) => r.reason)).toEqual(["bpf"]);
    expect(h.body.reasons[0].message).toMatch(/is not on a bpf filesystem/);
    expect(h.body.ruleset).toBe("applied");
    expect(await seenAs(NS.lan, ISP)).toBe(WAN);
    spawnSync("mount", ["-t", "bpf", "bpf", bpffsDir()]);
    loader!.kill("SIGHUP");
    await waitFor("the programs", () => health()?.body.status === "ok");
    await waitFor("the recovery in the log", () => events().some((e) => e.event === "bpf_recovered"));
    expect(ip("-n", NS.rtr, "link", "show", "wan0")).toMatch(/xdpgeneric/);
    const got = await sinkDuring(() => Promise.all([send(CLEAN, 1, 50), send(BLOCKED, 2, 50)]));
    expect(got["1"]).toBe(50);
    expect(got["2"]).toBeUndefined();
    await stopProcess(loader);
    // the links were pinned there: detach them before the mount goes
    rmSync(join(bpffsDir(), "pins"), { recursive: true, force: true });
  }, 60_000);
});
