/**
 * The segment probe (components/network-services/probe.ts, images/services/dhcp4-probe.c and dhcp6-probe.c)
 * against the real daemons: the dev site's segments as links of a "node" namespace (each a veth to a "wire"
 * namespace, with the gateway addresses the plan gives it), real kea-dhcp4, kea-dhcp6 and radvd running the
 * program's rendered configurations on them, and the probe script run beside them on the same host network, as the
 * rollout gate's pod runs it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderKea4, renderKea6, renderRadvd } from "../../components/network-services/config";
import {
  segmentProbeScript,
  segmentProbes,
  servicesProbeStep,
  type SegmentProbe,
} from "../../components/network-services/probe";
import { devRaw, devSite, type Raw } from "../helpers/dev-site";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";
import { Netns } from "./netns";
import { waitFor } from "../helpers/wait";

const t = tier("segment probe", {
  root: true,
  commands: ["ip", "gcc", "kea-dhcp4", "kea-dhcp6", "radvd", "rdisc6", "socat", "setpriv"],
});

const dev = devSite();
const probes = segmentProbes(dev.site, dev.plan);
let ns: Netns;
let dir: string;
let kea: ChildProcess | undefined;
let kea6: ChildProcess | undefined;
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

/**
 * The rendered Kea DHCPv6 configuration with its sockets, lease file, server id and logs in this test's directory;
 * `edit` changes the rendered Dhcp6 object (a revision that went wrong).
 */
function kea6Config(edit?: (dhcp6: Raw) => void, s = dev): string {
  const cfg = JSON.parse(renderKea6(s.site, s.plan)) as { Dhcp6: Raw };
  edit?.(cfg.Dhcp6);
  cfg.Dhcp6["control-socket"] = { "socket-type": "unix", "socket-name": join(dir, "kea6.sock") };
  cfg.Dhcp6["lease-database"] = { type: "memfile", persist: true, name: join(dir, "leases6.csv"), "lfc-interval": 0 };
  cfg.Dhcp6["data-directory"] = dir;
  cfg.Dhcp6.loggers = [{ name: "kea-dhcp6", output_options: [{ output: "stdout" }], severity: "INFO" }];
  const file = join(dir, "kea-dhcp6.json");
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

async function startKea6(edit?: (dhcp6: Raw) => void, s = dev): Promise<void> {
  const file = kea6Config(edit, s);
  kea6 = start(["kea-dhcp6", "-c", file], { KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir });
  let log = "";
  kea6.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  await waitFor("kea-dhcp6 to start", () => /DHCP6_STARTED/.test(log), 15_000);
}

async function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null) return;
  p.kill("SIGTERM");
  await waitFor("the daemon to stop", () => p.exitCode !== null || p.signalCode !== null, 10_000);
}

/** Runs the probe script for these segments in the node's namespace, with the probe tools on PATH. */
function probe(segments: string[], of = probes, caps?: string[]): { code: number; out: string; ms: number } {
  const t0 = Date.now();
  // caps: only these capabilities, as the probe pod has them (its container drops the others).
  const limit = caps ? ["setpriv", `--bounding-set=-all${caps.map((c) => `,+${c}`).join("")}`] : [];
  const r = spawnSync(
    "ip",
    ["netns", "exec", ns.name("node"), ...limit, "sh", "-c", segmentProbeScript(of), "segment-probe", ...segments],
    { encoding: "utf8", timeout: 60_000, env: { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}` } },
  );
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, ms: Date.now() - t0 };
}

const named = (p: SegmentProbe) => p.segment;

describe.skipIf(!t.ok)("the segment probe, with the real Kea and radvd", () => {
  beforeAll(async () => {
    dir = tempDir("segment-probe-");
    mkdirSync(join(dir, "bin"));
    for (const tool of ["dhcp4-probe", "dhcp6-probe"]) {
      const built = spawnSync(
        "gcc",
        [
          ...["-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-D_GNU_SOURCE"],
          ...["-o", join(dir, "bin", tool), join(ROOT, `images/services/${tool}.c`)],
        ],
        { encoding: "utf8" },
      );
      if (built.status !== 0) throw new Error(`${tool} does not build: ${built.stderr}`);
    }
    ns = new Netns("sprb");
    ns.add("node", "wire");
    for (const seg of dev.plan.segments) {
      ns.link("node", seg.link, "wire", `w${seg.vlan}`);
      for (const a of [seg.ipv4?.gatewayCidr, seg.ipv6?.gatewayCidr])
        if (a) ns.exec("node", ["ip", "addr", "add", a, "dev", seg.link]);
    }
    await startKea();
    await startKea6();
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
    await stop(kea6);
    await stop(radvd);
    ns?.close();
  });

  it("probes every segment a daemon serves on the dev site (every kind of check is present)", () => {
    expect(probes.some((p) => p.dhcp4) && probes.some((p) => p.ra) && probes.some((p) => p.dhcp6)).toBe(true);
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
      if (p.dhcp6) {
        const m = new RegExp(
          `^ok segment ${p.segment}: DHCPv6 on ${p.link}: advertise (\\S+) from (fe80::\\S+)$`,
          "m",
        ).exec(r.out);
        expect(m, `${p.segment}: ${r.out}`).not.toBeNull();
        const seg = dev.plan.segments.find((x) => x.name === p.segment)!;
        expect(inPrefix6(m![1], seg.ipv6!.prefix), `${m![1]} in ${seg.ipv6!.prefix}`).toBe(true);
      }
    }
    // DHCPv6 is asked exactly on the segments the site's configuration gives stateful DHCPv6.
    const withDhcp6 = devRaw()
      .segments.filter((x: Raw) => x.dhcpv6?.enabled === true)
      .map((x: Raw) => x.name as string);
    expect([...r.out.matchAll(/^(?:ok|FAIL) segment (\S+): DHCPv6 /gm)].map((m) => m[1]).sort()).toEqual(
      withDhcp6.sort(),
    );
    expect(r.ms).toBeLessThan(2000 * probes.length);
    const leases = readFileSync(join(dir, "leases4.csv"), "utf8").trim().split("\n");
    expect(leases.slice(1), "the probe's offers were never requested").toEqual([]);
    const leases6 = readFileSync(join(dir, "leases6.csv"), "utf8").trim().split("\n");
    expect(leases6.slice(1), "the probe's advertises were never requested").toEqual([]);
  });

  it("asks Kea's DHCPv6 for its options as a stateless client and finds the router's DNS server", () => {
    const p = probes.find((x) => x.dhcp6)!;
    const seg = dev.plan.segments.find((x) => x.name === p.segment)!;
    const run = (dns: string) =>
      spawnSync("ip", ["netns", "exec", ns.name("node"), join(dir, "bin", "dhcp6-probe"), "-i", p.link, dns, "3000"], {
        encoding: "utf8",
        timeout: 10_000,
      });
    const ok = run(seg.ipv6!.gateway);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^reply from fe80::\\S+ with DNS ${seg.ipv6!.gateway}$`, "m"));
    const other = run("fd00:99::53");
    expect(other.status).toBe(1);
    expect(other.stdout).toMatch(new RegExp(`names DNS ${seg.ipv6!.gateway} but not fd00:99::53$`, "m"));
  });

  it("runs with the probe pod's capabilities, and says which one it lacks without them", () => {
    const dev6 = probes.find((x) => x.dhcp6)!;
    const pod = servicesProbeStep("image", probes).capabilities.map((c) => c.toLowerCase());
    const ok = probe([dev6.segment], probes, pod);
    expect(ok.code, ok.out).toBe(0);
    const raw = probe([dev6.segment], probes, ["net_raw"]);
    expect(raw.code).toBe(1);
    expect(raw.out).toMatch(
      new RegExp(
        `^FAIL segment ${dev6.segment}: DHCPv6 on ${dev6.link}: dhcp6-probe: bind to port 546 on ${dev6.link}: Permission denied \\(needs CAP_NET_BIND_SERVICE\\)$`,
        "m",
      ),
    );
  });

  it("gets its advertise while another link's DHCPv6 client holds port 546 there (as a WAN's would)", async () => {
    const p = probes.find((x) => x.dhcp6)!;
    const other = dev.plan.segments.find((x) => x.link !== p.link)!;
    // Port 546 bound on the other link only, without SO_REUSEADDR.
    const holder = start(["socat", "-u", `UDP6-RECV:546,so-bindtodevice=${other.link}`, "/dev/null"]);
    try {
      await waitFor("the port holder to bind", () =>
        ns.exec("node", ["ss", "-Huln", "sport", "= :546"]).stdout.includes(`%${other.link}:546`),
      );
      const r = probe([p.segment]);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(new RegExp(`^ok segment ${p.segment}: DHCPv6 on ${p.link}: advertise `, "m"));
    } finally {
      await stop(holder);
    }
  });

  it("asks a stateless segment's DHCPv6 (other-config flag, no addresses) for the router's DNS server", async () => {
    const stateless = devSite((raw) => (raw.segments.find((x: Raw) => x.name === "iot").ra = { otherConfig: true }));
    const of = segmentProbes(stateless.site, stateless.plan);
    const iot = stateless.plan.segments.find((x) => x.name === "iot")!;
    await stop(kea6);
    await startKea6(undefined, stateless);
    const r = probe(["iot"], of);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(
      new RegExp(`^ok segment iot: DHCPv6 on ${iot.link}: reply from fe80::\\S+ with DNS ${iot.ipv6!.gateway}$`, "m"),
    );
    await stop(kea6);
    const down = probe(["iot"], of);
    expect(down.code).toBe(1);
    expect(down.out).toMatch(
      new RegExp(`^FAIL segment iot: DHCPv6 on ${iot.link}: no DHCPv6 reply on ${iot.link} within 3000 ms$`, "m"),
    );
    await startKea6();
  });

  it("fails naming the segment when Kea's DHCPv6 hands out addresses of another prefix there", async () => {
    await stop(kea6);
    const p = probes.find((x) => x.dhcp6)!;
    // The segment's subnet on its link, with its pool in a prefix the link does not have.
    await startKea6((dhcp6) => {
      const sub = (dhcp6.subnet6 as Raw[]).find((x) => x.interface === p.link)!;
      sub.subnet = "fd12:3456:789a:99::/64";
      sub.pools = [{ pool: "fd12:3456:789a:99::1000-fd12:3456:789a:99::1fff" }];
      sub.reservations = [];
    });
    const r = probe([p.segment]);
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(
      new RegExp(
        `^FAIL segment ${p.segment}: DHCPv6 on ${p.link}: advertised fd12:3456:789a:99::\\S+ \\(from fe80::\\S+\\), which is outside ${p.dhcp6!.mode === "stateful" ? p.dhcp6!.pool : ""}$`,
        "m",
      ),
    );
    await stop(kea6);
    await startKea6();
  });

  it("fails naming each DHCPv6 segment, in bounded time, when Kea's DHCPv6 is stopped", async () => {
    await stop(kea6);
    const v6 = probes.filter((p) => p.dhcp6);
    const r = probe(v6.map(named));
    expect(r.code).toBe(1);
    expect(r.ms, "each check is bounded").toBeLessThan(v6.length * 8000);
    for (const p of v6)
      expect(r.out).toMatch(
        new RegExp(
          `^FAIL segment ${p.segment}: DHCPv6 on ${p.link}: no DHCPv6 advertise on ${p.link} within 3000 ms$`,
          "m",
        ),
      );
    await startKea6();
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

/** True when an IPv6 address lies in a /64 prefix: the first four groups, written out in full, are equal. */
function inPrefix6(addr: string, prefix: string): boolean {
  const groups = (a: string) => {
    const [head, tail] = a.split("::");
    const h = head ? head.split(":") : [];
    const t = tail ? tail.split(":") : [];
    return [...h, ...Array(8 - h.length - t.length).fill("0"), ...t].map((g) => parseInt(g, 16));
  };
  const [net, len] = prefix.split("/");
  expect(len).toBe("64");
  return groups(addr).slice(0, 4).join(":") === groups(net).slice(0, 4).join(":");
}

function inSubnet(addr: string, cidr: string): boolean {
  const n = (a: string) => a.split(".").reduce((x, o) => x * 256 + Number(o), 0);
  const [net, len] = cidr.split("/");
  const size = 2 ** (32 - Number(len));
  return Math.floor(n(addr) / size) === Math.floor(n(net) / size);
}
