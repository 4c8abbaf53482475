/**
 * Knot: the authoritative server of the site's domain and of every segment's reverse zones, on the node's
 * loopback. Unbound stubs to it; Kea's DHCP-DDNS daemon sends it TSIG-signed RFC 2136 updates (the key is
 * included from the stack's Secret, never rendered here).
 *
 * Static and dynamic data: the rendered zone file is the static base and always carries SOA serial 1; Knot
 * keeps every dynamic update as a changeset in its journal (`journal-content: changes`) on the host and never
 * writes the zone file (`zonefile-sync: -1`). At every start it loads the zone file whole and replays the
 * journal's changesets from serial 1 on top (knot 3.2 src/knot/zone/zone-load.c, zone_load_journal), so a
 * changed static base keeps every lease's name. `difference-no-serial` would not: it diffs the journal's
 * contents against the zone file and drops every dynamic record (seen on knot 3.2.6). A config change rolls
 * the pod, so the zone file never changes under a running server. Pure.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { PATHS, PORTS, TSIG_KEY_NAME, type AuthZonePlan, type DnsPlan, type RecordPlan } from "./plan";

/** File name of a zone file (also its ConfigMap key). */
export function zoneFileName(zone: string): string {
  return `${zone}.zone`;
}

/** Where the Secret's Knot key file is mounted. */
export const KNOT_TSIG_FILE = `${PATHS.secrets}/tsig.knot.conf`;
/** Zone files inside the container: beside the other configuration files (ConfigMap keys cannot hold a /). */
export const ZONES_DIR = PATHS.config;

/**
 * Record types D2 writes (RFC 4701 DHCID beside the address records and pointers), and ANY: its removal of a
 * released name deletes every RRset left at the name (RFC 2136 §2.5.3), which Knot refuses unless ANY is listed.
 */
const UPDATE_TYPES = ["A", "AAAA", "DHCID", "PTR", "ANY"];

export function renderKnotConf(site: Site, dns: DnsPlan): string {
  return [
    `# knot of site ${site.site.name}: authoritative for ${dns.domain} and the segments' reverse zones (rendered).`,
    "server:",
    `    listen: 127.0.0.1@${PORTS.authoritative}`,
    "    rundir: /run/knot",
    '    identity: ""',
    '    version: ""',
    "log:",
    "  - target: stdout",
    "    any: info",
    "database:",
    `    storage: ${PATHS.knotDb}`,
    // The journal holds every dynamic name: bounded, and far above what a site's leases need.
    "    journal-db-max-size: 256M",
    `include: ${KNOT_TSIG_FILE}`,
    "acl:",
    "  - id: ddns",
    "    address: 127.0.0.1",
    `    key: ${TSIG_KEY_NAME}`,
    "    action: update",
    `    update-type: [${UPDATE_TYPES.join(", ")}]`,
    "template:",
    "  - id: default",
    `    storage: ${ZONES_DIR}`,
    '    file: "%s.zone"',
    "    zonefile-sync: -1",
    "    zonefile-load: whole",
    "    journal-content: changes",
    "    journal-max-usage: 64M",
    "    semantic-checks: on",
    "    acl: ddns",
    "zone:",
    ...dns.authZones.map((z) => `  - domain: ${z.name}`),
    "",
  ].join("\n");
}

function recordOrder(a: RecordPlan, b: RecordPlan): number {
  return a.name.localeCompare(b.name) || a.type.localeCompare(b.type) || a.data.localeCompare(b.data);
}

/** One zone file: SOA (serial 1, see the header), NS, then the records sorted by owner, type and data. */
export function renderZoneFile(plan: SitePlan, dns: DnsPlan, zone: AuthZonePlan, ttl: number): string {
  const ns = `${plan.fqdn}.`;
  const lines = [
    `; ${zone.name}: static records of site ${plan.siteName} (rendered); dynamic names live in Knot's journal.`,
    `$ORIGIN ${zone.name}.`,
    `$TTL ${ttl}`,
    `@ ${ttl} IN SOA ${ns} hostmaster.${dns.domain}. 1 3600 600 604800 60`,
    `@ ${ttl} IN NS ${ns}`,
    ...[...zone.records].sort(recordOrder).map((r) => `${r.name}. ${r.ttl} IN ${r.type} ${r.data}`),
    "",
  ];
  return lines.join("\n");
}

/** Every zone file by file name. */
export function renderZoneFiles(site: Site, plan: SitePlan, dns: DnsPlan): Map<string, string> {
  return new Map(dns.authZones.map((z) => [zoneFileName(z.name), renderZoneFile(plan, dns, z, site.dns.ttl)]));
}

/** The Knot key file (from the Secret): the TSIG key the updates must be signed with. */
export function renderKnotTsig(secret: string): string {
  return ["key:", `  - id: ${TSIG_KEY_NAME}`, "    algorithm: hmac-sha256", `    secret: ${secret}`, ""].join("\n");
}
