/**
 * Scans for the router failing closed: its management ports (Talos API, trustd, Kubernetes API, kubelet, etcd,
 * the loader's metrics) from the WAN and from every zone that is not a management zone, and the inside hosts
 * straight from the internet (the hostile neighbour routes the site's prefixes to the router). Used while the
 * node is up but the data-plane loader is not (at boot, and after the loader is killed).
 */
import { familyOf } from "../../../components/site/ip";
import { ETCD_PORTS, KUBELET_PORT, TALOS_API_PORTS } from "../../../components/talos-node/firewall";
import { KUBE_API_PORT } from "../../../components/talos-node/machine-config";
import type { Appliance, Host } from "./appliance";
import { hostAddresses } from "./clients";
import { probe, type ProbeSpec } from "./checks";
import { internetSource } from "./internet";

export interface ScanRow {
  /** Where the probe came from: "internet", or a zone. */
  from: string;
  src: string;
  dst: string;
  port: number;
  /** Whose service it was meant for: "router", or an inside host's name. */
  target: string;
  observed: string;
  answerer?: string;
  /** The prober's own words. */
  raw?: string;
}

/** Every management port of the node, the loader's metrics included. */
export function managementPorts(app: Appliance): number[] {
  const [lo, hi] = ETCD_PORTS.split("-").map(Number);
  const etcd = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  return [...TALOS_API_PORTS, KUBE_API_PORT, KUBELET_PORT, ...etcd, app.site.dataplane.metricsPort];
}

/** The first main client of a zone with probe sources in a family. */
function zoneHost(app: Appliance, zone: string, family: 4 | 6): Host | undefined {
  return app.plan.segments
    .filter((s) => s.zone === zone)
    .map((s) => app.client(s.name))
    .find((h) => (family === 4 ? h.sources4 : h.sources6).length);
}

async function run(
  app: Appliance,
  ns: string,
  from: string,
  specs: (ProbeSpec & { target: string })[],
): Promise<ScanRow[]> {
  const r = await probe(app, ns, specs);
  return specs.map((s) => {
    const res = r.get(s.id)!;
    return {
      from,
      src: s.src!,
      dst: s.dst,
      port: s.port!,
      target: s.target,
      observed: res.observed,
      answerer: res.answerer,
    };
  });
}

/** A TCP probe from the internet's n-th source of the destination's family. */
function fromInternet(n: number, dst: string, port: number, target: string): ProbeSpec & { target: string } {
  const src = internetSource(familyOf(dst) as 4 | 6, n % 40);
  return { id: `i${n}`, proto: "tcp", dst, port, src, target, timeoutMs: 1500 };
}

/** The management ports from the internet (every WAN address) and from every zone (its gateways, the management address). */
export async function scanManagement(app: Appliance): Promise<ScanRow[]> {
  const ports = managementPorts(app);
  const inet: (ProbeSpec & { target: string })[] = [];
  for (const w of app.wans)
    for (const dst of [w.addr4, w.addr6].filter((x): x is string => !!x))
      for (const port of ports) inet.push(fromInternet(inet.length, dst, port, "router"));
  const runs = [run(app, app.inet, "internet", inet)];
  for (const z of app.site.zones.filter((x) => !app.plan.wans.some((w) => w.zone === x.name))) {
    for (const family of [4, 6] as const) {
      const h = zoneHost(app, z.name, family);
      if (!h) continue;
      const gw = family === 4 ? h.segment.ipv4!.gateway : h.segment.ipv6?.gateway;
      const dsts = [
        ...new Set([gw, app.plan.managementAddress].filter((a): a is string => !!a && familyOf(a) === family)),
      ];
      const pool = family === 4 ? h.sources4 : h.sources6;
      const specs = dsts.flatMap((dst, i) =>
        ports.map((port, j) => ({
          id: `${i}-${j}`,
          proto: "tcp" as const,
          dst,
          port,
          src: pool[(i * ports.length + j) % pool.length],
          target: "router",
          timeoutMs: 1500,
        })),
      );
      runs.push(run(app, h.ns, z.name, specs));
    }
  }
  return (await Promise.all(runs)).flat();
}

/**
 * Every inside host's addresses (those it holds now, and one probe source of each family) straight from the
 * internet, at the forwards' ports and one no rule names.
 */
export async function scanInside(app: Appliance, freePort: number): Promise<ScanRow[]> {
  const ports = [
    ...new Set([
      freePort,
      ...app.site.portForwards.map((pf) => Number(String(pf.port).split("-")[0])),
      ...app.site.portForwards.flatMap((pf) => (pf.toPort ? [pf.toPort] : [])),
    ]),
  ];
  const specs: (ProbeSpec & { target: string })[] = [];
  for (const h of app.hosts)
    for (const dst of [...hostAddresses(h), ...h.sources4.slice(0, 1), ...h.sources6.slice(0, 1)])
      for (const port of ports) specs.push(fromInternet(specs.length, dst, port, h.name));
  return run(app, app.inet, "internet", specs);
}

/** One line per row, for a failure message. */
export function formatRows(rows: ScanRow[]): string {
  return rows
    .map((r) => `${r.from} ${r.src} → ${r.dst}:${r.port} (${r.target}): ${r.observed}${r.raw ? ` (${r.raw})` : ""}`)
    .join("\n");
}
