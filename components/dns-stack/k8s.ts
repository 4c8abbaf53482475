/**
 * Kubernetes objects of the DNS stack: each daemon's configuration as its own immutable ConfigMap (named by its
 * content, components/daemonset.ts), the Secret with what must not be
 * rendered (the TSIG key in Knot's and D2's forms, the DoT/DoH certificate and key; the component fills it from
 * Pulumi secrets), and one host-network DaemonSet per daemon from the DNS image — each with only the
 * capabilities it needs (dnsdist binds the privileged DNS ports; the feeds job, which parses what the internet
 * sends, and the stats collector run unprivileged) and its state on host paths (Knot's journal, Unbound's trust
 * anchor, the lists and their cache, the query log), which survive restarts and Talos upgrades. Pure.
 */
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { daemonConfigMap, hostDaemonSet, type DaemonVolume, type HostDaemon, type Named } from "../daemonset";
import { PATHS, PORTS, type DnsPlan } from "./plan";
import { renderUnbound, ROOT_ANCHOR, UNBOUND_CONTROL } from "./unbound";
import { renderKnotConf, renderZoneFiles } from "./knot";
import { renderDnsdist } from "./dnsdist";
import { renderD2 } from "./ddns";
import { renderFeedsConf, renderStatsConf } from "./jobs";

export const DNS_SECRET = "dns-secrets";
/** The unprivileged user of the feeds job and the stats collector. */
export const NOBODY = 65534;
/** Root's copy of the DNSSEC root trust anchor in the image (Debian's dns-root-data). */
export const IMAGE_ROOT_ANCHOR = "/usr/share/dns/root.key";

/** Every rendered file of the stack by ConfigMap key (also the artifact names under dns/). */
export function dnsConfigs(site: Site, plan: SitePlan, dns: DnsPlan): Map<string, string> {
  const files = new Map<string, string>();
  files.set("dnsdist.conf", renderDnsdist(site, dns));
  files.set("unbound.conf", renderUnbound(site, dns));
  files.set("knot.conf", renderKnotConf(site, dns));
  for (const [name, text] of renderZoneFiles(site, plan, dns)) files.set(name, text);
  files.set("kea-dhcp-ddns.json", renderD2(site, dns));
  files.set("stats.conf", renderStatsConf(site, dns));
  if (dns.lists.some((l) => l.feed)) files.set("feeds.conf", renderFeedsConf(site, dns));
  return files;
}

/** Keys of the Secret: TLS only when some zone has encrypted DNS. */
export function secretKeys(dns: DnsPlan): string[] {
  return ["tsig-keys.json", "tsig.knot.conf", ...(dns.zones.some((z) => z.encrypted) ? ["tls.crt", "tls.key"] : [])];
}

const sh = (script: string) => ["/bin/sh", "-c", script];
const C = PATHS.config;
const lists = (readOnly: boolean): DaemonVolume => ({
  name: "lists",
  mountPath: PATHS.lists,
  readOnly,
  source: { hostPath: PATHS.lists },
});
const secret = (items: string[]): DaemonVolume => ({
  name: "secrets",
  mountPath: PATHS.secrets,
  readOnly: true,
  source: { secret: DNS_SECRET, items },
});
const run = (path: string): DaemonVolume => ({ name: "run", mountPath: path, source: { memory: "16Mi" } });
/** Owns host directories for the unprivileged user before its daemon starts (CAP_CHOWN only). */
const own = (dirs: string[]) => ({
  command: sh(`mkdir -p ${dirs.join(" ")} && chown ${NOBODY}:${NOBODY} ${dirs.join(" ")}`),
  capabilities: ["CHOWN"],
});

type Spec = Omit<HostDaemon, "configDir">;

function front(dns: DnsPlan): Spec {
  const tls = dns.zones.some((z) => z.encrypted);
  return {
    name: "dns-front",
    configKeys: ["dnsdist.conf"],
    command: ["dnsdist", "--supervised", "--disable-syslog", "-C", `${C}/dnsdist.conf`],
    capabilities: ["NET_BIND_SERVICE"],
    resources: { cpu: "100m", memory: "64Mi", cpuLimit: "2", memoryLimit: "256Mi" },
    liveness: ["wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${PORTS.dnsdistWeb}/metrics`],
    volumes: [...(tls ? [secret(["tls.crt", "tls.key"])] : []), lists(true)],
  };
}

function resolver(): Spec {
  return {
    name: "dns-resolver",
    configKeys: ["unbound.conf"],
    // The root trust anchor lives in state (Unbound keeps it current, RFC 5011); the image's copy seeds it.
    command: sh(
      `[ -s ${ROOT_ANCHOR} ] || cp ${IMAGE_ROOT_ANCHOR} ${ROOT_ANCHOR}; exec unbound -d -p -c ${C}/unbound.conf`,
    ),
    capabilities: [],
    resources: { cpu: "100m", memory: "64Mi", cpuLimit: "2", memoryLimit: "192Mi" },
    liveness: ["unbound-control", "-c", `${C}/unbound.conf`, "-s", UNBOUND_CONTROL, "status"],
    volumes: [
      { name: "state", mountPath: PATHS.unboundState, source: { hostPath: PATHS.unboundState } },
      run("/run/unbound"),
    ],
  };
}

function authoritative(plan: DnsPlan): Spec {
  return {
    name: "dns-auth",
    configKeys: ["knot.conf", ...plan.authZones.map((z) => `${z.name}.zone`)],
    command: ["knotd", "-c", `${C}/knot.conf`],
    capabilities: [],
    resources: { cpu: "20m", memory: "32Mi", cpuLimit: "500m", memoryLimit: "128Mi" },
    liveness: ["knotc", "-c", `${C}/knot.conf`, "status"],
    volumes: [
      secret(["tsig.knot.conf"]),
      { name: "state", mountPath: PATHS.knotDb, source: { hostPath: PATHS.knotDb } },
      run("/run/knot"),
    ],
  };
}

function ddns(): Spec {
  return {
    name: "dns-ddns",
    configKeys: ["kea-dhcp-ddns.json"],
    command: ["kea-dhcp-ddns", "-c", `${C}/kea-dhcp-ddns.json`],
    capabilities: [],
    resources: { cpu: "10m", memory: "16Mi", cpuLimit: "200m", memoryLimit: "64Mi" },
    liveness: sh(
      `printf '{"command": "status-get"}' | socat -t 2 - UNIX-CONNECT:/run/kea/kea-ddns-ctrl-socket | grep -q '"result": 0'`,
    ),
    volumes: [secret(["tsig-keys.json"]), run("/run/kea")],
    env: { KEA_PIDFILE_DIR: "/run/kea", KEA_LOCKFILE_DIR: "/run/kea" },
  };
}

function stats(dns: DnsPlan): Spec {
  return {
    name: "dns-stats",
    configKeys: ["stats.conf"],
    command: ["router-dns-stats", "-c", `${C}/stats.conf`],
    capabilities: [],
    user: NOBODY,
    resources: { cpu: "20m", memory: "16Mi", cpuLimit: "500m", memoryLimit: "64Mi" },
    liveness: ["wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${dns.metricsPort}/metrics`],
    volumes: [lists(true), { name: "querylog", mountPath: PATHS.queryLog, source: { hostPath: PATHS.queryLog } }],
    init: own([PATHS.queryLog]),
  };
}

function feeds(): Spec {
  return {
    name: "dns-feeds",
    configKeys: ["feeds.conf"],
    command: ["dns-feeds", `${C}/feeds.conf`],
    capabilities: [],
    user: NOBODY,
    resources: { cpu: "10m", memory: "32Mi", cpuLimit: "1", memoryLimit: "256Mi" },
    // The job touches its heartbeat every loop (at most a minute apart).
    liveness: sh(`test -n "$(find ${PATHS.lists}/.feeds-alive -mmin -5 2>/dev/null)"`),
    volumes: [lists(false)],
    init: own([PATHS.lists]),
  };
}

/** The stack's daemons (the feeds job only when some list is fetched). */
export function dnsDaemons(dns: DnsPlan, configs: Map<string, string>): HostDaemon[] {
  const specs = [front(dns), resolver(), authoritative(dns), ddns(), stats(dns)];
  if (configs.has("feeds.conf")) specs.push(feeds());
  return specs.map((s) => ({ ...s, configDir: C }));
}

/**
 * Each daemon's ConfigMap, then the DaemonSets (the Secret is the component's: its data are secrets). `image` is
 * placed as given (the digest-pinned reference, known once the image is pushed).
 */
export function renderDnsObjects(
  site: Site,
  plan: SitePlan,
  dns: DnsPlan,
  image: unknown,
): (Named<IConfigMap> | Named<IDaemonSet>)[] {
  const configs = dnsConfigs(site, plan, dns);
  const daemons = dnsDaemons(dns, configs);
  return [...daemons.map((d) => daemonConfigMap(d, configs)), ...daemons.map((d) => hostDaemonSet(d, image, configs))];
}
