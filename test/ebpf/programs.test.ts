/**
 * The BPF programs on this kernel: verifier and attachment, the WAN guard's packet table, the
 * segment QoS table, and differential fuzzing against the reference model.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import { BUILD, BUILD_COMMANDS, FIXTURES, buildEbpf, runTool } from "./lib";

// the packet table and the fuzz make conntrack entries with the conntrack tool in a namespace of their own
const t = tier("ebpf", { root: true, commands: [...BUILD_COMMANDS, "ip", "conntrack"] });

interface Row {
  group?: string;
  row?: string;
  object?: string;
  program?: string;
  ok?: boolean;
  expect?: string;
  got?: string;
  why?: string;
  summary?: { rows?: number; failed?: number; objects?: number };
}

function failures(rows: Row[]): string[] {
  return rows.filter((r) => r.ok === false).map((r) => JSON.stringify(r));
}

describe.skipIf(!t.ok)("BPF programs", () => {
  beforeAll(() => buildEbpf("tests"), 600_000);

  it("every object passes the verifier and attaches to a veth in a namespace (XDP native and generic, tcx)", () => {
    const objects = readdirSync(BUILD)
      .filter((f) => f.endsWith(".bpf.o"))
      .map((f) => join(BUILD, f));
    expect(objects.length).toBeGreaterThanOrEqual(6);
    const r = runTool<Row>("attach_test", objects);
    expect(failures(r.lines), r.stderr).toEqual([]);
    const programs = r.lines.filter((l) => l.program);
    expect(programs.map((p) => `${p.object}:${p.program}`).sort()).toEqual([
      "bench_lpm.bpf.o:bench_lpm",
      "bench_lpm_bench.bpf.o:bench_lpm",
      "bench_pass.bpf.o:bench_pass",
      "segment_qos.bpf.o:segment_egress",
      "segment_qos.bpf.o:segment_ingress",
      "wan_guard.bpf.o:dp_clock",
      "wan_guard.bpf.o:wan_guard",
      "wan_guard_bench.bpf.o:dp_clock",
      "wan_guard_bench.bpf.o:wan_guard",
    ]);
    expect(r.status).toBe(0);
  });

  describe("WAN guard packet table (BPF_PROG_TEST_RUN against test/fixtures/tables)", () => {
    let rows: Row[] = [];
    let status: number | null = null;
    beforeAll(() => {
      const r = runTool<Row>("pkt_table", ["--fixtures", join(FIXTURES, "tables")]);
      rows = r.lines;
      status = r.status;
      if (!rows.some((l) => l.summary)) throw new Error(`pkt_table produced no summary:\n${r.stderr}`);
    }, 120_000);

    const group = (g: string) => rows.filter((r) => r.group === g);

    it("classifies every source class at 0, 1 and 2 VLAN tags as specified, with the reason and VLAN counters moving by one frame", () => {
      const g = group("sources");
      // 20 source classes: 18 with an IPv4 case, 15 with an IPv6 case, each at three tag depths
      expect(g.length).toBe(3 * (18 + 15));
      expect(failures(g)).toEqual([]);
      for (const reason of ["pass", "bogon", "blocklist", "geoip", "pass_allowlist"])
        expect(g.some((r) => r.got === reason)).toBe(true);
    });

    it("drops a frame cut at or just before any header boundary as malformed, and passes it once the TCP header is complete", () => {
      const g = group("truncated");
      expect(g.length).toBeGreaterThan(30);
      expect(failures(g)).toEqual([]);
      expect(g.filter((r) => r.expect === "malformed").length).toBeGreaterThan(20);
    });

    it("handles first and later fragments (later ones carry no L4 header) and still applies the blocklist to them", () => {
      const g = group("fragments");
      expect(g.length).toBe(2 * 3 * 3);
      expect(failures(g)).toEqual([]);
    });

    it("walks IPv6 extension header chains to L4 and rejects a chain longer than the walk limit", () => {
      const g = group("ipv6-extension-headers");
      expect(g.length).toBe(5);
      expect(failures(g)).toEqual([]);
    });

    it("rejects three VLAN tags and a wrong IP version, passes non-IP frames and IPv4 options", () => {
      const g = group("shapes");
      expect(failures(g)).toEqual([]);
      expect(g.some((r) => r.got === "pass_non_ip")).toBe(true);
    });

    it("exhausts each token bucket (SYN, ICMP echo, UDP; IPv4 and IPv6) at its burst, refills it with time, and holds the configured rate over a second", () => {
      const g = group("ratelimit");
      expect(g.length).toBe(7);
      expect(failures(g)).toEqual([]);
    });

    it("lets a WAN's own upstream (connected subnet, on-link gateway, ULA prefix) past the bogon check on that link only, and DHCPv4 server replies from any source", () => {
      const g = group("bogon-exemptions");
      // 26 cases at 0 and 1 VLAN tags
      expect(g.length).toBe(2 * 26);
      expect(failures(g)).toEqual([]);
      const got = (re: RegExp) => g.filter((r) => re.test(r.row ?? "")).map((r) => r.got);
      // the same address is a bogon on a link it is not the upstream of, and next to the prefix
      expect(got(/the upstream's address arriving on another link/)).toEqual(["bogon", "bogon"]);
      expect(got(/leased subnet/)).toEqual(["pass", "pass"]);
      // the exemption skips the bogon check only
      expect(got(/blocklisted host in the upstream subnet/)).toEqual(["blocklist", "blocklist"]);
      expect(got(/upstream subnet in a blocked country/)).toEqual(["geoip", "geoip"]);
      expect(got(/DHCPv4 server reply from 0\.0\.0\.0/)).toEqual(["pass", "pass"]);
      expect(got(/from port 67 to another port than 68/)).toEqual(["bogon", "bogon"]);
    });

    it("passes UDP replies over their source's limit when conntrack knows them as replies of flows started from this side (NATed too), and charges everything else", () => {
      const g = group("conntrack-replies");
      expect(g.length).toBe(10);
      expect(failures(g)).toEqual([]);
      expect(g.find((r) => /^reply to a flow the router started/.test(r.row ?? ""))?.got).toBe(
        "clean 2, reply 8, ratelimit 0",
      );
      expect(g.find((r) => /a port forward/.test(r.row ?? ""))?.got).toBe("clean 2, reply 0, ratelimit 8");
      // a kernel without the kfunc: charged like any UDP, and the guard still loads
      expect(g.find((r) => /^conntrack lookups off/.test(r.row ?? ""))?.got).toBe("clean 2, reply 0, ratelimit 8");
    });

    it("reports no failed row", () => {
      expect(rows.find((r) => r.summary)?.summary?.failed).toBe(0);
      expect(status).toBe(0);
    });
  });

  it("segment QoS: DSCP sets skb->priority on egress, rewrite and 802.1p trust set DSCP on ingress, counters per segment", () => {
    const r = runTool<Row>("qos_table", []);
    expect(failures(r.lines), r.stderr).toEqual([]);
    expect(r.lines.find((l) => l.summary)?.summary).toEqual({ rows: 16, failed: 0 });
    expect(r.status).toBe(0);
  });

  it("agrees with the independent reference model on 1,000,000 random and mutated frames (upstream tables, DHCPv4 replies and conntrack flows present), without XDP_ABORTED", () => {
    const r = runTool<{
      summary?: {
        frames: number;
        seed: string;
        mismatches: number;
        aborted: number;
        counter_mismatches: number;
        bogons_exempt: { dhcp: number; upstream: number };
        verdicts: Record<string, number>;
      };
      mismatch?: unknown;
    }>("fuzz", ["--frames", "1000000"], 600_000);
    const summary = r.lines.find((l) => l.summary)?.summary;
    console.log(`fuzz: ${JSON.stringify(summary)}`);
    expect(summary, r.stderr).toBeDefined();
    expect(r.lines.filter((l) => l.mismatch)).toEqual([]);
    expect(summary!.frames).toBe(1_000_000);
    expect(summary!.mismatches).toBe(0);
    expect(summary!.aborted).toBe(0);
    expect(summary!.counter_mismatches).toBe(0);
    // every verdict of the pipeline was exercised, conntrack replies included, and both bogon exemptions; the fuzz
    // has no dynamic-blocklist entries (the reference model does not model them: dynblock.test.ts covers them), so
    // "dynamic" must be exactly 0 here
    expect(summary!.verdicts.dynamic).toBe(0);
    for (const [k, v] of Object.entries(summary!.verdicts)) if (k !== "dynamic") expect(v, k).toBeGreaterThan(0);
    expect(summary!.verdicts.pass_conntrack_reply).toBeGreaterThan(500);
    expect(summary!.bogons_exempt.dhcp).toBeGreaterThan(500);
    expect(summary!.bogons_exempt.upstream).toBeGreaterThan(500);
    expect(r.status).toBe(0);
  }, 600_000);
});
