/**
 * Site-wide network policy keys: the zone firewall (router:firewall), port forwards (router:portForwards),
 * static routes (router:routes), dynamic routing (router:routing) and mDNS reflection (router:mdns).
 * No Pulumi import; cross-field rules live in validate-policy.ts.
 */
import { z } from "zod";
import { DnsLabel, IpAddress, LinkName, NetworkCidr, intIn } from "./scalars";
import { familyOf, isAddress, isCidr } from "./ip";

/** A zone name, or "any". */
export const ZoneRef = z.union([z.literal("any"), DnsLabel], {
  error: 'is not a zone (allowed: a zone name from router:zones, or "any")',
});
const ZoneRefs = z.union([ZoneRef, z.array(ZoneRef).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));

/** A destination zone, "any", or "router" (traffic to the router itself). */
export const DestinationRef = z.union([z.literal("router"), ZoneRef], {
  error: 'is not a destination (allowed: a zone name, "any", or "router" for the router itself)',
});
const DestinationRefs = z
  .union([DestinationRef, z.array(DestinationRef).min(1)])
  .transform((v) => (Array.isArray(v) ? v : [v]));

export const FirewallAction = z.enum(["accept", "drop", "reject"], {
  error: "is not an action (allowed: accept, drop, reject)",
});

/** A port or an inclusive range "low-high". */
export const PortSpec = z.union(
  [
    intIn(1, 65535, "a port"),
    z
      .string()
      .refine((s) => /^\d{1,5}-\d{1,5}$/.test(s), {
        // YAML quoting turns a port into a string: say so, rather than what a range looks like.
        error: (iss) =>
          /^\d+$/.test(String(iss.input))
            ? `${JSON.stringify(iss.input)} is a quoted number (allowed: a port from 1 to 65535 written without quotes, or a range such as "8000-8099")`
            : `${JSON.stringify(iss.input)} is not a port range (allowed: "low-high" with 1 ≤ low ≤ high ≤ 65535, e.g. "8000-8099")`,
      })
      .refine(
        (s) => {
          // Not a range at all is reported above (an aborting check would hide both from the union's message).
          if (!/^\d{1,5}-\d{1,5}$/.test(s)) return true;
          const [a, b] = s.split("-").map(Number);
          return a >= 1 && b <= 65535 && a <= b;
        },
        { error: "is not a port range (allowed: low-high with 1 ≤ low ≤ high ≤ 65535)" },
      ),
  ],
  { error: 'is not a port (allowed: 1–65535, or a range such as "8000-8099")' },
);
export type PortSpec = z.infer<typeof PortSpec>;

export const Protocol = z.enum(["tcp", "udp", "tcp+udp", "icmp", "any"], {
  error: "is not a protocol (allowed: tcp, udp, tcp+udp, icmp, any)",
});

/** An address, a prefix, or `@group` (router:firewall.addressGroups). */
export const AddressRef = z
  .string({ error: "expected a string (an address, a prefix or @group)" })
  .refine((s) => /^@[a-z0-9-]+$/.test(s) || isAddress(s) || isCidr(s), {
    error: (iss) =>
      `${JSON.stringify(iss.input)} is not an address reference (allowed: an IP address, a CIDR prefix, or @group-name)`,
  });

export const AddressGroup = z.strictObject({
  name: DnsLabel,
  description: z.string().optional(),
  addresses: z
    .array(
      z.string().refine((s) => isAddress(s) || isCidr(s), {
        error: (iss) =>
          `${JSON.stringify(iss.input)} is not an address or prefix (allowed: e.g. 10.50.0.10 or fd00::/64)`,
      }),
    )
    .min(1, { error: "is empty (allowed: one or more addresses or prefixes)" }),
});

export const ZonePolicy = z.strictObject({
  from: ZoneRef,
  to: ZoneRef,
  action: FirewallAction,
  /** Log (rate-limited) what this policy drops or rejects. */
  log: z.boolean().default(false),
});

export const FirewallRule = z.strictObject({
  name: DnsLabel,
  description: z.string().optional(),
  from: ZoneRefs,
  /** Zones, "any", or "router": a rule to "router" filters what reaches the router itself. */
  to: DestinationRefs,
  protocol: Protocol.default("any"),
  /** Destination ports (tcp, udp, tcp+udp only). */
  ports: z.array(PortSpec).min(1).optional(),
  source: z.array(AddressRef).min(1).optional(),
  destination: z.array(AddressRef).min(1).optional(),
  action: FirewallAction,
  log: z.boolean().default(false),
});

export const Firewall = z.strictObject({
  /** Verdict for a zone pair no policy covers. Traffic within one zone is accepted unless a policy says otherwise. */
  defaultAction: z
    .enum(["drop", "reject"], { error: "is not a default action (allowed: drop, reject)" })
    .default("drop"),
  /** Zone-to-zone defaults; the most specific match wins (zone→zone, then zone→any, any→zone, any→any). */
  policies: z.array(ZonePolicy).default([]),
  /** Exceptions, first match wins, evaluated before the policies. */
  rules: z.array(FirewallRule).default([]),
  addressGroups: z.array(AddressGroup).default([]),
  /** Log dropped forward traffic, at most `logRate`. */
  logDrops: z.boolean().default(true),
  logRate: z
    .string()
    .regex(/^\d+\/(second|minute|hour)$/, { error: "is not a rate (allowed: e.g. 10/minute)" })
    .default("10/minute"),
});

export const PortForward = z.strictObject({
  name: DnsLabel,
  description: z.string().optional(),
  /** WAN links the forward listens on; default: all WANs. */
  wans: z.array(LinkName).min(1).optional(),
  protocol: z.enum(["tcp", "udp", "tcp+udp"], { error: "is not a protocol (allowed: tcp, udp, tcp+udp)" }),
  /** Public port or range. */
  port: PortSpec,
  /** Inside host (IPv4). */
  to: IpAddress(4),
  /** Inside port (start of the range); default: the public port. */
  toPort: intIn(1, 65535, "a port").optional(),
  /** Only these sources may use the forward; default: any. */
  sources: z.array(NetworkCidr()).min(1).optional(),
  /** Let inside clients reach the forward through the public address too (hairpin NAT). */
  hairpin: z.boolean().default(true),
  /**
   * IPv6 host of the forward. A global address is opened at its own address on the public port (a firewall
   * pinhole) and reached at toPort like the IPv4 host (the router moves the port, the address stays); a unique
   * local one is reached through the address of each forward's WAN that does NAT66, at toPort like the IPv4 host.
   */
  ipv6: IpAddress(6).optional(),
});
export const PortForwards = z.array(PortForward);

export const StaticRoute = z.strictObject({
  destination: NetworkCidr(),
  gateway: IpAddress(),
  metric: intIn(1, 65535, "a route metric").optional(),
  description: z.string().optional(),
});
export const Routes = z.array(StaticRoute).superRefine((rs, ctx) =>
  rs.forEach((r, i) => {
    if (familyOf(r.destination) !== familyOf(r.gateway))
      ctx.addIssue({
        code: "custom",
        path: [i, "gateway"],
        message: `${r.gateway} is not of the family of ${r.destination} (allowed: a gateway of the same IP family)`,
      });
  }),
);

const Asn = intIn(1, 4_294_967_294, "a 32-bit AS number");

/** OSPFv2 authentication algorithms (BIRD's names: hmac sha256 …, keyed md5). */
export const OSPF_AUTH_ALGORITHMS = ["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha1", "keyed-md5"] as const;
/** Keyed MD5 carries at most 16 bytes of key (RFC 2328 D.3); an HMAC key shorter than this is guessable offline. */
export const OSPF_MD5_KEY_MAX = 16;
export const OSPF_HMAC_KEY_MIN = 16;

const OspfAlgorithm = z.enum(OSPF_AUTH_ALGORITHMS, {
  error: `is not an OSPF authentication algorithm (allowed: ${OSPF_AUTH_ALGORITHMS.join(", ")})`,
});
const OspfKeyId = z
  .number()
  .int()
  .min(1, { error: "is below 1 (allowed: a key id from 1 to 255)" })
  .max(255, { error: "is above 255 (allowed: a key id from 1 to 255)" });

export const Routing = z.strictObject({
  /** BGP through Talos' native BGP (BGPInstanceConfig). */
  bgp: z
    .strictObject({
      asn: Asn,
      routerId: IpAddress(4),
      neighbors: z
        .array(
          z.strictObject({
            address: IpAddress(),
            asn: Asn,
            description: z.string().optional(),
            /** Bidirectional Forwarding Detection on the session (UDP 3784/4784 from this neighbour). */
            bfd: z.boolean().default(false),
          }),
        )
        .min(1, { error: "is empty (allowed: one or more neighbors)" }),
      /** Segments whose prefixes are advertised. */
      advertise: z.array(DnsLabel).default([]),
    })
    .optional(),
  /** OSPFv2 through BIRD (Talos has no OSPF). */
  ospf: z
    .strictObject({
      routerId: IpAddress(4),
      area: z
        .string()
        .regex(/^\d+\.\d+\.\d+\.\d+$/, { error: "is not an area id (allowed: dotted form, e.g. 0.0.0.0)" })
        .default("0.0.0.0"),
      /** Segments whose links speak OSPF. */
      segments: z.array(DnsLabel).min(1, { error: "is empty (allowed: one or more segment names)" }),
      /** Segments advertised but without OSPF neighbours (no hellos sent). */
      passive: z.array(DnsLabel).default([]),
      /**
       * Also advertised as external routes: `static` — the IPv4 prefixes of router:routes (Talos installs them as
       * kernel routes); `connected` — the IPv4 subnets of the segments not named above. Never the WAN's default
       * route or DHCP routes.
       */
      redistribute: z
        .array(z.enum(["connected", "static"], { error: "is not redistributable (allowed: connected, static)" }))
        .default([]),
      /**
       * What the router installs from OSPF: routes to these prefixes or inside them (default: the private and
       * shared address ranges). Never the default route, nor anything covering or inside a subnet of the router's
       * own, whatever is listed: OSPF is open to every host of its segments.
       */
      accept: z
        .array(NetworkCidr(4, { min: 1, max: 32 }))
        .min(1, { error: "is empty (allowed: one or more IPv4 prefixes, or leave it out for the private ranges)" })
        .default(["10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16"]),
      /**
       * Cryptographic authentication of every OSPF packet on the segments OSPF runs on, with the key in the secret
       * router:ospfKey: HMAC-SHA (RFC 5709), or keyed MD5 (RFC 2328 appendix D) for neighbours without it. Without
       * it, any host of those segments can speak OSPF to the router.
       */
      authentication: z
        .strictObject({
          algorithm: OspfAlgorithm.default("hmac-sha256"),
          /** The key's id in every packet (the neighbours' must be the same). */
          keyId: OspfKeyId.default(1),
          /**
           * A second key (the secret router:ospfNextKey), for changing the key without losing an adjacency
           * (RFC 2328 D.3's overlapping keys): the router accepts packets with either key and sends with the
           * current one until `send` is true, then with this one. Give every neighbour the next key, then set
           * `send` everywhere, then make it the only key (docs/operations.md, "Change the OSPF key").
           */
          next: z
            .strictObject({
              keyId: OspfKeyId,
              /** Default: the current key's algorithm (a change of algorithm rolls over the same way). */
              algorithm: OspfAlgorithm.optional(),
              send: z.boolean({ error: "is not true or false (allowed: true, false)" }).default(false),
            })
            .optional(),
        })
        .optional(),
    })
    .optional(),
});

export const Mdns = z.strictObject({
  /** Groups of zones between which mDNS is reflected; a zone belongs to at most one group. */
  reflect: z
    .array(
      z.strictObject({
        /** Names the group's Avahi workload (avahi-<name>, a Kubernetes label value of at most 63 characters). */
        name: DnsLabel.max(32, {
          error: "is longer than 32 characters (allowed: a DNS label of at most 32 characters)",
        }),
        zones: z
          .array(DnsLabel)
          .min(2, { error: "has fewer than two zones (allowed: two or more zones to reflect between)" }),
      }),
    )
    .default([]),
});

export type Firewall = z.infer<typeof Firewall>;
export type FirewallRule = z.infer<typeof FirewallRule>;
export type ZonePolicy = z.infer<typeof ZonePolicy>;
export type PortForward = z.infer<typeof PortForward>;
export type StaticRoute = z.infer<typeof StaticRoute>;
export type Routing = z.infer<typeof Routing>;
export type Mdns = z.infer<typeof Mdns>;
