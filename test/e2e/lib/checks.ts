/**
 * Observations on a running virtual appliance: probes from one namespace, the loader's metrics, the router's
 * listening sockets, Kea's lease files, the router's connection-tracking table.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { familyOf } from "../../../components/site/ip";
import type { Appliance } from "./appliance";
import { classify, type Observed } from "./matrix";

export interface ProbeSpec {
  id: string;
  proto: "tcp" | "udp" | "ntp" | "icmp";
  dst: string;
  port?: number;
  src?: string;
  timeoutMs?: number;
}

export interface ProbeResult {
  observed: Observed;
  detail: string;
  /** Name of the host whose server answered. */
  answerer?: string;
  /** Source address the answering server saw. */
  peer?: string;
  /** Start time (ms since the epoch) when probed with clock. */
  at?: number;
  /** Time the outcome was known (ms since the epoch) when probed with clock. */
  end?: number;
  raw: string;
}

/** Runs probes from a namespace concurrently; results by probe id. */
export async function probe(
  app: Appliance,
  ns: string,
  specs: ProbeSpec[],
  opts: { gapUs?: number; clock?: boolean; parallel?: number } = {},
): Promise<Map<string, ProbeResult>> {
  const input = specs
    .map((s) => `${s.id} ${s.proto} ${s.dst} ${s.port ?? 0} ${s.src ?? "-"} ${s.timeoutMs ?? 1500}`)
    .join("\n");
  const args = ["probe", "--parallel", String(opts.parallel ?? 48), "--gap-us", String(opts.gapUs ?? 4000)];
  if (opts.clock) args.push("--clock");
  const r = await app.run(ns, [app.netprobe, ...args], { input: `${input}\n`, timeoutMs: 300_000 });
  const out = new Map<string, ProbeResult>();
  for (const line of r.stdout.split("\n").filter(Boolean)) {
    const parts = line.split(" ");
    const id = parts.shift()!;
    const at = opts.clock ? Number(parts.shift()) : undefined;
    const end = opts.clock ? Number(parts.shift()) : undefined;
    const raw = parts.join(" ");
    out.set(id, { ...classify(raw), at, end, raw });
  }
  for (const s of specs)
    if (!out.has(s.id)) out.set(s.id, { observed: "other", detail: "no result", raw: "", at: undefined });
  return out;
}

/** The loader's Prometheus metrics, read from a management client like an operator's scraper. */
export async function metrics(app: Appliance): Promise<Map<string, number>> {
  const mgmt = app.client(app.plan.managementSegment);
  const addr = app.plan.managementAddress;
  const url =
    familyOf(addr) === 6
      ? `http://[${addr}]:${app.site.dataplane.metricsPort}/metrics`
      : `http://${addr}:${app.site.dataplane.metricsPort}/metrics`;
  const r = await app.run(mgmt.ns, ["curl", "-sf", "--max-time", "5", url]);
  const out = new Map<string, number>();
  for (const line of r.stdout.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

export interface Socket {
  proto: "tcp" | "udp";
  address: string;
  port: number;
  /** Link a link-local socket is scoped to. */
  scope?: string;
  process: string;
}

/** Every TCP and UDP socket listening in the router namespace (`ss -lntupH`). */
export function listening(app: Appliance): Socket[] {
  const out: Socket[] = [];
  for (const line of app.exec(app.router, ["ss", "-lntupH"]).stdout.split("\n").filter(Boolean)) {
    const cols = line.trim().split(/\s+/);
    const proto = cols[0] as "tcp" | "udp";
    const local = cols[4];
    const i = local.lastIndexOf(":");
    let address = local.slice(0, i).replace(/^\[|\]$/g, "");
    let scope: string | undefined;
    const pct = address.indexOf("%");
    if (pct >= 0) {
      scope = address.slice(pct + 1).replace(/\]$/, "");
      address = address.slice(0, pct).replace(/^\[|\]$/g, "");
    }
    const proc = /users:\(\("([^"]+)"/.exec(line)?.[1] ?? "?";
    out.push({ proto, address, port: Number(local.slice(i + 1)), scope, process: proc });
  }
  return out;
}

export interface LeaseRow {
  address: string;
  hwaddr: string;
  duid?: string;
  state: number;
}

/** Rows of a Kea memfile (latest row per address wins, as Kea reads it). */
export function keaLeases(app: Appliance, family: 4 | 6): LeaseRow[] {
  const dir = keaStateDir(app);
  const file = join(dir, family === 4 ? "kea-leases4.csv" : "kea-leases6.csv");
  if (!existsSync(file)) return [];
  const [header, ...rows] = readFileSync(file, "utf8").split("\n").filter(Boolean);
  const cols = header.split(",");
  const byAddr = new Map<string, LeaseRow>();
  for (const r of rows) {
    const v = r.split(",");
    const get = (k: string) => v[cols.indexOf(k)];
    byAddr.set(get("address"), {
      address: get("address"),
      hwaddr: get("hwaddr"),
      duid: family === 6 ? get("duid") : undefined,
      state: Number(get("state")),
    });
  }
  return [...byAddr.values()];
}

/** The host directory behind the Kea pods' state volume. */
export function keaStateDir(app: Appliance): string {
  const pod = app.pods.spec("kea-dhcp4");
  const v = pod.volumes.find((x) => x.source.kind === "hostPath");
  if (!v || v.source.kind !== "hostPath") throw new Error("kea-dhcp4 has no hostPath state volume");
  return app.pods.hostPath(v.source.path);
}

/** Connection-tracking entries of the router (conntrack -L), as text lines. */
export function conntrack(app: Appliance, family: 4 | 6): string[] {
  return app
    .exec(app.router, ["conntrack", "-L", "-f", family === 4 ? "ipv4" : "ipv6"], { allowFail: true })
    .stdout.split("\n")
    .filter(Boolean);
}
