/**
 * Rule chains in a kernel: random rule lists — overlapping prefixes, port ranges and protocols, logged rules,
 * both families — are rendered into a chain the way the ruleset renders a zone pair (plain, or through the port
 * dispatch), loaded with nft into a throw-away network namespace, and probed with real TCP, UDP and ICMP
 * packets. What the kernel decides for every probe must be what the policy's own `evaluate` says: a dispatch
 * that broke first-match order, sent a port to the wrong rules or lost a rule shows up as a probe with the
 * wrong verdict.
 *
 * The rendered verdict statements are replaced by jumps to recording chains (the only change to the chain), so
 * the test sees which verdict each probe got; every recording chain ends in drop, so no probe leaves.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ruleChain, type Verdicts } from "../../components/dataplane/nftables";
import { MIN_DISPATCH_RULES } from "../../components/dataplane/port-dispatch";
import { evaluate, type CompiledRule, type PolicyModel, type Proto, type Verdict } from "../../components/site/policy";
import { familyOf } from "../../components/site/ip";
import { tier } from "../helpers/tier";

const kernel = tier("rule chains in a kernel", {
  root: true,
  commands: ["unshare", "ip", "nft", "busybox"],
});

const PREFIXES4 = [
  "10.1.0.0/16",
  "10.1.2.0/24",
  "10.1.2.128/25",
  "10.1.2.5/32",
  "10.2.0.0/16",
  "10.9.0.0/30",
  "10.3.0.0/24",
  "10.4.0.0/24",
  "10.5.0.5/32",
  "10.6.0.0/16",
];
const PREFIXES6 = ["fd00:1::/32", "fd00:1:2::/48", "fd00:1:2::5/128", "fd00:9::/48", "fd00:3::/48", "fd00:4::5/128"];
/** Addresses the probes use, inside and outside the prefixes above; sources are the namespace's own. */
const HOSTS4 = [
  "10.1.2.5",
  "10.1.2.200",
  "10.1.3.1",
  "10.2.0.9",
  "10.9.0.2",
  "10.7.0.1",
  "10.3.0.7",
  "10.4.0.1",
  "10.5.0.5",
  "10.6.1.1",
];
const HOSTS6 = ["fd00:1:2::5", "fd00:1:2::99", "fd00:1:3::1", "fd00:9::1", "fd00:7::1", "fd00:3::7", "fd00:4::5"];
const PORT_RANGES: [number, number][] = [
  [22, 22],
  [20, 25],
  [80, 80],
  [443, 443],
  [1000, 2000],
  [1500, 1500],
  [2000, 3000],
  [5000, 5000],
  [6000, 6010],
  [7000, 7000],
  [8080, 8080],
  [53, 53],
  [123, 123],
  [8443, 8443],
  [9000, 9010],
  [9100, 9100],
];
const PROBE_PORTS = [
  20, 22, 25, 26, 53, 80, 123, 443, 999, 1000, 1500, 2000, 2500, 3001, 5000, 6005, 6011, 7000, 8080, 8443, 9000, 9010,
  9100,
];
const PROTOCOLS: (Proto[] | "any")[] = ["any", ["tcp"], ["udp"], ["tcp", "udp"], ["icmp"]];
const VERDICT_LIST: Verdict[] = ["accept", "drop", "reject"];

interface RuleChoice {
  /** 0: IPv4 addresses, 1: IPv6 addresses, 2: either. */
  family: number;
  protocol: number;
  ports: number[];
  src: number[];
  dst: number[];
  action: number;
  log: boolean;
}

const ADDRESSES = [...PREFIXES4, ...PREFIXES6];
const FAMILY_ADDRESSES = [PREFIXES4, PREFIXES6, ADDRESSES];
/**
 * Rules are mostly specific (a source, a destination, a port, TCP or UDP), so runs of disjoint rules are long;
 * the prefixes nest and the port ranges touch and overlap, so the rules that do overlap do so at the edges.
 */
const some = (max: number, of: number) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.array(fc.nat(of - 1), { minLength: 1, maxLength: max }) },
    { weight: 1, arbitrary: fc.constant([] as number[]) },
  );
const ruleChoice: fc.Arbitrary<RuleChoice> = fc.record({
  family: fc.oneof(
    { weight: 5, arbitrary: fc.constant(0) },
    { weight: 3, arbitrary: fc.constant(1) },
    { weight: 1, arbitrary: fc.constant(2) },
  ),
  // any, tcp, udp, tcp+udp, icmp
  protocol: fc.oneof(
    { weight: 4, arbitrary: fc.constant(1) },
    { weight: 4, arbitrary: fc.constant(2) },
    { weight: 2, arbitrary: fc.constant(3) },
    { weight: 1, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.constant(4) },
  ),
  ports: some(2, PORT_RANGES.length),
  src: some(2, ADDRESSES.length),
  dst: some(2, ADDRESSES.length),
  action: fc.nat(2),
  log: fc.nat(9).map((n) => n === 0),
});

function side(picks: number[], family: number): { 4: string[]; 6: string[] } | undefined {
  if (!picks.length) return undefined;
  const v: { 4: string[]; 6: string[] } = { 4: [], 6: [] };
  const from = FAMILY_ADDRESSES[family];
  for (const a of new Set(picks.map((p) => from[p % from.length]))) v[familyOf(a.split("/")[0])!].push(a);
  return v;
}

function toRule(c: RuleChoice, i: number): CompiledRule {
  const protos = PROTOCOLS[c.protocol];
  const withPorts = protos !== "any" && !protos.includes("icmp") && c.ports.length > 0;
  return {
    name: `r${i}`,
    index: i,
    from: "any",
    to: "any",
    toRouter: false,
    protos,
    ports: withPorts ? c.ports.map((p) => PORT_RANGES[p]) : undefined,
    src: side(c.src, c.family),
    dst: side(c.dst, c.family),
    action: VERDICT_LIST[c.action],
    log: c.log,
  };
}

function modelOf(rules: CompiledRule[], fallback: Verdict): PolicyModel {
  return {
    zones: ["a", "b"],
    wanZones: [],
    lanZones: ["a", "b"],
    managementZones: [],
    rules,
    policies: new Map([["a>b", { action: fallback, log: false }]]),
    defaultAction: "drop",
    logDrops: false,
    logRate: "10/minute",
    services: new Map(),
    groups: new Map(),
    managementPorts: [],
    forwards: [],
    inside: [],
    internal: [],
    dns: { force: new Map(), encrypted: [], gateways: [] },
  } as unknown as PolicyModel;
}

/** The chain the ruleset would render for the pair a→b, with verdicts sent to the recording chains. */
function testTable(
  rules: CompiledRule[],
  fallback: Verdict,
  minDispatchRules: number,
  alwaysDispatch = false,
): { text: string; lookups: number; dispatched: number } {
  const verdicts: Verdicts = (v) => `goto v_${v}`;
  const chain = ruleChain(rules, {
    chain: "fwd_a_b",
    label: "a>b",
    logRate: "10/minute",
    minDispatchRules,
    alwaysDispatch,
    verdicts,
  });
  const rec = (v: Verdict) => [
    `\tset ${v}_4 { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags dynamic; size 65535; }`,
    `\tset ${v}_6 { type ipv6_addr . ipv6_addr . inet_proto . inet_service; flags dynamic; size 65535; }`,
    `\tset ${v}_4i { type ipv4_addr . ipv4_addr; flags dynamic; size 65535; }`,
    `\tset ${v}_6i { type ipv6_addr . ipv6_addr; flags dynamic; size 65535; }`,
    `\tchain v_${v} {`,
    `\t\tmeta l4proto { tcp, udp } update @${v}_4 { ip saddr . ip daddr . meta l4proto . th dport }`,
    `\t\tmeta l4proto { tcp, udp } update @${v}_6 { ip6 saddr . ip6 daddr . meta l4proto . th dport }`,
    `\t\tmeta l4proto icmp update @${v}_4i { ip saddr . ip daddr }`,
    `\t\tmeta l4proto ipv6-icmp update @${v}_6i { ip6 saddr . ip6 daddr }`,
    "\t\tdrop",
    "\t}",
  ];
  const text = [
    "table inet probe {",
    ...VERDICT_LIST.flatMap(rec),
    ...chain.maps.map((l) => `\t${l}`),
    "\tchain fwd_a_b {",
    ...chain.body.map((l) => `\t\t${l}`),
    `\t\tgoto v_${fallback}`,
    "\t}",
    "\tchain out {",
    "\t\ttype filter hook output priority filter; policy accept;",
    "\t\ticmpv6 type != echo-request accept",
    "\t\tjump fwd_a_b",
    "\t}",
    "}",
    "",
  ].join("\n");
  const dispatched = chain.body
    .filter((l) => l.startsWith("# rules "))
    .reduce((n, l) => n + Number(/\((\d+)\): by destination port/.exec(l)![1]), 0);
  return { text, lookups: chain.body.filter((l) => l.includes(" vmap @")).length, dispatched };
}

interface Probe {
  proto: Proto;
  src: string;
  dst: string;
  port?: number;
}

function probes(): Probe[] {
  const out: Probe[] = [];
  for (const [hosts] of [[HOSTS4], [HOSTS6]])
    for (const src of hosts)
      for (const dst of hosts) {
        if (src === dst) continue;
        out.push({ proto: "icmp", src, dst });
        for (const port of PROBE_PORTS)
          for (const proto of ["tcp", "udp"] as const) out.push({ proto, src, dst, port });
      }
  return out;
}

/** Sends every probe from its source address: UDP datagrams and TCP connection attempts. */
const SENDER = `
const dgram = require("node:dgram");
const net = require("node:net");
const probes = JSON.parse(require("node:fs").readFileSync(process.argv[2], "utf8"));
let pending = 0;
const done = () => { if (--pending === 0) process.exit(0); };
for (const p of probes) {
  if (p.proto === "udp") {
    pending++;
    const s = dgram.createSocket(p.src.includes(":") ? "udp6" : "udp4");
    s.on("error", () => { s.close(); done(); });
    s.bind({ address: p.src }, () => s.send("x", p.port, p.dst, () => { s.close(); done(); }));
  } else if (p.proto === "tcp") {
    pending++;
    const c = net.connect({ host: p.dst, port: p.port, localAddress: p.src });
    c.on("error", () => {});
    setTimeout(() => { c.destroy(); done(); }, 400);
  }
}
if (pending === 0) process.exit(0);
`;

const SCRIPT = `
set -e
ip link set lo up
ip link add d0 type veth peer name d1
ip link set d0 up
ip link set d1 up
for a in ${HOSTS4.join(" ")}; do ip addr add $a/32 dev d0; done
for a in ${HOSTS6.join(" ")}; do ip -6 addr add $a/128 dev d0 nodad; done
ip route add default dev d0
ip -6 route add default dev d0
nft -f "$1"
"$3" "$2" "$4"
for p in $5; do
  src=\${p%%,*}; dst=\${p#*,}
  case $dst in *:*) busybox ping -6 -c 1 -W 1 -I $src $dst >/dev/null 2>&1 & ;; *) busybox ping -c 1 -W 1 -I $src $dst >/dev/null 2>&1 & ;; esac
done
wait
nft -j list table inet probe
`;

type Seen = Map<string, Verdict[]>;

function keyOf(p: Probe): string {
  return p.proto === "icmp" ? `${p.src} ${p.dst} icmp` : `${p.src} ${p.dst} ${p.proto} ${p.port}`;
}

/** Loads the table into a fresh namespace, sends the probes, and reads back which verdict saw which probe. */
function runInKernel(table: string, list: Probe[]): Seen {
  const dir = mkdtempSync(join(tmpdir(), "port-dispatch-"));
  try {
    writeFileSync(join(dir, "probe.nft"), table);
    writeFileSync(join(dir, "sender.js"), SENDER);
    writeFileSync(join(dir, "probes.json"), JSON.stringify(list.filter((p) => p.proto !== "icmp")));
    const pings = list.filter((p) => p.proto === "icmp").map((p) => `${p.src},${p.dst}`);
    const r = spawnSync(
      "unshare",
      [
        "-n",
        "sh",
        "-c",
        SCRIPT,
        "sh",
        join(dir, "probe.nft"),
        join(dir, "sender.js"),
        process.execPath,
        join(dir, "probes.json"),
        pings.join(" "),
      ],
      { encoding: "utf8", timeout: 60_000, maxBuffer: 64 << 20 },
    );
    if (r.status !== 0) throw new Error(`the namespace script failed (${r.status}): ${r.stderr}`);
    const json = JSON.parse(r.stdout) as { nftables: { set?: { name: string; elem?: unknown[] } }[] };
    const seen: Seen = new Map();
    for (const o of json.nftables) {
      if (!o.set?.elem) continue;
      const verdict = o.set.name.split("_")[0] as Verdict;
      for (const e of o.set.elem) {
        const parts = ((e as { elem?: { val: unknown } }).elem?.val ?? e) as { concat: (string | number)[] };
        const [src, dst, proto, port] = parts.concat;
        const k = port === undefined ? `${src} ${dst} icmp` : `${src} ${dst} ${proto} ${port}`;
        seen.set(k, [...(seen.get(k) ?? []), verdict]);
      }
    }
    return seen;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function mismatches(rules: CompiledRule[], fallback: Verdict, seen: Seen, list: Probe[]): string[] {
  const model = modelOf(rules, fallback);
  const out: string[] = [];
  for (const p of list) {
    const want = evaluate(model, { from: "a", to: "b", proto: p.proto, port: p.port, src: p.src, dst: p.dst });
    const got = seen.get(keyOf(p)) ?? [];
    if (got.length !== 1 || got[0] !== want.verdict)
      out.push(`${keyOf(p)}: kernel ${got.join("+") || "nothing"}, policy ${want.verdict} (${want.by})`);
  }
  return out;
}

describe.skipIf(!kernel.ok)("rule chains in a kernel", () => {
  const list = probes();

  it("give every probe the verdict the policy gives it, for random overlapping rule lists", () => {
    const cases = fc.sample(
      fc.record({
        rules: fc.array(ruleChoice, { minLength: 4, maxLength: 40 }),
        fallback: fc.constantFrom<Verdict>("accept", "drop", "reject"),
        minDispatchRules: fc.constantFrom(2, 4, 8, MIN_DISPATCH_RULES),
        // mostly dispatch whatever the lists look like: the point is the dispatch's meaning, not when it pays
        alwaysDispatch: fc.nat(3).map((n) => n > 0),
      }),
      12,
    );
    let lookups = 0;
    let dispatched = 0;
    let total = 0;
    for (const [n, c] of cases.entries()) {
      const rules = c.rules.map(toRule);
      const t = testTable(rules, c.fallback, c.minDispatchRules, c.alwaysDispatch);
      lookups += t.lookups;
      dispatched += t.dispatched;
      total += rules.length;
      const seen = runInKernel(t.text, list);
      const bad = mismatches(rules, c.fallback, seen, list);
      expect(bad.slice(0, 10), `case ${n}: ${JSON.stringify(c)}\n${t.text}`).toEqual([]);
    }
    // The random lists did exercise the dispatch, not only plain chains.
    expect(lookups).toBeGreaterThanOrEqual(4);
    expect(dispatched).toBeGreaterThan(total / 3);
  }, 240_000);

  it("reach a long list through its ports, and keep first-match order among rules that share a port", () => {
    // 60 rules on distinct ports, then one that overlaps an earlier one with another verdict, then 20 more.
    const mk = (i: number, port: number, action: Verdict, dst?: string): CompiledRule => ({
      name: `r${i}`,
      index: i,
      from: "any",
      to: "any",
      toRouter: false,
      protos: ["tcp", "udp"],
      ports: [[port, port]],
      src: { 4: ["10.1.0.0/16"], 6: ["fd00:1::/32"] },
      dst: dst ? { 4: [dst], 6: [] } : undefined,
      action,
      log: false,
    });
    const rules: CompiledRule[] = [
      ...Array.from({ length: 60 }, (_, i) => mk(i, 3000 + i, i % 2 ? "drop" : "reject")),
      mk(60, 3001, "accept", "10.2.0.9"),
      mk(61, 22, "drop"),
      ...Array.from({ length: 20 }, (_, i) => mk(62 + i, 4000 + i, "reject")),
      // ICMP per family in the same table: ICMPv6 is its own protocol number.
      { ...mk(82, 0, "drop"), protos: ["icmp"], ports: undefined, src: { 4: [], 6: ["fd00:1::/32"] } },
      { ...mk(83, 0, "reject"), protos: ["icmp"], ports: undefined, src: { 4: ["10.1.0.0/16"], 6: [] } },
    ];
    const t = testTable(rules, "accept", MIN_DISPATCH_RULES);
    expect(t.dispatched).toBe(84);
    expect(t.lookups).toBe(1);
    // the longest list: port 3001's two rules and the two without ports
    expect(t.text).toContain("rule lists of at most 4)");
    const focused: Probe[] = [
      { proto: "tcp", src: "10.1.2.5", dst: "10.2.0.9", port: 3001 },
      { proto: "udp", src: "10.1.2.5", dst: "10.2.0.9", port: 3000 },
      { proto: "tcp", src: "fd00:1:2::5", dst: "fd00:9::1", port: 3059 },
      { proto: "tcp", src: "10.1.2.5", dst: "10.2.0.9", port: 22 },
      { proto: "udp", src: "10.1.2.5", dst: "10.2.0.9", port: 4019 },
      { proto: "udp", src: "10.7.0.1", dst: "10.2.0.9", port: 4019 },
      { proto: "icmp", src: "fd00:1:2::5", dst: "fd00:9::1" },
      { proto: "icmp", src: "10.1.2.5", dst: "10.2.0.9" },
      { proto: "icmp", src: "10.7.0.1", dst: "10.2.0.9" },
    ];
    const seen = runInKernel(t.text, focused);
    expect(mismatches(rules, "accept", seen, focused)).toEqual([]);
    // r1 (drop, port 3001) comes before r60 (accept): the kernel must drop.
    expect(seen.get("10.1.2.5 10.2.0.9 tcp 3001")).toEqual(["drop"]);
    expect(seen.get("fd00:1:2::5 fd00:9::1 icmp")).toEqual(["drop"]);
  }, 60_000);
});
