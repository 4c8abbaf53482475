/**
 * Cross-field rules of the site model: what zod cannot see from one field alone. Each rule takes the parts of
 * the site that parsed (partial.ts: what failed to parse is absent, its own problems are already reported) and
 * returns issues with config key paths; a rule stays silent only where a part that failed could change its
 * answer, so one run reports every problem. Segments: validate-segments.ts; network policy: validate-policy.ts.
 */
import { WanProbe, type Link } from "./schema";
import { configPath, type SiteIssue } from "./issues";
import { contains, familyOf, nthAddress, parsePrefix } from "./ip";
import { durationSeconds } from "./duration";
import { validatePolicy } from "./validate-policy";
import { checkOverlaps, checkSegments, dupes } from "./validate-segments";
import { validateDns } from "./validate-dns";
import { validateObservability } from "./validate-observability";
import { validateIds } from "./validate-ids";
import { allNames, droppedElements, isIncomplete, knownNames, type PartialSite } from "./partial";
import { indexed } from "./salvage";
import { segmentGateway4, segmentGateway6, wanZone } from "./plan";
import { zoneSides } from "./zones";

export type { Indexed, PartialSite } from "./partial";

type Issues = SiteIssue[];

function checkNics(s: PartialSite, out: Issues): void {
  if (!s.node) return;
  const nics = indexed(s.node.nics);
  for (const [alias, idx] of dupes(nics, (n) => n.alias))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("node", ["nics", i, "alias"]),
        message: `duplicate NIC alias "${alias}" (also at nics[${idx[0]}]; allowed: each alias once)`,
      });
  for (const [mac, idx] of dupes(nics, (n) => n.mac))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("node", ["nics", i, "mac"]),
        message: `duplicate MAC ${mac} (also at nics[${idx[0]}]; allowed: each NIC once)`,
      });
}

/**
 * The NIC aliases links may use: every alias the config gives, also of a NIC (or a node) that failed to parse
 * for another reason. Undefined when there is no list of NICs to compare with.
 */
function nicAliases(s: PartialSite): Set<string> | undefined {
  const nics = (s.raw.node as { nics?: unknown } | undefined)?.nics;
  if (!Array.isArray(nics)) return undefined;
  return new Set(nics.flatMap((n) => (typeof n?.alias === "string" ? [n.alias as string] : [])));
}

function checkBond(
  s: PartialSite,
  index: number,
  bond: NonNullable<Link["bond"]>,
  members: Map<string, number>,
  out: Issues,
): void {
  const aliases = nicAliases(s);
  bond.members.forEach((m, mi) => {
    if (aliases && !aliases.has(m))
      out.push({
        path: configPath("links", [index, "bond", "members", mi]),
        message: `"${m}" is not a NIC alias (allowed: ${[...aliases].join(", ") || "aliases from router:node.nics"})`,
      });
    if (members.has(m))
      out.push({
        path: configPath("links", [index, "bond", "members", mi]),
        message: `"${m}" is already a member of links[${members.get(m)}] (allowed: a NIC in one bond only)`,
      });
    members.set(m, index);
  });
}

/** A static WAN address must be a host of its prefix; the gateway must be another host on it. */
function checkStaticWan(
  index: number,
  fam: "ipv4" | "ipv6",
  cfg: { address: string; gateway: string },
  out: Issues,
): void {
  const at = (f: string) => configPath("links", [index, fam, f]);
  const addr = cfg.address.split("/")[0];
  const length = Number(cfg.address.split("/")[1]);
  const subnet = `${nthAddress(cfg.address, 0)}/${length}`;
  // IPv4: the network and broadcast addresses, except on /31 and /32 (RFC 3021); IPv6: the subnet-router anycast
  // address (RFC 4291 §2.6.1), except on /127 and /128 (RFC 6164).
  const special = (a: string): string | undefined => {
    if (fam === "ipv4" ? length >= 31 : length >= 127) return undefined;
    if (a === nthAddress(subnet, 0))
      return fam === "ipv4" ? "the network address" : "the subnet-router anycast address";
    if (fam === "ipv4" && a === nthAddress(subnet, -1)) return "the broadcast address";
    return undefined;
  };
  const hosts =
    fam === "ipv4" && length < 31 ? `${nthAddress(subnet, 1)}–${nthAddress(subnet, -2)}` : `a host of ${subnet}`;
  const what = special(addr);
  if (what)
    out.push({
      path: at("address"),
      message: `${addr} is ${what} of ${subnet}, which no host may use (allowed: a host address, ${hosts}, with the prefix length)`,
    });
  if (cfg.gateway === addr)
    out.push({
      path: at("gateway"),
      message: `${cfg.gateway} is the router's own address on this WAN, so the default route would point at itself (allowed: the upstream router's address)`,
    });
  else if (!contains(cfg.address, cfg.gateway) && !(fam === "ipv6" && cfg.gateway.startsWith("fe80:")))
    out.push({
      path: at("gateway"),
      message:
        fam === "ipv4"
          ? `${cfg.gateway} is outside ${cfg.address} (allowed: a gateway on the WAN subnet)`
          : `${cfg.gateway} is outside ${cfg.address} (allowed: a gateway on the WAN prefix, or link-local fe80::/10)`,
    });
  else if (special(cfg.gateway))
    out.push({
      path: at("gateway"),
      message: `${cfg.gateway} is ${special(cfg.gateway)} of ${subnet}, not a router (allowed: the upstream router's host address, ${hosts})`,
    });
}

function checkLinks(s: PartialSite, out: Issues): void {
  if (!s.links) return;
  const links = s.links;
  const aliases = nicAliases(s);
  for (const [name, idx] of dupes(allNames(s, "links"), (l) => l.name))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("links", [i, "name"]),
        message: `duplicate link "${name}" (also at links[${idx[0]}]; allowed: each link once)`,
      });
  const members = new Map<string, number>();
  for (const { index, value: l } of links) {
    if (l.bond) {
      if (aliases?.has(l.name))
        out.push({
          path: configPath("links", [index, "name"]),
          message: `bond "${l.name}" has the name of a NIC alias (allowed: a new name, e.g. bond0)`,
        });
      checkBond(s, index, l.bond, members, out);
    } else if (aliases && !aliases.has(l.name)) {
      out.push({
        path: configPath("links", [index, "name"]),
        message: `"${l.name}" is neither a NIC alias nor a bond (allowed: ${
          [...aliases].join(", ") || "an alias from router:node.nics"
        }, or add a bond section)`,
      });
    }
    if (l.role === "trunk") {
      for (const f of ["ipv4", "ipv6", "priority", "zone"] as const)
        if (l[f] !== undefined)
          out.push({
            path: configPath("links", [index, f]),
            message: `a trunk carries only VLANs (allowed: ${f} on WAN links; give the segment the addresses)`,
          });
      continue;
    }
    if (l.ipv4?.mode === "none" && l.ipv6?.mode === "none")
      out.push({
        path: configPath("links", [index]),
        message: "WAN link has neither IPv4 nor IPv6 (allowed: at least one family not 'none')",
      });
    if (l.ipv4?.mode === "static") checkStaticWan(index, "ipv4", l.ipv4, out);
    if (l.ipv6?.mode === "static") checkStaticWan(index, "ipv6", l.ipv6, out);
  }
  for (const { index, value: l } of links)
    if (members.has(l.name) && !l.bond)
      out.push({
        path: configPath("links", [index, "name"]),
        message: `"${l.name}" is a member of bond links[${members.get(l.name)}] (allowed: use the bond, not its member)`,
      });
  const wans = links.filter((l) => l.value.role === "wan");
  if (wans.length === 0 && !droppedElements(s, "links").some((l) => l.role === "wan" || typeof l.role !== "string"))
    out.push({
      path: configPath("links"),
      message: "no WAN link (allowed: at least one link with role: wan)",
    });
  for (const [prio, idx] of dupes(wans, (l) => (l.priority === undefined ? undefined : String(l.priority))))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("links", [i, "priority"]),
        message: `WAN priority ${prio} is also used by links[${idx[0]}], so both default routes would get the same metric (allowed: a distinct priority per WAN)`,
      });
}

function checkZones(s: PartialSite, out: Issues): void {
  if (!s.zones) return;
  for (const [name, idx] of dupes(allNames(s, "zones"), (z) => z.name))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("zones", [i, "name"]),
        message: `duplicate zone "${name}" (also at zones[${idx[0]}]; allowed: each zone once)`,
      });
  if (!s.zones.some((z) => z.value.management) && !droppedElements(s, "zones").some((z) => z.management === true))
    out.push({
      path: configPath("zones"),
      message: "no management zone (allowed: at least one zone with management: true, or the router is unmanageable)",
    });
}

function checkWanZones(s: PartialSite, out: Issues): void {
  if (!s.links) return;
  const names = knownNames(s, "zones");
  const sides = zoneSides(s);
  for (const { index, value: l } of s.links) {
    if (l.role !== "wan") continue;
    const name = wanZone(l);
    const zone = s.zones?.find((z) => z.value.name === name)?.value;
    const at = configPath("links", [index, "zone"]);
    if (names && !names.has(name))
      out.push({
        path: at,
        message: `unknown zone "${name}" (allowed: ${(s.zones ?? []).map((z) => z.value.name).join(", ")})`,
      });
    else if (zone?.management)
      out.push({
        path: at,
        message: `WAN link in management zone "${name}" would expose the router's management to the internet (allowed: a non-management zone)`,
      });
    else if (sides.mixed.get(name) === "links" || sides.mixed.get(name) === "both") {
      const segments = (s.segments ?? []).filter((x) => x.value.zone === name).map((x) => x.value.name);
      out.push({
        path: at,
        message: `"${name}" is a LAN zone (segments ${segments.join(", ")}): the internet would be treated as that LAN (allowed: a zone without segments for WAN links, e.g. wan)`,
      });
    }
  }
}

function checkCluster(s: PartialSite, out: Issues): void {
  if (!s.cluster) return;
  for (const key of ["podCidrs", "serviceCidrs"] as const) {
    const fams = s.cluster[key].map((c) => familyOf(c));
    if (fams.length === 2 && fams[0] === fams[1])
      out.push({
        path: configPath("cluster", [key]),
        message: `two IPv${fams[0]} prefixes (allowed: one IPv4 and optionally one IPv6)`,
      });
  }
  if (isIncomplete(s, "cluster")) return;
  const pf = new Set(s.cluster.podCidrs.map(familyOf));
  const sf = new Set(s.cluster.serviceCidrs.map(familyOf));
  if ([...pf].sort().join() !== [...sf].sort().join())
    out.push({
      path: configPath("cluster", ["serviceCidrs"]),
      message: "address families differ from podCidrs (allowed: the same families for pods and services)",
    });
}

function checkManagement(s: PartialSite, out: Issues): void {
  // a missing router:node hides only the address check: the management segment is the segments' own matter
  if (!s.segments || !s.zones) return;
  const mgmtZones = new Set(s.zones.filter((z) => z.value.management).map((z) => z.value.name));
  for (const z of droppedElements(s, "zones"))
    if (z.management === true && typeof z.name === "string") mgmtZones.add(z.name);
  if (mgmtZones.size === 0) return; // reported by checkZones
  // A segment that failed to parse may be the management segment the rules below look for.
  const unsure = droppedElements(s, "segments").some((x) => typeof x.zone !== "string" || mgmtZones.has(x.zone));
  const mgmtSegs = s.segments.filter((x) => mgmtZones.has(x.value.zone));
  if (mgmtSegs.length === 0) {
    if (!unsure)
      out.push({
        path: configPath("segments"),
        message: `no segment is in a management zone (${[...mgmtZones].join(", ")}), so nothing could reach the router (allowed: at least one management segment)`,
      });
    return;
  }
  if (!s.node) return;
  const addrs = mgmtSegs
    .flatMap((x) => [segmentGateway4(x.value), segmentGateway6(x.value)])
    .filter((a): a is string => !!a);
  if (!addrs.includes(s.node.managementAddress) && !unsure)
    out.push({
      path: configPath("node", ["managementAddress"]),
      message: `${s.node.managementAddress} is not the router's address on a management segment (allowed: ${addrs.join(", ")})`,
    });
}

function checkTimeouts(s: PartialSite, out: Issues): void {
  if (!s.node) return;
  const tryS = durationSeconds(s.node.tryTimeout);
  if (tryS < 30 || tryS > 3600)
    out.push({
      path: configPath("node", ["tryTimeout"]),
      message: `${s.node.tryTimeout} (allowed: 30s to 1h; the health checks must finish inside the try window)`,
    });
  const health = durationSeconds(s.node.healthTimeout);
  if (health < 60 || health > 7200)
    out.push({
      path: configPath("node", ["healthTimeout"]),
      message: `${s.node.healthTimeout} (allowed: 1m to 2h)`,
    });
}

function checkDataplane(s: PartialSite, out: Issues): void {
  const dp = s.dataplane;
  if (!dp) return;
  const ext = dp.extension;
  const shipsExtension = ext.build || ext.image !== undefined;
  if (ext.build && ext.image !== undefined)
    out.push({
      path: configPath("dataplane", ["extension", "image"]),
      message: "is set while extension.build is true (allowed: build from ebpf/, or use a prebuilt image — not both)",
    });
  if (dp.enabled && !shipsExtension)
    out.push({
      path: configPath("dataplane", ["enabled"]),
      message:
        "the XDP guard needs the router-dataplane extension (allowed: extension.build: true, an extension.image, or enabled: false)",
    });
  if (dp.blockCountries.length > 0 && !dp.feeds.some((f) => f.kind === "geo"))
    out.push({
      path: configPath("dataplane", ["blockCountries"]),
      message:
        "no feed of kind geo maps addresses to countries (allowed: add a geo feed, or leave blockCountries empty)",
    });
  const feeds = indexed(dp.feeds);
  for (const [name, idx] of dupes(feeds, (f) => f.name))
    for (const i of idx.slice(1))
      out.push({
        path: configPath("dataplane", ["feeds", i, "name"]),
        message: `duplicate feed "${name}" (also at feeds[${idx[0]}]; allowed: each name once)`,
      });
}

/** The probe targets of a WAN that names none: the schema's defaults for WanProbe.targets. */
const DEFAULT_PROBE_TARGETS = WanProbe.parse({}).targets;

/** An address the router's own upstream depends on, and where the site names it. */
interface Lifeline {
  address: string;
  what: string;
}

/** Static WAN gateways, WAN probe targets (the defaults when a WAN sets none) and the router's upstream resolvers. */
function lifelines(s: PartialSite): Lifeline[] {
  const out: Lifeline[] = [];
  for (const { index, value: l } of s.links ?? []) {
    if (l.role !== "wan") continue;
    for (const fam of ["ipv4", "ipv6"] as const) {
      const cfg = l[fam];
      if (cfg?.mode === "static")
        out.push({
          address: cfg.gateway,
          what: `the static gateway of WAN ${l.name} (links[${index}].${fam}.gateway)`,
        });
    }
    (l.probe?.targets ?? DEFAULT_PROBE_TARGETS).forEach((t, i) =>
      out.push({ address: t, what: `a probe target of WAN ${l.name} (links[${index}].probe.targets[${i}])` }),
    );
  }
  (s.dns?.upstreams ?? []).forEach((u, i) =>
    out.push({ address: u.address, what: `an upstream resolver of the router (dns.upstreams[${i}])` }),
  );
  return out;
}

/**
 * The guard's static lists must not cut the router off its upstream (DESIGN.md decision 16 holds the downloaded
 * lists to the same rule): no blocklist entry covers every address or a lifeline, no allowlist entry lets every
 * source past the guard.
 */
function checkGuardLists(s: PartialSite, out: Issues): void {
  const dp = s.dataplane;
  if (!dp) return;
  const everything = (cidr: string) => parsePrefix(cidr).length === 0;
  const lines = lifelines(s);
  for (const { index: i, value: cidr } of indexed(dp.blocklist)) {
    const path = configPath("dataplane", ["blocklist", i]);
    if (everything(cidr)) {
      out.push({
        path,
        message: `${cidr} covers every address: the guard would drop all traffic from the internet (allowed: narrower prefixes)`,
      });
      continue;
    }
    for (const l of lines.filter((x) => contains(cidr, x.address)))
      out.push({
        path,
        message: `${cidr} covers ${l.address}, ${l.what}: the router would drop its own upstream (allowed: prefixes that leave out the WAN gateways, probe targets and upstream resolvers)`,
      });
  }
  for (const { index: i, value: cidr } of indexed(dp.allowlist))
    if (everything(cidr))
      out.push({
        path: configPath("dataplane", ["allowlist", i]),
        message: `${cidr} lets every source past the guard, which switches off its bogon, blocklist, geo-IP and rate-limit filtering (allowed: narrower prefixes, e.g. the upstream's subnet)`,
      });
}

function checkTalos(s: PartialSite, out: Issues): void {
  if (!s.talos) return;
  const tag = /:(v\d+\.\d+\.\d+)(@|$)/.exec(s.talos.installerImage)?.[1];
  if (tag && tag !== s.talos.version)
    out.push({
      path: configPath("talos", ["installerImage"]),
      message: `tag ${tag} does not match talos.version ${s.talos.version} (allowed: an installer image of the same release)`,
    });
}

function checkRegistry(s: PartialSite, out: Issues): void {
  if (!s.registry && !s.incomplete.has("registry"))
    out.push({
      path: configPath("registry"),
      message:
        "is required (allowed: a registry the operator's machine can push to and the router can pull from — the network-services image and the data-plane extension are published there)",
    });
  const hasPassword = s.secretsSet.has("registryPassword");
  if (s.registry?.username && !hasPassword)
    out.push({
      path: configPath("registryPassword"),
      message: "is not set but router:registry.username is (allowed: `pulumi config set --secret registryPassword …`)",
    });
  if (hasPassword && !s.registry?.username)
    out.push({
      path: configPath("registryPassword"),
      message: "is set but router:registry.username is not (allowed: set both, or neither)",
    });
}

/**
 * The router's clock at boot: with every upstream resolver encrypted, a certificate check needs a correct clock,
 * and NTP servers named only by hostname cannot be resolved before it is — the node would not finish booting
 * (Talos warns of exactly this: pkg/machinery/config/types/network/resolver.go).
 */
function checkBootClock(s: PartialSite, out: Issues): void {
  if (!s.dns || !s.ntp) return;
  const encrypted = s.dns.upstreams.every((u) => u.protocol === "DoT" || u.protocol === "DoH");
  const byAddress = s.ntp.servers.some((n) => familyOf(n) !== undefined);
  if (encrypted && !byAddress)
    out.push({
      path: configPath("ntp", ["servers"]),
      message:
        "names NTP servers only by hostname while every router:dns.upstreams entry is encrypted (DoT/DoH): " +
        "certificates need a correct clock, which NTP cannot set before DNS works, so the router would not finish " +
        "booting (allowed: at least one NTP server by IP address, e.g. 162.159.200.1, or a plain Do53 upstream)",
    });
}

/** Runs every cross-field rule. */
export function validateSite(s: PartialSite): SiteIssue[] {
  const out: SiteIssue[] = [];
  checkNics(s, out);
  checkLinks(s, out);
  checkZones(s, out);
  checkWanZones(s, out);
  checkSegments(s, out);
  checkOverlaps(s, out);
  checkCluster(s, out);
  checkManagement(s, out);
  checkTimeouts(s, out);
  checkDataplane(s, out);
  checkGuardLists(s, out);
  checkTalos(s, out);
  checkRegistry(s, out);
  checkBootClock(s, out);
  out.push(...validatePolicy(s));
  out.push(...validateDns(s));
  out.push(...validateObservability(s));
  out.push(...validateIds(s));
  return out;
}
