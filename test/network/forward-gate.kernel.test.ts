/**
 * The forward gate in a kernel (components/dataplane/gate.ts): the dev site's rendered routing rules are
 * installed in a router namespace the way Talos installs RoutingRuleConfig documents, with forwarding on as
 * Talos leaves it at boot. Then:
 *   - before any ruleset, nothing is routed between the WAN and the inside, in either direction or family,
 *     while the router itself still answers its segment and reaches the internet;
 *   - with the rendered `table inet router` loaded, the policy's traffic flows (trusted → wan, NATed);
 *   - with the table removed again, the gate is closed again.
 * What arrives where is counted by observer tables in the client and internet namespaces, not by the router.
 *
 * The conversion of the documents into `ip rule` commands follows Talos, not our renderer
 * (test/helpers/talos-network.ts, which cites Talos' sources).
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderStack } from "../../cli/render";
import { routingRuleCommands, type RoutingRuleDoc } from "../helpers/talos-network";
import { withoutNftQueue } from "../helpers/nft-queue";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";

const t = tier("forward gate in a kernel", { root: true, commands: ["ip", "nft", "busybox"] });

const ID = `${process.pid % 100000}`;
const NS = { rtr: `fgr${ID}`, inet: `fgi${ID}`, lan: `fgl${ID}` };

function run(cmd: string, args: string[], ok = true): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 20_000 });
  if (ok && r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}
const inNs = (ns: string, args: string[], ok = true) => run("ip", ["netns", "exec", ns, ...args], ok);
const ping = (ns: string, dst: string) => inNs(ns, ["busybox", "ping", "-c", "1", "-W", "1", dst], false).code === 0;

/** An observer table counting IPv4/IPv6 packets from `src` arriving in a namespace (before anything else). */
function observe(ns: string, srcs: string[]): void {
  // Neighbour discovery is the routers' own link-local business, not routed traffic: not counted.
  const nd = "{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert }";
  const rules = srcs.flatMap((s, i) =>
    s.includes(":")
      ? [
          `ip6 saddr ${s} meta l4proto != ipv6-icmp counter name c${i}`,
          `ip6 saddr ${s} icmpv6 type != ${nd} counter name c${i}`,
        ]
      : [`ip saddr ${s} counter name c${i}`],
  );
  const counters = srcs.map((_, i) => `counter c${i} {}`);
  const file = join(work, `${ns}.nft`);
  writeFileSync(
    file,
    `table inet obs {\n${counters.join("\n")}\nchain pre { type filter hook prerouting priority -400; ${rules.join("; ")}; }\n}\n`,
  );
  inNs(ns, ["nft", "-f", file]);
}
function arrived(ns: string, index: number): number {
  const out = inNs(ns, ["nft", "list", "counter", "inet", "obs", `c${index}`]).out;
  return Number(/packets (\d+)/.exec(out)?.[1] ?? "0");
}
function resetCounters(ns: string): void {
  inNs(ns, ["nft", "reset", "counters", "table", "inet", "obs"]);
}

let work = "";
const CLIENT4 = "10.20.0.10";
const CLIENT6 = "fd12:3456:789a:20::10";
const ROUTER_LAN4 = "10.20.0.1";
const ROUTER_LAN6 = "fd12:3456:789a:20::1";
const WAN4 = "203.0.113.2";
const WAN6 = "2001:db8:f00::2";
const INET4 = "203.0.113.1";
const INET6 = "2001:db8:f00::1";

describe.skipIf(!t.ok)("the forward gate (RoutingRuleConfig + the ruleset's gate mark) in a kernel", () => {
  let ruleset = "";

  beforeAll(async () => {
    work = tempDir("forward-gate-");
    const { files } = await renderStack({ stack: "dev" });
    // the IDS queue as this kernel can load it (nft-queue.ts)
    ruleset = withoutNftQueue(files.get("dataplane/router.nft")!);
    const talos = [...files.keys()].find((f) => f.startsWith("talos/"))!;
    const docs = parseAllDocuments(files.get(talos)!).map((d) => d.toJS() as RoutingRuleDoc & { kind: string });
    const gate = docs.filter((d) => d.kind === "RoutingRuleConfig");
    expect(gate.length).toBeGreaterThan(0);

    for (const ns of Object.values(NS)) run("ip", ["netns", "del", ns], false);
    for (const ns of Object.values(NS)) run("ip", ["netns", "add", ns]);
    run("ip", ["link", "add", "wan0", "netns", NS.rtr, "type", "veth", "peer", "name", "eth0", "netns", NS.inet]);
    run("ip", ["link", "add", "lan0.20", "netns", NS.rtr, "type", "veth", "peer", "name", "eth0", "netns", NS.lan]);
    const batch = (ns: string, cmds: string[]) => {
      const f = join(work, `${ns}.batch`);
      writeFileSync(f, `${cmds.join("\n")}\n`);
      inNs(ns, ["ip", "-batch", f]);
    };
    for (const ns of Object.values(NS))
      inNs(ns, ["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
    // Forwarding on, as Talos' defaults and Cilium leave it: the gate must hold regardless.
    inNs(NS.rtr, ["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
    // The rendered reverse-path settings, in Talos' order (the links exist when `default` is written, which
    // reaches them too): the kernel's check looks routes up through the same rules, so the gate must leave it
    // working.
    const sysctls = docs.find((d) => d.kind === "SysctlConfig") as unknown as { params: Record<string, string> };
    for (const key of [
      "net.ipv4.conf.all.rp_filter",
      "net.ipv4.conf.default.rp_filter",
      "net/ipv4/conf/lan0.20/rp_filter",
    ])
      inNs(NS.rtr, [
        "sh",
        "-c",
        `echo ${sysctls.params[key]} > /proc/sys/${key.includes("/") ? key : key.replace(/\./g, "/")}`,
      ]);
    batch(NS.rtr, [
      "link set lo up",
      "link set wan0 up",
      "link set lan0.20 up",
      `address add ${WAN4}/24 dev wan0`,
      `address add ${WAN6}/64 dev wan0 nodad`,
      `address add ${ROUTER_LAN4}/24 dev lan0.20`,
      `address add ${ROUTER_LAN6}/64 dev lan0.20 nodad`,
      `route add default via ${INET4}`,
      `route add default via ${INET6}`,
    ]);
    batch(NS.inet, [
      "link set lo up",
      "link set eth0 up",
      `address add ${INET4}/24 dev eth0`,
      `address add ${INET6}/64 dev eth0 nodad`,
      // A hostile neighbour: it routes the inside prefixes to the router, so only the router stops them.
      `route add 10.20.0.0/24 via ${WAN4}`,
      `route add fd12:3456:789a:20::/64 via ${WAN6}`,
    ]);
    batch(NS.lan, [
      "link set lo up",
      "link set eth0 up",
      `address add ${CLIENT4}/24 dev eth0`,
      `address add ${CLIENT6}/64 dev eth0 nodad`,
      `route add default via ${ROUTER_LAN4}`,
      `route add default via ${ROUTER_LAN6}`,
    ]);
    for (const d of gate) for (const args of routingRuleCommands(d)) inNs(NS.rtr, ["ip", ...args]);
    observe(NS.inet, [CLIENT4, CLIENT6, WAN4, WAN6]);
    observe(NS.lan, [INET4, INET6]);
  }, 60_000);

  afterAll(() => {
    for (const ns of Object.values(NS)) run("ip", ["netns", "del", ns], false);
  });

  it("routes nothing between the WAN and the inside before the ruleset is in, in either direction or family", () => {
    resetCounters(NS.inet);
    resetCounters(NS.lan);
    expect(ping(NS.lan, INET4)).toBe(false);
    expect(ping(NS.lan, INET6)).toBe(false);
    expect(ping(NS.inet, CLIENT4)).toBe(false);
    expect(ping(NS.inet, CLIENT6)).toBe(false);
    // Nothing crossed at all (not even the requests): the counters are on the far side.
    for (const i of [0, 1, 2, 3]) expect(arrived(NS.inet, i), `internet saw packets of source #${i}`).toBe(0);
    for (const i of [0, 1]) expect(arrived(NS.lan, i), `client saw packets of source #${i}`).toBe(0);
  });

  it("still lets the router answer its segment and reach the internet itself while the gate is closed", () => {
    expect(ping(NS.lan, ROUTER_LAN4)).toBe(true);
    expect(ping(NS.lan, ROUTER_LAN6)).toBe(true);
    expect(ping(NS.rtr, INET4)).toBe(true);
    expect(ping(NS.rtr, INET6)).toBe(true);
  });

  it("opens for the policy's traffic once the rendered ruleset is loaded, and closes again when it is removed", () => {
    const file = join(work, "router.nft");
    writeFileSync(file, ruleset);
    inNs(NS.rtr, ["nft", "-f", file]);
    resetCounters(NS.inet);
    // trusted → wan is accepted and masqueraded (both families on wan0 in the dev site).
    expect(ping(NS.lan, INET4)).toBe(true);
    expect(ping(NS.lan, INET6)).toBe(true);
    expect(arrived(NS.inet, 0), "an un-NATed IPv4 packet left").toBe(0);
    expect(arrived(NS.inet, 2)).toBeGreaterThan(0);
    expect(arrived(NS.inet, 3)).toBeGreaterThan(0);
    // wan → trusted stays closed by the policy itself.
    expect(ping(NS.inet, CLIENT4)).toBe(false);

    inNs(NS.rtr, ["nft", "delete", "table", "inet", "router"]);
    resetCounters(NS.inet);
    expect(ping(NS.lan, INET4)).toBe(false);
    expect(ping(NS.lan, INET6)).toBe(false);
    for (const i of [0, 1, 2, 3]) expect(arrived(NS.inet, i)).toBe(0);
  });
});
