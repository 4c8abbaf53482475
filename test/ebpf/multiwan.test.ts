/**
 * Multi-WAN failover with the real loader in network namespaces: a router with two uplinks to two
 * ISPs, both connected to an "internet" namespace that answers the probes and runs an echo server
 * reporting the address it sees. The ISPs drop packets their customer sends from foreign addresses
 * (strict reverse-path filtering), so a reply that leaves through the wrong WAN is lost, as with
 * real providers. The router's ruleset carries the rendered mark rules (mangle_prerouting,
 * mangle_output from components/dataplane/nftables.ts), masquerade and a port forward; its main
 * table holds each WAN's default route with metric 1000 + priority, as Talos' networkd installs
 * them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import {
  BUILD_COMMANDS,
  LOADER,
  TOOLS,
  buildEbpf,
  collect,
  ensureBpffs,
  inNetns,
  ip,
  jsonLines,
  parseMetrics,
  sleep,
  spawnInNetns,
  tempDir,
  waitFor,
} from "./lib";

const t = tier("ebpf-multiwan", { root: true, commands: [...BUILD_COMMANDS, "ip", "nsenter", "curl", "nft"] });

const ID = process.pid % 100000;
const NS = { rtr: `mwr${ID}`, isp1: `mwa${ID}`, isp2: `mwb${ID}`, inet: `mwi${ID}`, lan: `mwl${ID}` };
const PIN = `/sys/fs/bpf/router-dataplane-mw-${process.pid}`;
const PORT = 20000 + (process.pid % 1000);
const WAN0 = "81.2.69.2";
const WAN1 = "85.10.20.2";
const WAN0_6 = "2a01:4f8:1::2";
const WAN1_6 = "2a02:2e0:2::2";
const SERVER = "93.184.216.34";
const SERVER6 = "2606:2800:220:1::1";
/* probe rounds of the test configuration: failover bound = interval × down_after + 2 s */
const INTERVAL_S = 1;
const DOWN_AFTER = 3;
const UP_AFTER = 2;

interface LogLine {
  level: string;
  event: string;
  msg: string;
}

interface Answer {
  i: number;
  t: number;
  seen_as?: string;
  error?: string;
}

const RULESET = `# multi-WAN test ruleset: the rendered mark rules, NAT and a port forward
define if_wan0 = "wan0"
define if_wan1 = "wan1"

table inet router {
	chain mangle_prerouting {
		type filter hook prerouting priority mangle; policy accept;
		iifname $if_wan0 ct state new ct mark set ct mark and 0xffffff0f or 0x10
		iifname $if_wan1 ct state new ct mark set ct mark and 0xffffff0f or 0x20
		ct direction reply ct mark and 0xf0 != 0 meta mark set ct mark and 0xf0
	}
	chain mangle_output {
		type route hook output priority mangle; policy accept;
		ct direction reply ct mark and 0xf0 != 0 meta mark set ct mark and 0xf0
	}
	chain nat_prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname { $if_wan0, $if_wan1 } tcp dport 8443 dnat ip to 10.20.0.2:7777
	}
	chain nat_postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname $if_wan0 ip saddr 10.20.0.0/24 masquerade
		oifname $if_wan1 ip saddr 10.20.0.0/24 masquerade
	}
}
`;

function config(dir: string, wans = ["wan0", "wan1"]): string {
  const wan: Record<string, string> = {
    wan0: `[wan wan0]
priority = 10
mark = 0x10
table = 101
probe = 1.1.1.1
probe = 2606:4700:4700::1111   ; answered over IPv6 too
probe_interval = ${INTERVAL_S}s
probe_timeout = 500ms
down_after = ${DOWN_AFTER}
up_after = ${UP_AFTER}
`,
    wan1: `[wan wan1]
priority = 20
mark = 0x20
table = 102
probe = 9.9.9.9
probe_interval = ${INTERVAL_S}s
probe_timeout = 500ms
down_after = ${DOWN_AFTER}
up_after = ${UP_AFTER}
`,
  };
  return `[global]
pin_root = ${PIN}
metrics_address = 127.0.0.1
metrics_port = ${PORT}
state_dir = ${join(dir, "state")}
nft_ruleset = ${join(dir, "router.nft")}

[interface wan0]
role = wan
[interface wan1]
role = wan
[interface lan0.20]
role = segment
segment = trusted
segment_id = 20

${wans.map((w) => wan[w]).join("\n")}`;
}

describe.skipIf(!t.ok)("multi-WAN: probes, per-WAN tables, mark rules, failover and failback", () => {
  let dir = "";
  let conf = "";
  let loader: ChildProcess | undefined;
  let log = "";
  const children: ChildProcess[] = [];

  const events = () => jsonLines<LogLine>(log);
  const metrics = () => parseMetrics(inNetns(NS.rtr, "curl", ["-sf", `http://127.0.0.1:${PORT}/metrics`]));
  const metric = (k: string) => metrics().get(k) ?? Number.NaN;
  const routes = (fam: "-4" | "-6", table: string) => inNetns(NS.rtr, "ip", [fam, "route", "show", "table", table]);
  const rules = (fam: "-4" | "-6") => inNetns(NS.rtr, "ip", [fam, "rule", "show"]);
  const override = () => /default via \S+ dev wan1 proto 201 metric 1 /.test(routes("-4", "main"));

  /** Asks the echo server from a namespace; returns the answers (one per question). */
  async function ask(
    ns: string,
    dst: string,
    o: { tcp?: boolean; count?: number; sport?: number; port?: number } = {},
  ) {
    const args = ["ask", "--dst", dst, "--port", String(o.port ?? 7777)];
    if (o.tcp) args.push("--tcp");
    if (o.count) args.push("--count", String(o.count), "--interval-ms", "200");
    if (o.sport) args.push("--sport", String(o.sport));
    const r = await collect(spawnInNetns(ns, join(TOOLS, "traffic"), args));
    return jsonLines<Answer>(r.stdout);
  }

  async function seenAs(ns: string, dst: string, tcp = true): Promise<string | undefined> {
    return (await ask(ns, dst, { tcp }))[0]?.seen_as;
  }

  /** Packets from the router's wan1 address that arrived at an ISP (its counter). */
  function ispCounter(isp: string, name: string): number {
    const out = inNetns(isp, "nft", ["-j", "list", "counter", "inet", "isp", name]);
    return (JSON.parse(out).nftables.find((x: { counter?: unknown }) => x.counter)?.counter?.packets as number) ?? 0;
  }

  /** ISP 1's upstream fails (or recovers): it forwards nothing any more; the link to the router stays up. */
  function isp1Upstream(ok: boolean): void {
    if (ok) inNetns(NS.isp1, "nft", ["delete", "table", "inet", "outage"]);
    else
      inNetns(
        NS.isp1,
        "nft",
        ["-f", "-"],
        "table inet outage {\n chain forward_all {\n  type filter hook forward priority -10; policy drop;\n }\n}\n",
      );
  }

  /** networkd's part when a WAN link comes back: addresses (IPv6 ones go with the link) and routes. */
  function wan0Back(): void {
    ip("-n", NS.rtr, "link", "set", "wan0", "up");
    spawnSync("ip", ["-n", NS.rtr, "addr", "add", `${WAN0_6}/64`, "dev", "wan0", "nodad"]);
    ip("-n", NS.rtr, "route", "replace", "default", "via", "81.2.69.1", "dev", "wan0", "metric", "1010");
    ip("-n", NS.rtr, "-6", "route", "replace", "default", "via", "2a01:4f8:1::1", "dev", "wan0", "metric", "1010");
  }

  beforeAll(async () => {
    buildEbpf("loader");
    buildEbpf("tests");
    ensureBpffs();
    dir = tempDir("dp-mw-");
    for (const ns of Object.values(NS)) {
      spawnSync("ip", ["netns", "del", ns]);
      ip("netns", "add", ns);
      ip("-n", ns, "link", "set", "lo", "up");
      inNetns(ns, "sysctl", ["-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
    }
    const veth = (a: string, an: string, b: string, bn: string) => {
      ip("link", "add", an, "netns", a, "type", "veth", "peer", "name", bn, "netns", b);
      ip("-n", a, "link", "set", an, "up");
      ip("-n", b, "link", "set", bn, "up");
    };
    veth(NS.rtr, "wan0", NS.isp1, "cust");
    veth(NS.rtr, "wan1", NS.isp2, "cust");
    veth(NS.rtr, "lan0.20", NS.lan, "eth0");
    veth(NS.isp1, "upl", NS.inet, "isp1");
    veth(NS.isp2, "upl", NS.inet, "isp2");
    for (const ns of [NS.rtr, NS.isp1, NS.isp2, NS.inet])
      inNetns(ns, "sysctl", ["-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
    // BCP 38 at both ISPs: a customer packet from an address not routed to the customer is dropped
    for (const ns of [NS.isp1, NS.isp2])
      inNetns(ns, "sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.cust.rp_filter=1"]);
    const addr = (ns: string, a: string, dev: string) => ip("-n", ns, "addr", "add", a, "dev", dev, "nodad");
    addr(NS.rtr, `${WAN0}/24`, "wan0");
    addr(NS.isp1, "81.2.69.1/24", "cust");
    addr(NS.rtr, `${WAN1}/24`, "wan1");
    addr(NS.isp2, "85.10.20.1/24", "cust");
    addr(NS.rtr, "10.20.0.1/24", "lan0.20");
    addr(NS.lan, "10.20.0.2/24", "eth0");
    addr(NS.isp1, "62.0.1.1/30", "upl");
    addr(NS.inet, "62.0.1.2/30", "isp1");
    addr(NS.isp2, "62.0.2.1/30", "upl");
    addr(NS.inet, "62.0.2.2/30", "isp2");
    for (const a of ["1.1.1.1/32", "9.9.9.9/32", `${SERVER}/32`, "2606:4700:4700::1111/128", `${SERVER6}/128`])
      addr(NS.inet, a, "lo");
    addr(NS.rtr, `${WAN0_6}/64`, "wan0");
    addr(NS.isp1, "2a01:4f8:1::1/64", "cust");
    addr(NS.rtr, `${WAN1_6}/64`, "wan1");
    addr(NS.isp2, "2a02:2e0:2::1/64", "cust");
    addr(NS.isp1, "2a01:4f8:ff::1/64", "upl");
    addr(NS.inet, "2a01:4f8:ff::2/64", "isp1");
    addr(NS.isp2, "2a02:2e0:ff::1/64", "upl");
    addr(NS.inet, "2a02:2e0:ff::2/64", "isp2");
    ip("-n", NS.lan, "route", "add", "default", "via", "10.20.0.1");
    ip("-n", NS.isp1, "route", "add", "default", "via", "62.0.1.2");
    ip("-n", NS.isp2, "route", "add", "default", "via", "62.0.2.2");
    ip("-n", NS.isp1, "-6", "route", "add", "default", "via", "2a01:4f8:ff::2");
    ip("-n", NS.isp2, "-6", "route", "add", "default", "via", "2a02:2e0:ff::2");
    ip("-n", NS.inet, "route", "add", "81.2.69.0/24", "via", "62.0.1.1");
    ip("-n", NS.inet, "route", "add", "85.10.20.0/24", "via", "62.0.2.1");
    ip("-n", NS.inet, "-6", "route", "add", "2a01:4f8:1::/64", "via", "2a01:4f8:ff::1");
    ip("-n", NS.inet, "-6", "route", "add", "2a02:2e0:2::/64", "via", "2a02:2e0:ff::1");
    // what Talos' networkd installs: both WANs' default routes in main, metric 1000 + priority
    ip("-n", NS.rtr, "route", "add", "default", "via", "81.2.69.1", "dev", "wan0", "metric", "1010");
    ip("-n", NS.rtr, "route", "add", "default", "via", "85.10.20.1", "dev", "wan1", "metric", "1020");
    ip("-n", NS.rtr, "-6", "route", "add", "default", "via", "2a01:4f8:1::1", "dev", "wan0", "metric", "1010");
    ip("-n", NS.rtr, "-6", "route", "add", "default", "via", "2a02:2e0:2::1", "dev", "wan1", "metric", "1020");
    // counters at the ISPs for packets from the router's wan1 address: the right ISP and the wrong one
    for (const ns of [NS.isp1, NS.isp2])
      inNetns(
        ns,
        "nft",
        ["-f", "-"],
        `table inet isp {\n counter from_wan1 {}\n chain pre {\n  type filter hook prerouting priority -300; policy accept;\n  iifname "cust" ip saddr ${WAN1} counter name from_wan1\n }\n}\n`,
      );
    // a rule and a route the loader did not make: it must leave them alone
    ip("-n", NS.rtr, "rule", "add", "fwmark", "0x40/0xf0", "lookup", "104", "priority", "1003");
    ip("-n", NS.rtr, "route", "add", "unreachable", "198.18.0.0/15", "table", "101");

    for (const ns of [NS.inet, NS.rtr, NS.lan]) {
      const echo = spawnInNetns(ns, join(TOOLS, "traffic"), ["echo", "--port", "7777"]);
      children.push(echo);
      let out = "";
      echo.stdout?.on("data", (d) => (out += d));
      await waitFor(`the echo server in ${ns}`, () => out.includes('"ready"'));
    }
    writeFileSync(join(dir, "router.nft"), RULESET);
    conf = join(dir, "dataplane.conf");
    writeFileSync(conf, config(dir));
    loader = spawnInNetns(NS.rtr, LOADER, ["--config", conf]);
    loader.stderr?.on("data", (d) => (log += d));
    await waitFor(
      "both WANs up and wan0 active",
      () => {
        if (loader?.exitCode !== null) throw new Error(`loader exited:\n${log}`);
        try {
          return (
            metric('router_dataplane_wan_up{wan="wan0"}') === 1 &&
            metric('router_dataplane_wan_up{wan="wan1"}') === 1 &&
            metric('router_dataplane_wan_active{wan="wan0"}') === 1
          );
        } catch {
          return false;
        }
      },
      20_000,
    );
  }, 600_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    if (loader && loader.exitCode === null) {
      const done = new Promise((r) => loader!.on("close", r));
      loader.kill("SIGTERM");
      await done;
    }
    for (const ns of Object.values(NS)) spawnSync("ip", ["netns", "del", ns]);
    rmSync(PIN, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("mirrors each WAN's default routes into its table (both families), adds its fwmark rules, and leaves main alone while the preferred WAN is healthy", async () => {
    expect(routes("-4", "101")).toMatch(/default via 81\.2\.69\.1 dev wan0 proto 201 metric 1010/);
    expect(routes("-6", "101")).toMatch(/default via 2a01:4f8:1::1 dev wan0 proto 201 metric 1010/);
    expect(routes("-4", "102")).toMatch(/default via 85\.10\.20\.1 dev wan1 proto 201 metric 1020/);
    expect(routes("-6", "102")).toMatch(/default via 2a02:2e0:2::1 dev wan1 proto 201 metric 1020/);
    for (const fam of ["-4", "-6"] as const) {
      expect(rules(fam)).toMatch(/^1000:\s+from all fwmark 0x10\/0xf0 lookup 101 proto 201/m);
      expect(rules(fam)).toMatch(/^1001:\s+from all fwmark 0x20\/0xf0 lookup 102 proto 201/m);
    }
    expect(routes("-4", "main")).not.toMatch(/proto 201/);
    expect(routes("-6", "main")).not.toMatch(/proto 201/);
    expect(await seenAs(NS.lan, SERVER)).toBe(WAN0);
    expect(await seenAs(NS.rtr, SERVER6)).toBe(WAN0_6);
    const m = metrics();
    expect(m.get('router_dataplane_wan_active{wan="wan1"}')).toBe(0);
    expect(m.get('router_dataplane_wan_probe_rtt_seconds{wan="wan0"}')).toBeGreaterThan(0);
    expect(m.get('router_dataplane_wan_probe_rtt_seconds{wan="wan0"}')).toBeLessThan(0.5);
    expect(m.get('router_dataplane_wan_probes_total{wan="wan0"}')).toBeGreaterThanOrEqual(2);
    expect(m.get('router_dataplane_wan_default_routes{wan="wan1",family="ipv6"}')).toBe(1);
    expect(m.get("router_dataplane_wan_failovers_total")).toBe(0);
  });

  it("sends the replies of connections that came in on wan1 out of wan1 while wan0 is active (router service and port forward)", async () => {
    const wrong = ispCounter(NS.isp1, "from_wan1");
    const right = ispCounter(NS.isp2, "from_wan1");
    // the internet reaches the router's own service and a port forward through wan1's address
    const direct = await ask(NS.inet, WAN1, { tcp: true, count: 3 });
    const forwarded = await ask(NS.inet, WAN1, { tcp: true, port: 8443 });
    expect(direct.map((a) => a.seen_as)).toEqual(["62.0.2.2", "62.0.2.2", "62.0.2.2"]);
    // each answer came at once: no reply was lost to the wrong ISP and retransmitted
    for (const a of direct) expect(a.error).toBeUndefined();
    expect(forwarded[0]?.seen_as).toBe("62.0.2.2");
    expect(ispCounter(NS.isp2, "from_wan1")).toBeGreaterThan(right);
    expect(ispCounter(NS.isp1, "from_wan1")).toBe(wrong);
    expect(metric('router_dataplane_wan_active{wan="wan0"}')).toBe(1);
  });

  it("fails over within interval × down_after + 2 s when ISP 1 loses its upstream, moving new connections, the router's own traffic and a running UDP flow to wan1", async () => {
    const failovers = metric("router_dataplane_wan_failovers_total");
    // one UDP flow (one socket, one conntrack entry) running across the failover
    const flow = ask(NS.lan, SERVER, { count: 45, sport: 40000 });
    await sleep(1000);
    const t0 = Date.now();
    isp1Upstream(false); // wan0's link stays up
    await waitFor("the override route", override, 15_000, 20);
    const took = (Date.now() - t0) / 1000;
    console.log(`failover after ${took.toFixed(2)} s`);
    expect(took).toBeLessThanOrEqual(INTERVAL_S * DOWN_AFTER + 2);
    expect(routes("-6", "main")).toMatch(/default via 2a02:2e0:2::1 dev wan1 proto 201 metric 1 /);
    expect(await seenAs(NS.lan, SERVER)).toBe(WAN1);
    expect(await seenAs(NS.lan, SERVER, false)).toBe(WAN1);
    expect(await seenAs(NS.rtr, SERVER)).toBe(WAN1);
    expect(await seenAs(NS.rtr, SERVER6)).toBe(WAN1_6);
    const answers = await flow;
    const seen = answers.map((a) => a.seen_as ?? "-");
    // the flow was NATed to wan0, lost a few answers while wan0 was failing, then continued via
    // wan1: its conntrack entry through wan0 was flushed, so it was NATed again
    expect(seen[0]).toBe(WAN0);
    expect(seen.at(-1)).toBe(WAN1);
    expect(seen.lastIndexOf(WAN0)).toBeLessThan(seen.indexOf(WAN1));
    const m = metrics();
    expect(m.get('router_dataplane_wan_up{wan="wan0"}')).toBe(0);
    expect(m.get('router_dataplane_wan_active{wan="wan0"}')).toBe(0);
    expect(m.get('router_dataplane_wan_active{wan="wan1"}')).toBe(1);
    expect(m.get("router_dataplane_wan_failovers_total")).toBe(failovers + 1);
    expect(m.get('router_dataplane_wan_probe_rounds_failed_total{wan="wan0"}')).toBeGreaterThanOrEqual(DOWN_AFTER);
    expect(m.get('router_dataplane_wan_probe_failures_total{wan="wan0"}')).toBeGreaterThanOrEqual(2 * DOWN_AFTER);
    expect(Number.isNaN(m.get('router_dataplane_wan_probe_rtt_seconds{wan="wan0"}'))).toBe(true);
    expect(m.get('router_dataplane_wan_conntrack_flushed_total{wan="wan0"}')).toBeGreaterThanOrEqual(1);
    expect(events().some((e) => e.event === "wan_failover" && e.msg.includes("wan0 -> wan1"))).toBe(true);
  }, 60_000);

  it("fails back once ISP 1 answers up_after rounds in a row, and removes the override", async () => {
    const failovers = metric("router_dataplane_wan_failovers_total");
    const t0 = Date.now();
    isp1Upstream(true);
    await waitFor("the override to go", () => !override(), 15_000, 20);
    const took = (Date.now() - t0) / 1000;
    console.log(`failback after ${took.toFixed(2)} s`);
    expect(took).toBeLessThanOrEqual(INTERVAL_S * UP_AFTER + 2);
    expect(routes("-6", "main")).not.toMatch(/proto 201/);
    expect(await seenAs(NS.lan, SERVER)).toBe(WAN0);
    expect(metric('router_dataplane_wan_active{wan="wan0"}')).toBe(1);
    expect(metric("router_dataplane_wan_failovers_total")).toBe(failovers + 1);
  }, 30_000);

  it("handles a WAN whose link goes down: down at once (its routes are gone), override via wan1, back when the link and its routes return", async () => {
    const t0 = Date.now();
    ip("-n", NS.rtr, "link", "set", "wan0", "down");
    await waitFor("the override route", override, 10_000, 20);
    console.log(`link down handled after ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    expect(Date.now() - t0).toBeLessThan(2000); // no probe rounds needed: the routes are gone
    expect(routes("-4", "101")).not.toMatch(/default/);
    expect(metric('router_dataplane_wan_default_routes{wan="wan0",family="ipv4"}')).toBe(0);
    expect(metric('router_dataplane_wan_up{wan="wan0"}')).toBe(0);
    expect(await seenAs(NS.lan, SERVER)).toBe(WAN1);
    expect(events().some((e) => e.event === "wan_health" && e.msg.includes("no default route"))).toBe(true);
    wan0Back();
    await waitFor("table 101 again", () => /default via 81\.2\.69\.1 dev wan0/.test(routes("-4", "101")), 10_000);
    await waitFor("the override to go", () => !override(), 15_000, 20);
    expect(await seenAs(NS.lan, SERVER)).toBe(WAN0);
  }, 60_000);

  it("handles a WAN whose link loses its carrier (the modem goes off; the kernel keeps its routes, marked linkdown): down at once, override via wan1, back after up_after good rounds once the carrier returns", async () => {
    const failovers = metric("router_dataplane_wan_failovers_total");
    const t0 = Date.now();
    ip("-n", NS.isp1, "link", "set", "cust", "down"); // wan0 stays administratively up
    await waitFor("the override route", override, 10_000, 20);
    const took = Date.now() - t0;
    console.log(`carrier loss handled after ${(took / 1000).toFixed(2)} s`);
    // probes alone need down_after rounds: the carrier is what it acted on
    expect(took).toBeLessThan((DOWN_AFTER - 1) * INTERVAL_S * 1000);
    expect(inNetns(NS.rtr, "ip", ["link", "show", "wan0"])).toMatch(/NO-CARRIER.*\bUP\b/);
    expect(inNetns(NS.rtr, "ip", ["-d", "-4", "route", "show", "table", "main"])).toMatch(
      /default via 81\.2\.69\.1 dev wan0 .*metric 1010 linkdown/,
    );
    expect(routes("-4", "101")).not.toMatch(/default/);
    expect(routes("-6", "101")).not.toMatch(/default/);
    expect(metric('router_dataplane_wan_default_routes{wan="wan0",family="ipv4"}')).toBe(0);
    expect(metric('router_dataplane_wan_default_routes{wan="wan0",family="ipv6"}')).toBe(0);
    expect(metric('router_dataplane_wan_up{wan="wan0"}')).toBe(0);
    expect(metric("router_dataplane_wan_failovers_total")).toBe(failovers + 1);
    expect(await seenAs(NS.lan, SERVER)).toBe(WAN1);
    expect(await seenAs(NS.rtr, SERVER6)).toBe(WAN1_6);
    expect(
      events().some((e) => e.event === "wan_health" && e.msg.includes("wan0]: up -> down (its link has no carrier)")),
    ).toBe(true);
    ip("-n", NS.isp1, "link", "set", "cust", "up");
    // the ISP's IPv6 address went with its link; the router's stayed (its link was never down)
    spawnSync("ip", ["-n", NS.isp1, "addr", "add", "2a01:4f8:1::1/64", "dev", "cust", "nodad"]);
    await waitFor("table 101 again", () => /default via 81\.2\.69\.1 dev wan0/.test(routes("-4", "101")), 10_000);
    expect(override(), "wan0 must prove itself with up_after good rounds before it is used again").toBe(true);
    await waitFor("the override to go", () => !override(), 15_000, 20);
    expect(await seenAs(NS.lan, SERVER)).toBe(WAN0);
    expect(await seenAs(NS.rtr, SERVER6)).toBe(WAN0_6);
    expect(metric("router_dataplane_wan_failovers_total")).toBe(failovers + 2);
  }, 60_000);

  it("keeps routes and rules it did not create, and removes the rules and table of a WAN dropped from the configuration", async () => {
    expect(rules("-4")).toMatch(/^1003:\s+from all fwmark 0x40\/0xf0 lookup 104/m);
    expect(routes("-4", "101")).toMatch(/unreachable 198\.18\.0\.0\/15/);
    const reloads = metric("router_dataplane_reloads_total");
    writeFileSync(conf, config(dir, ["wan0"]));
    await waitFor("the reload", () => metric("router_dataplane_reloads_total") > reloads);
    await waitFor("wan1's rules to go", () => !/lookup 102/.test(rules("-4")) && !/lookup 102/.test(rules("-6")));
    await waitFor("table 102 to empty", () => routes("-4", "102").trim() === "" && routes("-6", "102").trim() === "");
    expect(rules("-4")).toMatch(/^1000:\s+from all fwmark 0x10\/0xf0 lookup 101 proto 201/m);
    expect(rules("-4")).toMatch(/^1003:\s+from all fwmark 0x40\/0xf0 lookup 104/m);
    expect(routes("-4", "101")).toMatch(/unreachable 198\.18\.0\.0\/15/);
    expect(routes("-4", "main")).toMatch(/default via 85\.10\.20\.1 dev wan1 metric 1020/); // networkd's, untouched
    expect(metrics().has('router_dataplane_wan_up{wan="wan1"}')).toBe(false);
    writeFileSync(conf, config(dir));
    await waitFor("wan1 back", () => /lookup 102/.test(rules("-4")) && /default/.test(routes("-4", "102")));
    expect(readFileSync(conf, "utf8")).toContain("[wan wan1]");
  }, 60_000);
});
