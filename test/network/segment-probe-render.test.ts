/**
 * The segment probe as rendered (components/network-services/probe.ts): which segments are asked DHCPv6 and for
 * which pool, what a DHCPv6 failure implicates, and the script's calls of the probe tools — the tools replaced by
 * stand-ins that record their arguments, so this runs without root. The expectations come from the site's raw
 * configuration (which segments set dhcpv6.enabled, their prefixes and ranges), not from the code under test.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  probeDaemons,
  segmentProbeScript,
  segmentProbes,
  servicesProbeStep,
} from "../../components/network-services/probe";
import { renderKea6 } from "../../components/network-services/config";
import { devRaw, devSite, type Raw } from "../helpers/dev-site";
import { tempDir } from "../helpers/temp";

const IMAGE = "registry.lab:5000/router/router-services@sha256:" + "1".repeat(64);

/** Segment name → the DHCPv6 pool the raw configuration gives it (its range, else <prefix>::1000-<prefix>::1fff). */
function rawPools(raw: Raw): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of raw.segments as Raw[]) {
    if (s.dhcpv6?.enabled !== true) continue;
    const base = (s.ipv6.prefix as string).replace(/::\/64$/, "::");
    out.set(s.name, s.dhcpv6.range ? `${s.dhcpv6.range.start}-${s.dhcpv6.range.end}` : `${base}1000-${base}1fff`);
  }
  return out;
}

function edited(edit: (raw: Raw) => void): { raw: Raw; probes: ReturnType<typeof segmentProbes> } {
  const raw = devRaw();
  edit(raw);
  const s = devSite(edit);
  return { raw, probes: segmentProbes(s.site, s.plan) };
}

/** Runs the probe script for these segments with stand-in tools; returns each tool call as `tool arg…`. */
function calls(probes: ReturnType<typeof segmentProbes>, segments: string[]): string[] {
  const dir = tempDir("probe-render-");
  const bin = join(dir, "bin");
  mkdirSync(bin);
  const log = join(dir, "calls");
  for (const tool of ["dhcp4-probe", "dhcp6-probe", "rdisc6"]) {
    writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> "${log}"\necho answered\n`);
    chmodSync(join(bin, tool), 0o755);
  }
  writeFileSync(log, "");
  const r = spawnSync("sh", ["-c", segmentProbeScript(probes), "segment-probe", ...segments], {
    encoding: "utf8",
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
  });
  expect(r.error).toBeUndefined();
  return readFileSync(log, "utf8").trim().split("\n").filter(Boolean);
}

describe("the segment probe's DHCPv6 check", () => {
  it("is asked exactly on the segments with DHCPv6, for the pool their configuration gives", () => {
    const dev = devSite();
    const probes = segmentProbes(dev.site, dev.plan);
    const pools = rawPools(devRaw());
    expect(pools.size, "the dev site has DHCPv6 segments").toBeGreaterThan(0);
    const asked = new Map(probes.flatMap((p) => (p.dhcp6?.mode === "stateful" ? [[p.segment, p.dhcp6.pool]] : [])));
    expect(asked).toEqual(pools);
    expect(probes.filter((p) => p.dhcp6 && p.dhcp6.mode !== "stateful")).toEqual([]);
  });

  it("follows the configuration: a segment that turns DHCPv6 on is asked, one that turns it off is not", () => {
    const { raw, probes } = edited((r) => {
      r.segments.find((x: Raw) => x.name === "iot").dhcpv6 = {
        enabled: true,
        range: { start: "fd12:3456:789a:30::100", end: "fd12:3456:789a:30::1ff" },
      };
      r.segments.find((x: Raw) => x.name === "servers").dhcpv6 = { enabled: false };
      for (const x of r.segments as Raw[])
        for (const res of (x.dhcp?.reservations ?? []) as Raw[]) if (x.name === "servers") delete res.ipv6;
      r.firewall.addressGroups = (r.firewall.addressGroups as Raw[]).map((g) => ({
        ...g,
        addresses: (g.addresses as string[]).filter((a) => a !== "fd12:3456:789a:50::10"),
      }));
    });
    const asked = new Map(probes.flatMap((p) => (p.dhcp6?.mode === "stateful" ? [[p.segment, p.dhcp6.pool]] : [])));
    expect(asked).toEqual(rawPools(raw));
    expect(asked.get("iot")).toBe("fd12:3456:789a:30::100-fd12:3456:789a:30::1ff");
    expect(asked.has("servers")).toBe(false);
  });

  it("runs dhcp6-probe once per DHCPv6 segment, on its link with its pool, and never elsewhere", () => {
    const dev = devSite();
    const probes = segmentProbes(dev.site, dev.plan);
    const pools = rawPools(devRaw());
    const got = calls(
      probes,
      probes.map((p) => p.segment),
    ).filter((c) => c.startsWith("dhcp6-probe "));
    const want = [...pools].map(([name, pool]) => {
      const link = dev.plan.segments.find((s) => s.name === name)!.link;
      return `dhcp6-probe ${link} ${pool} 3000`;
    });
    expect(got.sort()).toEqual(want.sort());
    // A segment without DHCPv6 alone: no DHCPv6 question at all.
    const plain = probes.find((p) => !pools.has(p.segment))!;
    expect(calls(probes, [plain.segment]).filter((c) => c.startsWith("dhcp6-probe"))).toEqual([]);
  });

  it("asks a stateless segment with an information request naming the DNS server it expects", () => {
    const got = calls(
      [
        { segment: "a", link: "lan0.7", dhcp6: { mode: "stateless", dns: "fd00:7::1" }, fingerprint: "" },
        { segment: "b", link: "lan0.8", dhcp6: { mode: "stateless" }, fingerprint: "" },
      ],
      ["a", "b"],
    );
    expect(got).toEqual(["dhcp6-probe -i lan0.7 fd00:7::1 3000", "dhcp6-probe -i lan0.8 - 3000"]);
  });

  it("asks a segment with the other-config flag and no DHCPv6 addresses statelessly, for the router's DNS", () => {
    const { raw, probes } = edited((r) => (r.segments.find((x: Raw) => x.name === "iot").ra = { otherConfig: true }));
    const iot = (raw.segments as Raw[]).find((x) => x.name === "iot")!;
    const gateway = (iot.ipv6.prefix as string).replace(/::\/64$/, "::1");
    expect(probes.find((p) => p.segment === "iot")!.dhcp6).toEqual({ mode: "stateless", dns: gateway });
    // The router's DHCPv6 serves it without a pool: options only.
    const s = devSite((r) => (r.segments.find((x: Raw) => x.name === "iot").ra = { otherConfig: true }));
    const sub = (JSON.parse(renderKea6(s.site, s.plan)).Dhcp6.subnet6 as Raw[]).find((x) => x.interface === "lan0.30")!;
    expect(sub.pools).toEqual([]);
    expect(sub["option-data"]).toContainEqual({ name: "dns-servers", data: gateway });
    expect(calls(probes, ["iot"]).filter((c) => c.startsWith("dhcp6-probe"))).toEqual([
      `dhcp6-probe -i lan0.30 ${gateway} 3000`,
    ]);
    // Router advertisements off: no other-config flag is sent, so nothing is served or asked.
    const quiet = edited(
      (r) => (r.segments.find((x: Raw) => x.name === "iot").ra = { enabled: false, otherConfig: true }),
    );
    expect(quiet.probes.find((p) => p.segment === "iot")?.dhcp6).toBeUndefined();
  });

  it("blames kea-dhcp6 for a DHCPv6 failure, and gives the pod the right to bind the DHCPv6 client port", () => {
    const dev = devSite();
    const probes = segmentProbes(dev.site, dev.plan);
    for (const p of probes)
      expect(probeDaemons(p).includes("kea-dhcp6"), p.segment).toBe(rawPools(devRaw()).has(p.segment));
    const step = servicesProbeStep(IMAGE, probes);
    // The gate matches each pattern with grep -E after "FAIL segment NAME: " (rollout.ts).
    const blamed = (line: string) =>
      step.blame.filter((b) => new RegExp(`^FAIL segment [^:]*: ${b.pattern}`).test(line)).map((b) => b.daemon);
    expect(blamed("FAIL segment servers: DHCPv6 on lan0.50: no DHCPv6 advertise on lan0.50 within 3000 ms")).toEqual([
      "kea-dhcp6",
    ]);
    expect(blamed("FAIL segment servers: DHCPv4 on lan0.50: no DHCPv4 offer on lan0.50 within 3000 ms")).toEqual([
      "kea-dhcp4",
    ]);
    expect(step.capabilities).toEqual(["NET_RAW", "NET_BIND_SERVICE"]);
    const none = servicesProbeStep(
      IMAGE,
      probes.map(({ dhcp6: _, ...p }) => p),
    );
    expect(none.capabilities).toEqual(["NET_RAW"]);
  });

  it("counts the DHCPv6 wait in each segment's time budget", () => {
    const dev = devSite();
    const step = servicesProbeStep(IMAGE, segmentProbes(dev.site, dev.plan));
    // DHCPv4 3 s, DHCPv6 3 s, two router solicitations of 1 s.
    expect(step.segmentMs).toBe(8000);
  });

  it("changes the fingerprint of a segment whose DHCPv6 pool changes, and of no other", () => {
    const dev = devSite();
    const before = segmentProbes(dev.site, dev.plan);
    const { probes: after } = edited((r) => {
      r.segments.find((x: Raw) => x.name === "servers").dhcpv6.range = {
        start: "fd12:3456:789a:50::2000",
        end: "fd12:3456:789a:50::2fff",
      };
    });
    const changed = after.filter((p) => before.find((b) => b.segment === p.segment)!.fingerprint !== p.fingerprint);
    expect(changed.map((p) => p.segment)).toEqual(["servers"]);
  });
});
