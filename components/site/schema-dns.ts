/**
 * The router's DNS (router:dns): the upstream resolvers, how the resolver reaches the internet, the site's own
 * records, domain lists and filtering profiles, and what each zone gets. No Pulumi import; cross-field rules
 * live in validate-dns.ts, the meaning in components/dns-stack/plan.ts.
 */
import { z } from "zod";
import { DnsLabel, DomainName, Duration, IpAddress } from "./scalars";

export const Nameserver = z
  .strictObject({
    address: IpAddress(),
    protocol: z
      .enum(["Do53", "DoT", "DoH"], { error: "is not a DNS protocol (allowed: Do53, DoT, DoH)" })
      .default("Do53"),
    /** Name on the resolver's certificate: required for DoT and DoH, not allowed for Do53 (Talos refuses both). */
    tlsServerName: DomainName.optional(),
  })
  .superRefine((n, ctx) => {
    if (n.protocol !== "Do53" && !n.tlsServerName)
      ctx.addIssue({
        code: "custom",
        path: ["tlsServerName"],
        message: `is missing for a ${n.protocol} upstream, so its certificate could not be checked (allowed: the name on the resolver's certificate, e.g. cloudflare-dns.com)`,
      });
    if (n.protocol === "Do53" && n.tlsServerName)
      ctx.addIssue({
        code: "custom",
        path: ["tlsServerName"],
        message:
          "is set for a plain-DNS (Do53) upstream, which has no certificate to check (allowed: DoT or DoH with it, or no tlsServerName)",
      });
  });

/** A time to live in seconds. */
export const Ttl = z
  .number({ error: "expected a number (a TTL in seconds from 1 to 604800)" })
  .int({ error: "is not an integer (allowed: a TTL in seconds from 1 to 604800)" })
  .min(1, { error: "is below 1 (allowed: a TTL in seconds from 1 to 604800, one week)" })
  .max(604_800, { error: "is above 604800 (allowed: a TTL in seconds from 1 to 604800, one week)" });

/**
 * The owner of a record: a fully qualified name without the trailing dot, whose labels may start with an
 * underscore (`_ipp._tcp.printer.lab.home.arpa`, as SRV and many TXT owners do).
 */
export const RecordName = z
  .string({ error: "expected a string (a fully qualified name such as nas.lab.home.arpa)" })
  .max(253, { error: "is longer than 253 characters (allowed: a name of at most 253 characters)" })
  .regex(/^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, {
    error:
      "is not a record name (allowed: a fully qualified lower-case name such as nas.lab.home.arpa; labels of a-z, 0-9, '-', and '_' at their start)",
  });

const Port = z
  .number({ error: "expected a number (0–65535)" })
  .int({ error: "is not an integer (allowed: 0–65535)" })
  .min(0, { error: "is outside 0–65535 (allowed: 0–65535)" })
  .max(65535, { error: "is outside 0–65535 (allowed: 0–65535)" });

const recordBase = {
  /** Owner name, inside router:site.domain. */
  name: RecordName,
  /** Seconds; default router:dns.ttl. */
  ttl: Ttl.optional(),
};

/** A record the router serves in the site's domain. */
export const DnsRecord = z.discriminatedUnion(
  "type",
  [
    z.strictObject({ ...recordBase, type: z.literal("A"), address: IpAddress(4) }),
    z.strictObject({ ...recordBase, type: z.literal("AAAA"), address: IpAddress(6) }),
    z.strictObject({ ...recordBase, type: z.literal("CNAME"), target: DomainName }),
    z.strictObject({
      ...recordBase,
      type: z.literal("TXT"),
      /** The text; split into 255-byte strings when longer. */
      text: z
        .string({ error: "expected a string (printable ASCII text)" })
        .min(1, { error: "is empty (allowed: 1–4000 characters of printable ASCII)" })
        .max(4000, { error: "is longer than 4000 characters (allowed: 1–4000 characters of printable ASCII)" })
        .regex(/^[\x20-\x7e]+$/, { error: "is not printable ASCII (allowed: characters from space to ~)" }),
    }),
    z.strictObject({
      ...recordBase,
      type: z.literal("SRV"),
      priority: Port,
      weight: Port,
      port: Port,
      target: DomainName,
    }),
  ],
  { error: "has no valid type (allowed: type A, AAAA, CNAME, TXT or SRV)" },
);
export type DnsRecord = z.infer<typeof DnsRecord>;

/** An HTTPS URL the router may fetch: no credentials (they would be in rendered files), a host, a path. */
export const FeedUrl = z.string({ error: "expected a string (an https:// URL)" }).refine(
  (s) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return false;
    }
    return u.protocol === "https:" && u.hostname.length > 0 && !u.username && !u.password && !/\s/.test(s);
  },
  {
    error: (iss) =>
      `${JSON.stringify(iss.input)} is not a feed URL the router can fetch (allowed: https://host/path, without credentials or spaces; lists are fetched over HTTPS on the router)`,
  },
);

export const DnsList = z.strictObject({
  /** Name of the list: its file on the router and its label in metrics and the query log. */
  name: DnsLabel,
  /** block: names answered as blocked; allow: names that pass even when a block list holds them. */
  kind: z.enum(["block", "allow"], { error: "is not a list kind (allowed: block, allow)" }),
  /** Names on the list; each also covers every name below it. */
  entries: z.array(DomainName).default([]),
  /** A feed fetched by the router (plain names, hosts-file lines or ||name^ rules), refreshed every `refresh`. */
  url: FeedUrl.optional(),
  refresh: Duration.default("12h"),
  /** A download with fewer names is refused and the last good list kept. */
  minEntries: z.number().int().min(1).max(10_000_000).default(1),
});
export type DnsList = z.infer<typeof DnsList>;

export const DnsProfile = z.strictObject({
  name: DnsLabel,
  /** Block lists (router:dns.lists of kind block). */
  block: z.array(DnsLabel).default([]),
  /** Allow lists (kind allow): their names pass even when a block list holds them. */
  allow: z.array(DnsLabel).default([]),
  /** Only the allow lists' names (and the site's own names) resolve; everything else is blocked. */
  allowOnly: z.boolean().default(false),
  /** How a blocked name is answered: NXDOMAIN, or a null address (0.0.0.0 and ::). */
  blockedAnswer: z
    .enum(["nxdomain", "null"], { error: "is not a blocked answer (allowed: nxdomain, null)" })
    .default("nxdomain"),
});
export type DnsProfile = z.infer<typeof DnsProfile>;

export const DnsZone = z.strictObject({
  /** A zone from router:zones whose services include dns. */
  zone: DnsLabel,
  /** Filtering profile (router:dns.profiles); none: nothing is filtered. */
  profile: DnsLabel.optional(),
  /**
   * Make the zone's clients use the router's resolver: `redirect` answers their port-53 queries to any server
   * from the router and rejects DoT to other servers; `reject` rejects both; `off` leaves them alone.
   */
  force: z
    .enum(["off", "redirect", "reject"], { error: "is not a mode (allowed: off, redirect, reject)" })
    .default("off"),
  /** Serve DNS over TLS (853) and over HTTPS (443, /dns-query) to the zone, with a certificate of the site's CA. */
  encrypted: z.boolean().default(false),
  /** Log the zone's queries (client, name, type, answer, blocked-by); off keeps only the counters. */
  queryLog: z.boolean().default(true),
});
export type DnsZone = z.infer<typeof DnsZone>;

export const Dns = z.strictObject({
  /** Upstream resolvers: the node's own, and where the resolver forwards clients' queries. */
  upstreams: z.array(Nameserver).min(1, { error: "is empty (allowed: at least one upstream resolver)" }),
  /**
   * Forward clients' queries to the upstreams (DoT ones over TLS with their certificate name checked); false:
   * the resolver recurses from the root servers itself, and the upstreams serve only the node.
   */
  forward: z.boolean().default(true),
  /** Validate DNSSEC: answers whose signatures fail are SERVFAIL, validated ones carry the AD bit. */
  dnssec: z.boolean().default(true),
  /** Trust anchors of signed zones outside the public tree, as DS records (`example.net. DS 12345 13 2 <hex>`). */
  trustAnchors: z
    .array(
      z
        .string({ error: "expected a string (a DS record)" })
        .regex(/^([a-z0-9_-]+\.)+ (IN )?DS \d{1,5} \d{1,3} \d{1,3} [0-9A-Fa-f]{40,128}$/, {
          error: "is not a DS record (allowed: e.g. 'example.net. DS 12345 13 2 <hex digest>')",
        }),
    )
    .default([]),
  /** Domains besides router:site.domain whose public answers may hold private addresses (rebinding protection). */
  privateDomains: z.array(DomainName).default([]),
  /** TTL of the site's static records, in seconds. */
  ttl: Ttl.default(300),
  /** Records in the site's domain, besides the router's and the reservations' names. */
  records: z.array(DnsRecord).default([]),
  /** Domain lists: inline names and HTTPS feeds. */
  lists: z.array(DnsList).default([]),
  /** Filtering profiles built from the lists. */
  profiles: z.array(DnsProfile).default([]),
  /** Per-zone settings; a served zone not listed gets no filtering, no forcing, no encryption, a query log. */
  zones: z.array(DnsZone).default([]),
  /** Prometheus port of the per-zone DNS metrics. */
  metricsPort: z.number().int().min(1024).max(65535).default(9433),
  /** Threads the front answers plain DNS with, per listening address (SO_REUSEPORT spreads queries over them). */
  frontThreads: z
    .number({ error: "expected a number (threads per address from 1 to 8)" })
    .int({ error: "is not an integer (allowed: threads per address from 1 to 8)" })
    .min(1, { error: "is below 1 (allowed: threads per address from 1 to 8)" })
    .max(8, { error: "is above 8 (allowed: threads per address from 1 to 8)" })
    .default(2),
});
export type Dns = z.infer<typeof Dns>;
