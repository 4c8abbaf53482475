/**
 * The segment probe (components/network-services/probe.ts, images/services/dhcp4-probe.c) against the real
 * daemons: the dev site's segments as links of a "node" namespace (each a veth to a "wire" namespace, with the
 * gateway addresses the plan gives it), real kea-dhcp4 and radvd running the program's rendered configurations
 * on them, and the probe script run beside them on the same host network, as the rollout gate's pod runs it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderKea4, renderRadvd } from "../../components/network-services/config";
import { segmentProbeScript, segmentProbes, type SegmentProbe } from "../../components/network-services/probe";
import { devSite, type Raw } from "../helpers/dev-site";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";
import { Netns } from "./netns";
import { waitFor } from "../helpers/wait";

const t = tier("segment probe", { root: true, commands: ["ip", "gcc", "kea-dhcp4", "radvd", "rdisc6"] });

const dev = devSite();
const probes = segmentProbes(dev.site, dev.plan);
let ns: Netns;
let dir: string;
let kea: ChildProcess | undefined;
let radvd: ChildProcess | undefined;

/** The rendered Kea configuration with its sockets, lease file and logs in this test's directory. */
function keaConfig(edit?: (raw: Raw) => void): string {
  const s = devSite(edit);
  const cfg = JSON.parse(renderKea4(s.site, s.plan, s.policy)) as { Dhcp4: Record<string, unknown> };
  cfg.Dhcp4["control-socket"] = { "socket-type": "unix", "socket-name": join(dir, "kea4.sock") };
  cfg.Dhcp4["lease-database"] = { type: "memfile", persist: true, name: join(dir, "leases4.csv"), "lfc-interval": 0 };
  cfg.Dhcp4.loggers = [{ name: "kea-dhcp4", output_options: [{ output: "stdout" }], severity: "INFO" }];
  const file = join(dir, "kea-dhcp4.json");
  writeFileSync(file, JSON.stringify(cfg));
  return file;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn("ip", ["netns", "exec", ns.name("node"), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
}

async function startKea(edit?: (raw: Raw) => void): Promise<void> {
  const file = keaConfig(edit);
  kea = start(["kea-dhcp4", "-c", file], { KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir });
  let log = "";
  kea.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  await waitFor("kea-dhcp4 to start", () => /DHCP4_STARTED/.test(log), 15_000);
}

async function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null) return;
  p.kill("SIGTERM");
  await waitFor("the daemon to stop", () => p.exitCode !== null || p.signalCode !== null, 10_000);
}

/** Runs the probe script for these segments in the node's namespace, with the probe tools on PATH. */
function probe(segments: string[]): { code: number; out: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(
    "ip",
    ["netns", "exec", ns.name("node"), "sh", "-c", segmentProbeScript(probes), "segment-probe", ...segments],
    { encoding: "utf8", timeout: 60_000, env: { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}` } },
  );
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, ms: Date.now() - t0 };
}

const named = (p: SegmentProbe) => p.segment;

describe.skipIf(!t.ok)("the segment probe, with the real Kea and radvd", () => {
  beforeAll(async () => {
    dir = tempDir("segment-probe-");
    mkdirSync(join(dir, "bin"));
    const built = spawnSync(
      "gcc",
      [
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-std=gnu11",
        "-D_GNU_SOURCE",
        "-o",
        join(dir, "bin", "dhcp4-probe"),
        join(ROOT, "images/services/dhcp4-probe.c"),
      ],
      { encoding: "utf8" },
    );
    if (built.status !== 0) throw new Error(`dhcp4-probe does not build: ${built.stderr}`);
    ns = new Netns("sprb");
    ns.add("node", "wire");
    for (const seg of dev.plan.segments) {
      ns.link("node", seg.link, "wire", `w${seg.vlan}`);
      for (const a of [seg.ipv4?.gatewayCidr, seg.ipv6?.gatewayCidr])
        if (a) ns.exec("node", ["ip", "addr", "add", a, "dev", seg.link]);
    }
    await startKea();
    writeFileSync(join(dir, "radvd.conf"), renderRadvd(dev.site, dev.plan)!, { mode: 0o644 });
    radvd = start(["radvd", "--nodaemon", "-C", join(dir, "radvd.conf"), "-p", join(dir, "radvd.pid"), "-m", "stderr"]);
    await waitFor("radvd to write its pid file", () => {
      try {
        return readFileSync(join(dir, "radvd.pid"), "utf8").trim() !== "";
      } catch {
        return false;
      }
    });
  }, 60_000);

  afterAll(async () => {
    await stop(kea);
    await stop(radvd);
    ns?.close();
  });

  it("probes every segment a daemon serves on the dev site (both kinds of check are present)", () => {
    expect(probes.some((p) => p.dhcp4) && probes.some((p) => p.ra)).toBe(true);
  });

  it("finds Kea's offer in each segment's subnet and radvd's prefix on each link, in seconds, and takes no lease", () => {
    const r = probe(probes.map(named));
    expect(r.code, r.out).toBe(0);
    for (const p of probes) {
      if (p.dhcp4) {
        const m = new RegExp(`^ok segment ${p.segment}: DHCPv4 on ${p.link}: offer (\\S+) from (\\S+)$`, "m").exec(
          r.out,
        );
        expect(m, `${p.segment}: ${r.out}`).not.toBeNull();
        expect(inSubnet(m![1], p.dhcp4), `${m![1]} in ${p.dhcp4}`).toBe(true);
      }
      if (p.ra) expect(r.out).toContain(`ok segment ${p.segment}: router advertisement on ${p.link} announces ${p.ra}`);
    }
    expect(r.ms).toBeLessThan(2000 * probes.length);
    const leases = readFileSync(join(dir, "leases4.csv"), "utf8").trim().split("\n");
    expect(leases.slice(1), "the probe's offers were never requested").toEqual([]);
  });

  it("fails naming the segment when Kea hands out addresses of another subnet there", async () => {
    await stop(kea);
    await startKea((raw) => {
      raw.segments.find((s: Raw) => s.name === "iot").ipv4 = { cidr: "10.31.0.0/23" };
    });
    const iot = probes.find((p) => p.segment === "iot")!;
    const other = probes.find((p) => p.dhcp4 && p.segment !== "iot")!;
    const r = probe(["iot", other.segment]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      new RegExp(
        `^FAIL segment iot: DHCPv4 on ${iot.link}: offered 10\\.31\\.\\S+ \\(from \\S+\\), which is outside ${iot.dhcp4}`,
        "m",
      ),
    );
    expect(r.out).toMatch(new RegExp(`^ok segment ${other.segment}: DHCPv4 on ${other.link}: offer `, "m"));
    await stop(kea);
    await startKea();
  });

  it("fails naming each DHCPv4 segment when Kea is stopped, and each RA segment when radvd is", async () => {
    await stop(kea);
    const v4 = probes.filter((p) => p.dhcp4).slice(0, 2);
    const r = probe(v4.map(named));
    expect(r.code).toBe(1);
    expect(r.ms, "each check is bounded").toBeLessThan(v4.length * 6000);
    for (const p of v4)
      expect(r.out).toMatch(
        new RegExp(`^FAIL segment ${p.segment}: DHCPv4 on ${p.link}: no DHCPv4 offer on ${p.link} within 3000 ms`, "m"),
      );
    await stop(radvd);
    const v6 = probes.filter((p) => p.ra).slice(0, 2);
    const r6 = probe(v6.map(named));
    expect(r6.code).toBe(1);
    for (const p of v6)
      expect(r6.out).toMatch(
        new RegExp(`^FAIL segment ${p.segment}: RA on ${p.link}: no router advertisement answered a solicitation`, "m"),
      );
  });

  it("fails on a name that is no probed segment", () => {
    const r = probe(["nosuch"]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^FAIL segment nosuch: not a segment any service answers on$/m);
  });
});

function inSubnet(addr: string, cidr: string): boolean {
  const n = (a: string) => a.split(".").reduce((x, o) => x * 256 + Number(o), 0);
  const [net, len] = cidr.split("/");
  const size = 2 ** (32 - Number(len));
  return Math.floor(n(addr) / size) === Math.floor(n(net) / size);
}
