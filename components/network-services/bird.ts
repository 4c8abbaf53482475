/**
 * BIRD 2 configuration of the router's OSPFv2 (router:routing.ospf); BGP goes through Talos' own BGP (routing.ts).
 * Pure and deterministic; `bird -p` parses every render in the tests.
 * What the render promises:
 *   - OSPF runs on the links of `segments` (FRR's default timers, hello 10 s and dead 40 s, so that FRR and other
 *     neighbours with the defaults agree) and advertises the `passive` segments as stub networks (no hellos);
 *   - `redistribute: [static]` advertises the IPv4 prefixes of router:routes as external routes from a static
 *     protocol of BIRD's own (Talos installs the kernel routes; BIRD never exports these to the kernel) — so a
 *     WAN's DHCP routes and default route are never advertised; `[connected]` advertises the IPv4 subnets of the
 *     other segments, read from their links by a direct protocol restricted to exactly those subnets;
 *   - the kernel protocol installs only what OSPF learned, and of that only routes inside `accept` (default: the
 *     private and shared ranges) and never the default route, a subnet of the router's own segments, static WANs or
 *     cluster networks, nor anything inside one: OSPF is open to every host of its segments, and an edge router
 *     must not let one take its default route (or 0.0.0.0/1 and 128.0.0.0/1, which cover it) or a connected
 *     subnet; it learns nothing from the kernel, and owns only the routes it installed: BIRD marks them protocol bird (12) and
 *     considers no other protocol's route its own (sysdep/linux/netlink.c), so Talos' BGP routes (protocol bgp,
 *     metric 0), static routes and DHCP routes are never touched;
 *   - a restart keeps forwarding: `persist` leaves the installed routes in the kernel when BIRD ends; the pod's
 *     start (images/services/bird-start) moves them aside one metric behind before BIRD starts, since BIRD's
 *     first kernel scan would remove them as routes of its own it has not learned (yet), and flushes them once
 *     the new BIRD has had time to learn them again. BIRD 2.0.12's own graceful restart (`bird -R`, the kernel
 *     protocol's `graceful restart` and OSPF's `graceful restart yes`) is not used: when its recovery ends by its
 *     timer — a start with no neighbour up yet, as at boot — OSPF never originates the external routes exported
 *     to it meanwhile (the neighbour then never learns the static and connected prefixes).
 *     test/network/bird-restart.kernel.test.ts measures the restart;
 *   - with `authentication`, every hello and database packet on the OSPF links carries the algorithm's digest
 *     under the key id, and BIRD drops a neighbour's packet without it; the keys are not in bird.conf but in a
 *     file of the bird Secret that each OSPF interface includes (renderOspfKeyFile), so the ConfigMap, the
 *     artifacts and the review hold no secret, and a change of key is read again in place. With `next`, both keys
 *     are accepted and one is sent, so the key changes without losing an adjacency. Passive segments send no OSPF
 *     packet and need none. test/network/ospf-auth.kernel.test.ts runs it against a neighbour with the same key,
 *     another key, and a key that rolls over.
 */
import { OSPF_KEY_PATTERN, type Site } from "../site/schema";
import type { OSPF_AUTH_ALGORITHMS } from "../site/schema-policy";
import type { SitePlan } from "../site/plan";
import { canonicalCidr, familyOf } from "../site/ip";

/** Protocol names in the render (BIRD's `show protocols` names them). */
export const BIRD_OSPF = "router_ospf";
export const BIRD_STATIC = "router_static";
export const BIRD_SEGMENTS = "router_segments";
/** OSPF's hello and dead intervals on every segment OSPF runs on, in seconds (FRR's defaults). */
export const OSPF_HELLO_S = 10;
export const OSPF_DEAD_S = 40;
/** The metric of the routes BIRD installs: FRR's zebra used 20 (behind Talos' BGP routes at 0). */
export const BIRD_KERNEL_METRIC = 20;
/**
 * The route protocols (rtm_protocol, /etc/iproute2/rt_protos) of the routes only the routing pod installs: BIRD's
 * kernel protocol (bird, 12), the FRR it replaced (ospf, 188), and the hold of a restart (249, images/services/
 * bird-start's STALE). While the site runs OSPF, BIRD owns them; once it runs none, nothing ever removes them, so
 * the data-plane loader does (its `stale_route_protocols`, components/dataplane/loader-config.ts).
 */
export const ROUTING_POD_ROUTE_PROTOCOLS: readonly number[] = [12, 188, 249];

/** Where the bird pod mounts its Secret, and the file in it that holds the OSPF keys. */
export const BIRD_SECRETS_DIR = "/etc/router-secrets";
export const OSPF_KEY_FILE = `${BIRD_SECRETS_DIR}/ospf-keys.conf`;
/** BIRD's run directory (the pod's emptyDir, which its containers share). */
export const BIRD_RUN_DIR = "/run/bird";
/**
 * The keys BIRD reads (bird.conf includes this file): a copy of OSPF_KEY_FILE that bird-start makes when the pod
 * starts and the status container replaces only on a trial it can revert (images/services/router-ospf-status).
 */
export const OSPF_ACTIVE_KEY_FILE = `${BIRD_RUN_DIR}/ospf-keys.conf`;

const BIRD_ALGORITHMS: Record<(typeof OSPF_AUTH_ALGORITHMS)[number], string> = {
  "hmac-sha1": "hmac sha1",
  "hmac-sha256": "hmac sha256",
  "hmac-sha384": "hmac sha384",
  "hmac-sha512": "hmac sha512",
  "keyed-md5": "keyed md5",
};

/**
 * A time long past, for `generate to`: the key it ends is accepted but never sent. BIRD sends with the key valid
 * for generating whose `generate from` is latest (nest/password.c, password_find), so exactly one key is sent.
 */
const NEVER_SENT = "1971-01-01 00:00:00";

type OspfAuthentication = NonNullable<NonNullable<Site["routing"]["ospf"]>["authentication"]>;

/** The keys the router holds, in words and in order (the current key, then the next one), and which it sends. */
export function ospfKeys(
  auth: OspfAuthentication,
): { secret: "ospfKey" | "ospfNextKey"; keyId: number; algorithm: OspfAuthentication["algorithm"]; sent: boolean }[] {
  const next = auth.next;
  return [
    { secret: "ospfKey", keyId: auth.keyId, algorithm: auth.algorithm, sent: !next?.send },
    ...(next
      ? [
          {
            secret: "ospfNextKey" as const,
            keyId: next.keyId,
            algorithm: next.algorithm ?? auth.algorithm,
            sent: next.send,
          },
        ]
      : []),
  ];
}

/**
 * The key file each OSPF interface of bird.conf includes: BIRD's password list, one entry per key (ospfKeys), the
 * one not sent ending its generation long ago. Everything of the authentication but its on/off switch lives here,
 * in the bird Secret: a new key, a next key, or the switch to sending it changes only this file, which BIRD reads
 * again in place (no restart, no lost adjacency). BIRD strings have no escapes, so a key with `"` or a line break
 * could not be written; the site's schema refuses those, and this refuses them again.
 */
export function renderOspfKeyFile(auth: OspfAuthentication, key: string, nextKey?: string): string {
  const values = { ospfKey: key, ospfNextKey: nextKey };
  return ospfKeys(auth)
    .map((k) => {
      const value = values[k.secret];
      if (value === undefined || !OSPF_KEY_PATTERN.test(value))
        throw new Error(`router:${k.secret} is not a key BIRD can read`);
      const ends = k.sent ? "" : ` generate to "${NEVER_SENT}";`;
      return `password "${value}" { id ${k.keyId}; algorithm ${BIRD_ALGORITHMS[k.algorithm]};${ends} };\n`;
    })
    .join("");
}

/** The site's OSPF authentication in words (`hmac-sha256, key id 1`, or `none`); never a key. */
export function ospfAuthentication(site: Site): string {
  const auth = site.routing.ospf?.authentication;
  if (!auth) return "none";
  const keys = ospfKeys(auth);
  if (keys.length === 1) return `${auth.algorithm}, key id ${auth.keyId}`;
  return keys
    .map((k) => `${k.algorithm}, key id ${k.keyId} (${k.sent ? "sent and accepted" : "accepted, not sent"})`)
    .join("; ");
}

/** The OSPF sources BIRD's kernel protocol exports (BIRD's route source attribute). */
const OSPF_SOURCES = "[RTS_OSPF, RTS_OSPF_IA, RTS_OSPF_EXT1, RTS_OSPF_EXT2]";

/**
 * What OSPF redistributes, as exact IPv4 prefixes: `static`, the site's IPv4 routes (with their gateway);
 * `connected`, the IPv4 subnets of the segments OSPF does not run on (nor names passive), never a WAN's.
 */
export function ospfRedistribution(
  site: Site,
  plan: SitePlan,
): { kind: "static" | "connected"; prefixes: string[]; routes?: { destination: string; gateway: string }[] }[] {
  const ospf = site.routing.ospf;
  if (!ospf) return [];
  const out: ReturnType<typeof ospfRedistribution> = [];
  if (ospf.redistribute.includes("static")) {
    const routes = site.routes
      .filter((r) => familyOf(r.destination) === 4)
      .map((r) => ({ destination: r.destination, gateway: r.gateway }));
    out.push({ kind: "static", prefixes: routes.map((r) => r.destination), routes });
  }
  if (ospf.redistribute.includes("connected"))
    out.push({
      kind: "connected",
      prefixes: plan.segments
        .filter((x) => !ospf.segments.includes(x.name) && !ospf.passive.includes(x.name))
        .flatMap((x) => (x.ipv4 ? [x.ipv4.cidr] : [])),
    });
  return out.filter((r) => r.prefixes.length > 0);
}

/** A BIRD prefix set of exact prefixes (`+`: each with every prefix inside it). */
function prefixSet(prefixes: readonly string[], inside = ""): string {
  return `[ ${prefixes.map((p) => `${p}${inside}`).join(", ")} ]`;
}

/**
 * The IPv4 prefixes the router never installs from OSPF, nor anything inside them: its segments' subnets, its
 * static WANs' subnets and the cluster's pod and service networks (its own routes reach them).
 */
export function ospfNeverInstalled(site: Site, plan: SitePlan): string[] {
  const wans = site.links.flatMap((l) =>
    l.role === "wan" && l.ipv4?.mode === "static" ? [canonicalCidr(l.ipv4.address)] : [],
  );
  const cluster = [...site.cluster.podCidrs, ...site.cluster.serviceCidrs].filter((c) => familyOf(c) === 4);
  return [...new Set([...plan.segments.flatMap((s) => (s.ipv4 ? [s.ipv4.cidr] : [])), ...wans, ...cluster])];
}

/** bird.conf when OSPF is configured, else undefined (BIRD is then not deployed). */
export function renderBird(site: Site, plan: SitePlan): string | undefined {
  const ospf = site.routing.ospf;
  if (!ospf) return undefined;
  const active = plan.segments.filter((s) => ospf.segments.includes(s.name));
  const passive = plan.segments.filter((s) => ospf.passive.includes(s.name));
  const never = ospfNeverInstalled(site, plan);
  const redistribution = ospfRedistribution(site, plan);
  const statics = redistribution.find((r) => r.kind === "static");
  const connected = redistribution.find((r) => r.kind === "connected");
  const segmentLinks = plan.segments.filter((s) => connected?.prefixes.includes(s.ipv4?.cidr ?? "")).map((s) => s.link);
  const exported = [...(statics ? ["RTS_STATIC"] : []), ...(connected ? ["RTS_DEVICE"] : [])];
  const lines = [
    `# BIRD of site ${site.site.name}: OSPFv2 (rendered)`,
    `router id ${ospf.routerId};`,
    "log stderr { info, remote, warning, error, auth, fatal, bug };",
    "",
    "# the links and their addresses",
    "protocol device {",
    "  scan time 10;",
    "}",
    "",
    "# OSPF's routes into the main table, only inside routing.ospf.accept and never onto the router's own subnets;",
    "# nothing read from it, and only protocol bird routes are BIRD's own",
    "protocol kernel {",
    "  ipv4 {",
    "    import none;",
    `    export where source ~ ${OSPF_SOURCES} && net ~ ${prefixSet(ospf.accept, "+")} && net != 0.0.0.0/0${never.length > 0 ? ` && net !~ ${prefixSet(never, "+")}` : ""};`,
    "  };",
    "  learn off;",
    "  persist;",
    `  metric ${BIRD_KERNEL_METRIC};`,
    "}",
  ];
  if (statics?.routes)
    lines.push(
      "",
      "# the site's static routes, for OSPF only (Talos installs them in the kernel)",
      `protocol static ${BIRD_STATIC} {`,
      "  ipv4;",
      ...statics.routes.map((r) => `  route ${r.destination} via ${r.gateway};`),
      "}",
    );
  if (connected)
    lines.push(
      "",
      "# the subnets of the segments OSPF does not run on",
      `protocol direct ${BIRD_SEGMENTS} {`,
      `  ipv4 { import where net ~ ${prefixSet(connected.prefixes)}; };`,
      `  interface ${segmentLinks.map((l) => `"${l}"`).join(", ")};`,
      "}",
    );
  lines.push(
    "",
    `protocol ospf v2 ${BIRD_OSPF} {`,
    "  ipv4 {",
    "    import all;",
    exported.length > 0 ? `    export where source ~ [${exported.join(", ")}];` : "    export none;",
    "  };",
    `  area ${ospf.area} {`,
  );
  for (const s of [...active, ...passive].sort((a, b) => a.vlan - b.vlan))
    lines.push(
      ...(passive.includes(s)
        ? [`    interface "${s.link}" { stub yes; };`]
        : ospf.authentication
          ? [
              `    interface "${s.link}" {`,
              `      hello ${OSPF_HELLO_S}; dead ${OSPF_DEAD_S};`,
              "      authentication cryptographic;",
              "      # the keys (router:ospfKey, router:ospfNextKey), their ids and algorithms: the bird Secret's, once on trial",
              `      include "${OSPF_ACTIVE_KEY_FILE}";`,
              "    };",
            ]
          : [`    interface "${s.link}" { hello ${OSPF_HELLO_S}; dead ${OSPF_DEAD_S}; };`]),
    );
  lines.push("  };", "}", "");
  return lines.join("\n");
}
