/**
 * The routes of a routing daemon the site no longer runs: with OSPF removed from the site, the bird pod is gone but
 * its routes (protocol bird, 12; the restart hold, 249; FRR's ospf, 188) stay in the kernel. The real loader in a
 * network namespace, with `[global] stale_route_protocols`, removes those of both families from the main table at
 * the start, at a reload and when one is added again (a pod still terminating), keeps every other route, and counts
 * what it removed; without the key (the site runs OSPF, BIRD owns them) they stay. A route it cannot remove (no
 * CAP_NET_ADMIN) is logged and counted, and the loader runs on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import {
  BUILD_COMMANDS,
  LOADER,
  buildEbpf,
  ensureBpffs,
  inNetns,
  ip,
  jsonLines,
  metricsUp,
  parseMetrics,
  replaceFile,
  startLoaderIn,
  stopProcess,
  tempDir,
  waitFor,
} from "./lib";

const t = tier("ebpf-stale-routes", {
  root: true,
  commands: [...BUILD_COMMANDS, "ip", "nsenter", "curl", "setpriv"],
});

const NS = `dpstale${process.pid % 100000}`;
const PIN = `/sys/fs/bpf/router-dataplane-stale-${process.pid}`;
const PORT = 9430;
/** What the renderer lists for a site without OSPF (test/network/loader-config.test.ts derives it from bird-start). */
const STALE = "12, 188, 249";

interface LogLine {
  level: string;
  event: string;
  msg: string;
}

/** A route as `ip -N -j route` reports it: destination, protocol number, table. */
interface Route {
  dst: string;
  protocol: number;
  table: string;
}

/** The routes of a routing pod (both families, a multipath one, FRR's, one outside the main table) and others. */
const ROUTES: { args: string[]; dst: string; protocol: number; table?: string }[] = [
  { args: ["10.88.1.0/24", "via", "10.77.0.2", "proto", "bird", "metric", "20"], dst: "10.88.1.0/24", protocol: 12 },
  { args: ["10.88.2.0/24", "via", "10.77.0.3", "proto", "249", "metric", "21"], dst: "10.88.2.0/24", protocol: 249 },
  {
    args: [
      "10.88.3.0/24",
      "proto",
      "bird",
      "metric",
      "20",
      "nexthop",
      "via",
      "10.77.0.2",
      "nexthop",
      "via",
      "10.77.0.3",
    ],
    dst: "10.88.3.0/24",
    protocol: 12,
  },
  { args: ["10.88.4.0/24", "via", "10.77.0.4", "proto", "ospf", "metric", "20"], dst: "10.88.4.0/24", protocol: 188 },
  { args: ["-6", "fd88:1::/64", "via", "fd77::2", "proto", "bird", "metric", "20"], dst: "fd88:1::/64", protocol: 12 },
  { args: ["-6", "fd88:2::/64", "via", "fd77::3", "proto", "249", "metric", "21"], dst: "fd88:2::/64", protocol: 249 },
  // kept: an operator's static routes, a kernel route, and a bird route outside the main table
  { args: ["10.88.10.0/24", "via", "10.77.0.5", "proto", "static"], dst: "10.88.10.0/24", protocol: 4 },
  { args: ["-6", "fd88:10::/64", "via", "fd77::5", "proto", "static"], dst: "fd88:10::/64", protocol: 4 },
  { args: ["10.88.11.0/24", "dev", "veth0", "proto", "kernel", "scope", "link"], dst: "10.88.11.0/24", protocol: 2 },
  {
    args: ["10.88.12.0/24", "via", "10.77.0.2", "proto", "bird", "table", "100"],
    dst: "10.88.12.0/24",
    protocol: 12,
    table: "100",
  },
];
const OURS = new Set([12, 188, 249]);
const STALE_MAIN = ROUTES.filter((r) => OURS.has(r.protocol) && !r.table).map((r) => r.dst);
const KEPT = ROUTES.filter((r) => !STALE_MAIN.includes(r.dst)).map((r) => r.dst);

describe.skipIf(!t.ok)("router-dataplane removes the routes of a routing daemon the site no longer runs", () => {
  let dir = "";
  let loader: ChildProcess | undefined;
  let log = "";

  const events = () => jsonLines<LogLine>(log);
  const metrics = () => parseMetrics(inNetns(NS, "curl", ["-sf", `http://127.0.0.1:${PORT}/metrics`]));
  const removedTotal = () => metrics().get("router_dataplane_stale_routes_removed_total");
  /** Every route of both families in every table, with numeric protocols. */
  function routes(): Route[] {
    const out: Route[] = [];
    for (const fam of ["-4", "-6"])
      for (const r of JSON.parse(ip("-n", NS, "-N", "-j", fam, "route", "show", "table", "all")) as {
        dst: string;
        protocol?: string;
        table?: string;
      }[])
        out.push({ dst: r.dst, protocol: Number(r.protocol ?? 0), table: r.table ?? "main" });
    return out;
  }
  const present = (dst: string) => routes().some((r) => r.dst === dst);

  function conf(stale: string | undefined): string {
    return `[global]
pin_root = ${PIN}
metrics_address = 127.0.0.1
metrics_port = ${PORT}
state_dir = ${join(dir, "state")}
${stale === undefined ? "" : `stale_route_protocols = ${stale}\n`}`;
  }

  function addRoutes(which: (r: (typeof ROUTES)[number]) => boolean = () => true): void {
    for (const r of ROUTES.filter(which)) {
      const fam = r.args[0] === "-6" ? ["-6"] : [];
      ip("-n", NS, ...fam, "route", "replace", ...r.args.slice(fam.length));
    }
  }

  async function start(stale: string | undefined): Promise<void> {
    writeFileSync(join(dir, "dataplane.conf"), conf(stale));
    loader = await startLoaderIn(NS, [LOADER, "--config", join(dir, "dataplane.conf")], {
      log: () => log,
      onLog: (c) => (log += c),
      ready: () => metricsUp(metrics),
    });
  }

  beforeAll(() => {
    buildEbpf("loader");
    ensureBpffs();
    dir = tempDir("dp-stale-");
    spawnSync("ip", ["netns", "del", NS]);
    ip("netns", "add", NS);
    ip("-n", NS, "link", "set", "lo", "up");
    ip("-n", NS, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1");
    for (const l of ["veth0", "veth1"]) ip("-n", NS, "link", "set", l, "up");
    ip("-n", NS, "addr", "add", "10.77.0.1/24", "dev", "veth0");
    ip("-n", NS, "addr", "add", "fd77::1/64", "dev", "veth0", "nodad");
    addRoutes();
  }, 600_000);

  afterAll(async () => {
    await stopProcess(loader);
    spawnSync("ip", ["netns", "del", NS]);
    rmSync(PIN, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("leaves them alone while the site runs OSPF (no key), and removes them once a reload lists their protocols", async () => {
    await start(undefined);
    // the loader has made its start sweep and its reload sweeps before answering; give a late one time anyway
    await new Promise((r) => setTimeout(r, 1500));
    for (const dst of [...STALE_MAIN, ...KEPT]) expect(present(dst), dst).toBe(true);
    expect(removedTotal()).toBe(0);

    replaceFile(join(dir, "dataplane.conf"), conf(STALE));
    await waitFor("the reload's sweep", () => STALE_MAIN.every((d) => !present(d)), 10_000);
    for (const dst of KEPT) expect(present(dst), dst).toBe(true);
    expect(removedTotal()).toBe(STALE_MAIN.length);
    await stopProcess(loader);
  }, 60_000);

  it("started with the key: removes them at once, keeps every other route, and removes one a pod adds again", async () => {
    log = "";
    addRoutes((r) => STALE_MAIN.includes(r.dst));
    for (const dst of STALE_MAIN) expect(present(dst), dst).toBe(true);
    await start(STALE);
    // the start's sweep runs before the metrics server answers
    for (const dst of STALE_MAIN) expect(present(dst), dst).toBe(false);
    for (const dst of KEPT) expect(present(dst), dst).toBe(true);
    expect(removedTotal()).toBe(STALE_MAIN.length);
    const removed = events().filter((e) => e.event === "stale_route_removed");
    expect(removed.map((e) => e.msg.split(" ")[1]).sort()).toEqual([...STALE_MAIN].sort());
    expect(removed.map((e) => e.msg)).toContainEqual(
      expect.stringMatching(
        /^removed 10\.88\.3\.0\/24 via 10\.77\.0\.2 dev veth0, via 10\.77\.0\.3 dev veth0 \(protocol 12, metric 20\)/,
      ),
    );
    expect(removed.map((e) => e.msg)).toContainEqual(
      expect.stringMatching(/^removed fd88:2::\/64 via fd77::3 dev veth0 \(protocol 249, metric 21\)/),
    );

    // a pod still terminating installs routes again: gone by the next sweep
    ip("-n", NS, "route", "add", "10.88.20.0/24", "via", "10.77.0.2", "proto", "bird", "metric", "20");
    ip("-n", NS, "-6", "route", "add", "fd88:20::/64", "via", "fd77::2", "proto", "bird", "metric", "20");
    await waitFor("the next sweep", () => !present("10.88.20.0/24") && !present("fd88:20::/64"), 15_000);
    for (const dst of KEPT) expect(present(dst), dst).toBe(true);
    expect(removedTotal()).toBe(STALE_MAIN.length + 2);
    expect(metrics().get("router_dataplane_stale_route_failures_total")).toBe(0);
    await stopProcess(loader);
  }, 60_000);

  it("logs and counts a route it cannot remove, and keeps running (never fatal)", async () => {
    log = "";
    ip("-n", NS, "route", "replace", "10.88.30.0/24", "via", "10.77.0.2", "proto", "bird", "metric", "20");
    writeFileSync(join(dir, "dataplane.conf"), conf(STALE));
    // without CAP_NET_ADMIN the kernel refuses the delete (EPERM)
    const cmd = ["setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin", LOADER];
    loader = await startLoaderIn(NS, [...cmd, "--config", join(dir, "dataplane.conf")], {
      log: () => log,
      onLog: (c) => (log += c),
      ready: () => metricsUp(metrics),
    });
    expect(present("10.88.30.0/24")).toBe(true);
    expect(metrics().get("router_dataplane_stale_route_failures_total")).toBeGreaterThanOrEqual(1);
    expect(removedTotal()).toBe(0);
    expect(events().find((e) => e.event === "stale_route_failed")?.msg).toMatch(
      /^cannot remove the IPv4 route 10\.88\.30\.0\/24 via 10\.77\.0\.2 dev veth0 \(protocol 12, metric 20\) .*: Operation not permitted/,
    );
    expect(loader.exitCode).toBe(null);
  }, 60_000);
});
