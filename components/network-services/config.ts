/**
 * Configuration files of the shared network services of a router: Kea DHCPv4 and DHCPv6 (one server each, a
 * subnet per segment), radvd, chrony (NTP for the segments whose zone has it), Avahi (one reflector per mDNS
 * reflection group); BIRD's for OSPF is in bird.ts. Pure and deterministic; each file is checked by the real daemon's
 * validator in the tests.
 */
import type { Site } from "../site/schema";
import type { SegmentPlan, SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import { keaSubnet4, keaSubnet6, ntpAllows, radvdInterface, servesDns } from "../vlan-segment/services";
import { keaDdnsGlobal, keaDdnsSubnet } from "../dns-stack/ddns";

/** Paths inside the service containers (host paths are bind-mounted there; see k8s.ts). */
export const KEA_STATE_DIR = "/var/lib/kea";
export const KEA_RUN_DIR = "/run/kea";

function json(v: unknown): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}

/**
 * Dynamic DNS (the DNS stack's D2, dns-stack/ddns.ts) is on when the router answers DNS in some segment's
 * zone: those segments' clients get names, the others none (Kea would send updates for every subnet).
 */
function ddnsOn(site: Site, plan: SitePlan): boolean {
  return plan.segments.some((s) => servesDns(site, s));
}

function ddnsSubnet(site: Site, plan: SitePlan, seg: SegmentPlan): Record<string, unknown> {
  if (!ddnsOn(site, plan)) return {};
  return servesDns(site, seg) ? keaDdnsSubnet(seg) : { "ddns-send-updates": false };
}

function keaLoggers(name: string) {
  return [{ name, output_options: [{ output: "stdout", pattern: "%-5p %m\n" }], severity: "INFO", debuglevel: 0 }];
}

/** True when some segment hands out IPv4 leases (the DHCPv4 server is deployed). */
export function usesDhcpv4(plan: SitePlan): boolean {
  return plan.segments.some((s) => s.ipv4 && s.dhcp.enabled);
}

export function renderKea4(site: Site, plan: SitePlan, model: PolicyModel): string {
  const segments = plan.segments.filter((s) => s.ipv4 && s.dhcp.enabled);
  return json({
    Dhcp4: {
      "interfaces-config": {
        interfaces: segments.map((s) => s.link),
        // Raw sockets: clients without an address yet must be answered on the right VLAN.
        "dhcp-socket-type": "raw",
        "service-sockets-max-retries": 60,
        "service-sockets-retry-wait-time": 5000,
      },
      "control-socket": { "socket-type": "unix", "socket-name": `${KEA_RUN_DIR}/kea4-ctrl-socket` },
      // Every lease is appended to the file before the client hears of it, so a restart never loses one.
      "lease-database": {
        type: "memfile",
        persist: true,
        name: `${KEA_STATE_DIR}/kea-leases4.csv`,
        "lfc-interval": 3600,
      },
      "expired-leases-processing": {
        "reclaim-timer-wait-time": 10,
        "hold-reclaimed-time": 3600,
        "flush-reclaimed-timer-wait-time": 25,
      },
      authoritative: true,
      "match-client-id": false,
      "calculate-tee-times": true,
      ...(ddnsOn(site, plan) ? keaDdnsGlobal() : {}),
      subnet4: segments.map((s) => ({ ...keaSubnet4(site, plan, model, s)!, ...ddnsSubnet(site, plan, s) })),
      loggers: keaLoggers("kea-dhcp4"),
    },
  });
}

export function renderKea6(site: Site, plan: SitePlan): string {
  const subnets = plan.segments.flatMap((s) => {
    const subnet = keaSubnet6(site, plan, s);
    return subnet ? [{ ...subnet, ...ddnsSubnet(site, plan, s) }] : [];
  });
  return json({
    Dhcp6: {
      "interfaces-config": {
        interfaces: subnets.map((s) => String(s.interface)),
        // A link-local address is tentative for a second or two after the link comes up (DAD): keep trying.
        "service-sockets-max-retries": 60,
        "service-sockets-retry-wait-time": 5000,
      },
      "control-socket": { "socket-type": "unix", "socket-name": `${KEA_RUN_DIR}/kea6-ctrl-socket` },
      "data-directory": KEA_STATE_DIR,
      "server-id": { type: "LLT", persist: true },
      "lease-database": {
        type: "memfile",
        persist: true,
        name: `${KEA_STATE_DIR}/kea-leases6.csv`,
        "lfc-interval": 3600,
      },
      "expired-leases-processing": {
        "reclaim-timer-wait-time": 10,
        "hold-reclaimed-time": 3600,
        "flush-reclaimed-timer-wait-time": 25,
      },
      ...(ddnsOn(site, plan) ? keaDdnsGlobal() : {}),
      subnet6: subnets,
      loggers: keaLoggers("kea-dhcp6"),
    },
  });
}

/** True when the DHCPv6 server serves some segment, stateful or stateless (it is then deployed). */
export function usesDhcpv6(site: Site, plan: SitePlan): boolean {
  return plan.segments.some((s) => keaSubnet6(site, plan, s) !== undefined);
}

/** radvd.conf, or undefined when no segment sends router advertisements (radvd is then not deployed). */
export function renderRadvd(site: Site, plan: SitePlan): string | undefined {
  const blocks = plan.segments.map((s) => radvdInterface(site, s)).filter((b): b is string => !!b);
  if (blocks.length === 0) return undefined;
  return [
    `# radvd of site ${site.site.name}: router advertisements per segment (rendered)`,
    "",
    ...blocks.map((b) => `${b}\n`),
  ].join("\n");
}

export function renderChrony(site: Site, plan: SitePlan, model: PolicyModel): string {
  const allows = plan.segments.flatMap((s) => ntpAllows(model, s));
  return [
    `# chrony of site ${site.site.name}: NTP server for the segments (rendered).`,
    "# Talos keeps the system clock; chronyd runs with -x and only serves it.",
    ...site.ntp.servers.map((s) => `server ${s} iburst`),
    "driftfile /var/lib/chrony/chrony.drift",
    "makestep 1.0 3",
    "# keep answering (at a high stratum) when every upstream is unreachable",
    "local stratum 10 orphan",
    ...allows.map((a) => `allow ${a}`),
    "# no command port: nothing to manage remotely",
    "cmdport 0",
    "",
  ].join("\n");
}

/** One Avahi reflector per reflection group: mDNS flows only among that group's segments. */
export function renderAvahi(site: Site, plan: SitePlan, group: string): string {
  const g = site.mdns.reflect.find((x) => x.name === group);
  if (!g) throw new Error(`no mDNS reflection group ${group}`);
  const links = plan.segments.filter((s) => g.zones.includes(s.zone)).map((s) => s.link);
  return [
    `# avahi-daemon of site ${site.site.name}: mDNS reflection group ${group} (${g.zones.join(", ")})`,
    "[server]",
    `host-name=${plan.hostname}`,
    "use-ipv4=yes",
    "use-ipv6=yes",
    `allow-interfaces=${links.join(",")}`,
    "enable-dbus=no",
    "ratelimit-interval-usec=1000000",
    "ratelimit-burst=1000",
    "",
    "[wide-area]",
    "enable-wide-area=no",
    "",
    "[publish]",
    "disable-publishing=yes",
    "disable-user-service-publishing=yes",
    "",
    "[reflector]",
    "enable-reflector=yes",
    "reflect-ipv=no",
    "",
    "[rlimits]",
    "rlimit-nproc=3",
    "",
  ].join("\n");
}
