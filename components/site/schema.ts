/**
 * The site model: one zod schema per Pulumi config key (`router:<key>`), so an error path is the config key path an
 * operator edits. This module has no Pulumi import; cross-field rules live in validate.ts.
 *
 * Later layers (firewall policy, NAT, DNS, IDS, observability) add keys of their own (or optional fields on the
 * records below) without reshaping what is here.
 */
import { z } from "zod";
import {
  DnsLabel,
  DomainName,
  Duration,
  ImageRef,
  InterfaceCidr,
  intIn,
  nonEmpty,
  IpAddress,
  LinkName,
  MacAddress,
  Mtu,
  NetworkCidr,
  VlanId,
} from "./scalars";

import { Firewall, Mdns, PortForwards, Routes, Routing } from "./schema-policy";
import { Dns } from "./schema-dns";
import { Observability, OBSERVABILITY_DEFAULTS } from "./schema-observability";
import { Ids, IDS_DEFAULTS } from "./schema-ids";
import { MatchSyntaxError, parseMatch } from "../talos-node/disk-selector";

export * from "./scalars";
export * from "./schema-policy";
export * from "./schema-dns";
export * from "./schema-observability";
export * from "./schema-ids";

// ---------------------------------------------------------------------------------------------------------------
// router:site

export const SiteInfo = z.strictObject({
  /** Site name: the cluster name, and the default hostname. */
  name: DnsLabel,
  /** DNS domain of the site; segments get `<segment>.<domain>`. */
  domain: DomainName,
  /** Free text shown in the summary. */
  description: z.string().optional(),
});

// ---------------------------------------------------------------------------------------------------------------
// router:node

const DiskType = z.enum(["ssd", "hdd", "nvme", "sd"], {
  error: "is not a disk type (allowed: ssd, hdd, nvme, sd)",
});

/**
 * A disk property as `talosctl get disks` shows it, or a pattern with `*` for any run of characters: Talos'
 * disk selector has glob() with `*` as its only wildcard (siderolabs/talos pkg/machinery/cel/celenv), so `?`
 * and `[…]` would be compared literally and select nothing.
 */
const DiskProperty = (what: string) =>
  nonEmpty(`${what} as \`talosctl get disks\` shows it, or a pattern with * for any text`).refine(
    (v) => !/[?[\]]/.test(v),
    {
      error: (iss) =>
        `${JSON.stringify(iss.input)} uses ? or […], which Talos' disk glob() compares literally, so no disk would match (allowed: * as the only wildcard, e.g. "Samsung SSD 980*")`,
    },
  );

export const InstallDisk = z
  .strictObject({
    /** Device path, e.g. /dev/nvme0n1 (least stable across hardware changes); `*` matches any text. */
    path: z
      .string()
      .regex(/^\/dev\/[\w/.*-]+$/, { error: "is not a device path (allowed: /dev/…, with * for any text)" })
      .optional(),
    /** Model, e.g. "Samsung SSD 980 PRO 1TB" or "Samsung SSD 980*". */
    model: DiskProperty("the disk's model").optional(),
    serial: DiskProperty("the disk's serial number").optional(),
    wwid: DiskProperty("the disk's WWID").optional(),
    type: DiskType.optional(),
    /** Smallest acceptable disk size in GiB. */
    minSizeGiB: intIn(1, 1_000_000, "a size in GiB").optional(),
    /** Largest acceptable disk size in GiB. */
    maxSizeGiB: intIn(1, 1_000_000, "a size in GiB").optional(),
    /**
     * A CEL expression over `disk`, for what the fields above cannot say. The guards against read-only, optical
     * and USB devices still apply. It must stay within what the operator-side check can evaluate too
     * (components/talos-node/disk-selector.ts): comparisons of disk.<field> with a literal, &&, ||, !, parentheses,
     * startsWith/endsWith/contains, glob("pattern", disk.<field>), sizes like 100u * GiB.
     */
    match: nonEmpty("a CEL expression over disk, e.g. disk.size > 100u * GiB")
      .superRefine((src, ctx) => {
        try {
          parseMatch(src);
        } catch (e) {
          if (!(e instanceof MatchSyntaxError)) throw e;
          ctx.addIssue({
            code: "custom",
            message: `cannot be checked against the node's disks before install: ${e.message} (allowed: comparisons of disk.<field> with a literal, &&, ||, !, parentheses, startsWith/endsWith/contains, glob("pattern", disk.<field>), sizes like 100u * GiB)`,
          });
        }
      })
      .optional(),
  })
  .refine((d) => Object.values(d).some((v) => v !== undefined), {
    error: "selects no disk (allowed: at least one of path, model, serial, wwid, type, minSizeGiB, maxSizeGiB, match)",
  });

export const Nic = z.strictObject({
  /** Stable name given to the NIC (LinkAliasConfig), used everywhere else in the site. */
  alias: LinkName,
  /** Permanent MAC address of the NIC. */
  mac: MacAddress,
});

export const Node = z.strictObject({
  /** Hostname; defaults to the site name. */
  hostname: DnsLabel.optional(),
  /** The router's own address on a management segment: where talosctl and the Kubernetes API are reached. */
  managementAddress: IpAddress(),
  /** Address of the box while it sits in Talos maintenance mode (first install); defaults to managementAddress. */
  maintenanceAddress: IpAddress().optional(),
  /**
   * Pins the box's maintenance-mode certificate for the first install (talosctl --cert-fingerprint: base64 SHA-256
   * of its public key, shown on the box's console). Without it only the NIC MACs identify the box.
   */
  maintenanceCertFingerprint: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, {
      error:
        "is not a certificate fingerprint (allowed: 44 characters of base64, as talosctl --cert-fingerprint takes)",
    })
    .optional(),
  installDisk: InstallDisk,
  /** Wipe the install disk at first install. */
  wipeDisk: z.boolean().default(false),
  /** Physical NICs, matched by permanent MAC and given stable names. */
  nics: z.array(Nic).min(1, { error: "is empty (allowed: at least one NIC with alias and mac)" }),
  /** Extra subject alternative names for the Talos and Kubernetes API certificates. */
  certSANs: z.array(nonEmpty("a DNS name or an IP address")).default([]),
  /** Allow `pulumi destroy` to reset (wipe) the router. Off by default: destroying a stack leaves the box running. */
  allowWipeOnDestroy: z.boolean().default(false),
  /** How long a tried configuration stays before Talos reverts it unless confirmed. */
  tryTimeout: Duration.default("2m"),
  /** How long health checks may take after an apply or upgrade. */
  healthTimeout: Duration.default("10m"),
});

// ---------------------------------------------------------------------------------------------------------------
// router:talos

export const Talos = z.strictObject({
  /** Talos release installed on the node; this program renders the 1.14 configuration format. */
  version: z.string().regex(/^v1\.14\.\d+$/, {
    error: "is not a supported Talos version (allowed: v1.14.x; this program renders the Talos 1.14 config format)",
  }),
  /** Kubernetes version for the control plane and kubelet images. */
  kubernetesVersion: z
    .string()
    .regex(/^v1\.\d+\.\d+$/, { error: "is not a Kubernetes version (allowed: e.g. v1.37.1)" }),
  /** Installer image: the Image Factory vanilla installer, or one built with our data-plane extension. */
  installerImage: ImageRef,
});

// ---------------------------------------------------------------------------------------------------------------
// router:links

const BondMode = z.enum(["802.3ad", "active-backup", "balance-xor", "balance-rr", "balance-tlb", "balance-alb"], {
  error: "is not a bond mode (allowed: 802.3ad, active-backup, balance-xor, balance-rr, balance-tlb, balance-alb)",
});

export const Bond = z.strictObject({
  /** NIC aliases enslaved to the bond. */
  members: z.array(LinkName).min(1, { error: "is empty (allowed: one or more NIC aliases)" }),
  mode: BondMode.default("802.3ad"),
  lacpRate: z.enum(["slow", "fast"], { error: "is not a LACP rate (allowed: slow, fast)" }).optional(),
  xmitHashPolicy: z
    .enum(["layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4"], {
      error: "is not a hash policy (allowed: layer2, layer2+3, layer3+4, encap2+3, encap3+4)",
    })
    .optional(),
  miimon: intIn(0, 10_000, "a link check interval in milliseconds").default(100),
});

export const WanIpv4 = z.discriminatedUnion(
  "mode",
  [
    z.strictObject({ mode: z.literal("dhcp") }),
    z.strictObject({
      mode: z.literal("static"),
      /** Address with prefix length, e.g. 203.0.113.10/24. */
      address: InterfaceCidr(4),
      gateway: IpAddress(4),
    }),
    z.strictObject({ mode: z.literal("none") }),
  ],
  { error: "has no valid mode (allowed: mode dhcp, static or none)" },
);

export const WanIpv6 = z.discriminatedUnion(
  "mode",
  [
    z.strictObject({ mode: z.literal("slaac") }),
    z.strictObject({ mode: z.literal("dhcpv6") }),
    z.strictObject({ mode: z.literal("static"), address: InterfaceCidr(6), gateway: IpAddress(6) }),
    z.strictObject({ mode: z.literal("none") }),
  ],
  { error: "has no valid mode (allowed: mode slaac, dhcpv6, static or none)" },
);

export const WanNat = z.strictObject({
  /** NAT44: masquerade LAN sources to the link's address. */
  ipv4: z
    .enum(["masquerade", "none"], { error: "is not an IPv4 NAT mode (allowed: masquerade, none)" })
    .default("masquerade"),
  /**
   * IPv6: none (routed GUA prefixes), masquerade (NAT66, for ULA-only segments) or prefix (NPTv6-style prefix
   * translation of ipv6Internal to ipv6External).
   */
  ipv6: z
    .enum(["none", "masquerade", "prefix"], { error: "is not an IPv6 NAT mode (allowed: none, masquerade, prefix)" })
    .default("none"),
  ipv6Internal: NetworkCidr(6).optional(),
  ipv6External: NetworkCidr(6).optional(),
});

export const WanProbe = z.strictObject({
  /** Hosts probed through this link (ICMP echo). */
  targets: z
    .array(IpAddress())
    .min(1, { error: "is empty (allowed: one or more addresses to probe)" })
    .default(["1.1.1.1", "9.9.9.9"]),
  interval: Duration.default("2s"),
  timeout: Duration.default("1s"),
  /** Consecutive failed rounds before the link is considered down. */
  failures: intIn(1, 20, "a count of probe rounds").default(3),
  /** Consecutive good rounds before it is used again. */
  successes: intIn(1, 20, "a count of probe rounds").default(2),
});

export const Link = z.strictObject({
  /** A NIC alias from router:node.nics, or the name of a bond defined here. */
  name: LinkName,
  /** wan: an uplink with addresses; trunk: carries the segments' VLANs, no addresses of its own. */
  role: z.enum(["wan", "trunk"], { error: "is not a link role (allowed: wan, trunk)" }),
  /** Firewall zone of a WAN link (segments carry their own zone). */
  zone: DnsLabel.optional(),
  mtu: Mtu.optional(),
  /** Present when this link is a bond of NICs. */
  bond: Bond.optional(),
  /** WAN only. */
  ipv4: WanIpv4.optional(),
  /** WAN only. */
  ipv6: WanIpv6.optional(),
  /** WAN only: lower is preferred; the default route metric derives from it. */
  priority: intIn(1, 999, "a priority (lower is preferred)").optional(),
  /** WAN only: address translation of LAN traffic leaving through this link. */
  nat: WanNat.optional(),
  /** WAN only: health probes that decide failover between WANs. */
  probe: WanProbe.optional(),
  description: z.string().optional(),
});
export const Links = z.array(Link);

// ---------------------------------------------------------------------------------------------------------------
// router:segments

export const Reservation = z.strictObject({
  /** Host name the client is registered under. */
  name: DnsLabel,
  mac: MacAddress,
  ipv4: IpAddress(4).optional(),
  ipv6: IpAddress(6).optional(),
});

export const DhcpRange = z.strictObject({ start: IpAddress(4), end: IpAddress(4) });

export const SegmentDhcp = z.strictObject({
  enabled: z.boolean().default(true),
  /** Dynamic pool; defaults to the upper half of the subnet. */
  range: DhcpRange.optional(),
  /** Lease time in seconds. */
  leaseTime: intIn(60, 7_776_000, "a lease time in seconds").default(86_400),
  reservations: z.array(Reservation).default([]),
  /** DNS servers handed out; default: the router's address in the segment. */
  dnsServers: z.array(IpAddress(4)).min(1).optional(),
  /** NTP servers handed out; default: the router's address when its zone has the ntp service. */
  ntpServers: z.array(IpAddress(4)).min(1).optional(),
  /** Search domains handed out; default: the segment's domain. */
  searchDomains: z.array(DomainName).optional(),
});

export const SegmentDhcpv6 = z.strictObject({
  /** Stateful DHCPv6 addresses in addition to SLAAC (sets the RA's managed flag). */
  enabled: z.boolean().default(false),
  /** Pool inside the segment's /64; default: <prefix>::1000 to <prefix>::1fff. */
  range: z.strictObject({ start: IpAddress(6), end: IpAddress(6) }).optional(),
  leaseTime: intIn(60, 7_776_000, "a lease time in seconds").default(86_400),
});

export const SegmentRa = z.strictObject({
  /** Send router advertisements (the segment needs an IPv6 prefix). */
  enabled: z.boolean().default(true),
  /** Clients may form addresses by SLAAC (the prefix's autonomous flag). */
  slaac: z.boolean().default(true),
  /**
   * Other configuration by DHCPv6 (O flag); default: when DHCPv6 is on. On without dhcpv6.enabled, the router's
   * DHCPv6 serves the segment options only (stateless: DNS servers and search domains, no addresses).
   */
  otherConfig: z.boolean().optional(),
  /** Seconds between unsolicited advertisements (radvd MaxRtrAdvInterval). */
  maxInterval: intIn(4, 1800, "an interval in seconds").default(600),
  /** Router lifetime in seconds (0: not a default router). */
  lifetime: intIn(0, 9000, "a router lifetime in seconds").default(1800),
  /** RDNSS; default: the router's IPv6 address in the segment. */
  dnsServers: z.array(IpAddress(6)).min(1).optional(),
});

const Dscp = z
  .number({ error: "expected a number (a DSCP value from 0 to 63)" })
  .int({ error: "is not an integer (allowed: a DSCP value from 0 to 63)" })
  .min(0, { error: "is outside 0–63 (allowed: a DSCP value from 0 to 63)" })
  .max(63, { error: "is outside 0–63 (allowed: a DSCP value from 0 to 63)" });
const Priority = z
  .number({ error: "expected a number (a priority from 0 to 7)" })
  .int({ error: "is not an integer (allowed: a priority from 0 to 7)" })
  .min(0, { error: "is outside 0–7 (allowed: an 802.1p priority from 0 to 7)" })
  .max(7, { error: "is outside 0–7 (allowed: an 802.1p priority from 0 to 7)" });

export const SegmentQos = z.strictObject({
  /** skb->priority (→ 802.1p on the VLAN) of traffic no DSCP rule matches. */
  defaultPriority: Priority.default(0),
  /** DSCP → priority, e.g. {"46": 6} puts EF (voice) on priority 6. */
  dscpPriority: z
    .record(z.string().regex(/^([0-9]|[1-5][0-9]|6[0-3])$/, { error: "is not a DSCP value (allowed: 0–63)" }), Priority)
    .default({}),
  /** Rewrite the DSCP of everything entering from this segment (e.g. 8 = CS1 for a guest network). */
  rewriteDscp: Dscp.optional(),
  /** Map an incoming 802.1p priority to DSCP where the frame carries a tag. */
  trustPcp: z.boolean().default(false),
});

export const Segment = z.strictObject({
  /** Segment name: also its DNS sub-domain and the label in metrics. */
  name: DnsLabel.max(32, { error: "is longer than 32 characters (allowed: a DNS label of at most 32 characters)" }),
  description: z.string().optional(),
  vlan: VlanId,
  /** Firewall zone (router:zones). */
  zone: DnsLabel,
  /** Trunk link carrying the VLAN; defaults to the site's only trunk. */
  link: LinkName.optional(),
  mtu: Mtu.optional(),
  /** IPv4 subnet; leave it out for an IPv6-only segment (no DHCPv4, no NAT44, no IPv4 address on the link). */
  ipv4: z
    .strictObject({
      cidr: NetworkCidr(4, { min: 8, max: 30 }),
      /** The router's address in the segment; defaults to the first host address. */
      gateway: IpAddress(4).optional(),
    })
    .optional(),
  ipv6: z
    .strictObject({
      /** A /64: SLAAC needs exactly 64 bits of interface identifier. */
      prefix: NetworkCidr(6, { min: 64, max: 64 }),
      /** The router's address in the segment; defaults to `<prefix>::1`. */
      gateway: IpAddress(6).optional(),
    })
    .optional(),
  dhcp: SegmentDhcp.default({ enabled: true, leaseTime: 86_400, reservations: [] }),
  dhcpv6: SegmentDhcpv6.default({ enabled: false, leaseTime: 86_400 }),
  ra: SegmentRa.default({ enabled: true, slaac: true, maxInterval: 600, lifetime: 1800 }),
  /** Marking of traffic entering from this segment (tc on the segment link). */
  qos: SegmentQos.optional(),
});
export const Segments = z.array(Segment);

// ---------------------------------------------------------------------------------------------------------------
// router:zones

export const Zone = z.strictObject({
  /** Not "any" or "router": rules use those words for every zone and for the router itself. */
  name: DnsLabel.refine((n) => n !== "any" && n !== "router", {
    error: (iss) => `"${String(iss.input)}" is a reserved word in rules (allowed: any DNS label except any and router)`,
  }),
  description: z.string().optional(),
  /** Hosts in a management zone may reach the router's own management services (Talos API, Kubernetes API). */
  management: z.boolean().default(false),
  /**
   * What the router itself answers to in this zone. Default: dhcp, dns, ntp and ping for zones with segments,
   * nothing for WAN zones (essential ICMP always passes).
   */
  services: z
    .array(
      z.enum(["dhcp", "dns", "ntp", "mdns", "ping"], {
        error: "is not a router service (allowed: dhcp, dns, ntp, mdns, ping)",
      }),
    )
    .optional(),
});
export const Zones = z.array(Zone);

// ---------------------------------------------------------------------------------------------------------------
// router:cluster

export const Cluster = z.strictObject({
  /** Pod CIDRs: one IPv4, optionally one IPv6. */
  podCidrs: z.array(NetworkCidr()).min(1).max(2),
  /** Service CIDRs: one IPv4, optionally one IPv6. */
  serviceCidrs: z.array(NetworkCidr()).min(1).max(2),
  dnsDomain: DomainName.default("cluster.local"),
});

// ---------------------------------------------------------------------------------------------------------------
// router:cilium

export const Cilium = z.strictObject({
  /** Cilium chart version; the values are checked against this chart's schema. */
  version: z.string().regex(/^1\.20\.\d+$/, { error: "is not a supported Cilium version (allowed: 1.20.x)" }),
  hubble: z
    .strictObject({
      enabled: z.boolean().default(true),
      relay: z.boolean().default(true),
      ui: z.boolean().default(false),
      /** Hubble metrics exported to Prometheus. */
      metrics: z
        .array(nonEmpty("a Hubble metric name such as dns or drop"))
        .default(["dns", "drop", "tcp", "flow", "icmp", "port-distribution"]),
    })
    .default({
      enabled: true,
      relay: true,
      ui: false,
      metrics: ["dns", "drop", "tcp", "flow", "icmp", "port-distribution"],
    }),
  /** Enforce host policies (the router's own endpoint) in BPF. */
  hostFirewall: z.boolean().default(true),
  bandwidthManager: z
    .strictObject({ enabled: z.boolean().default(true), bbr: z.boolean().default(true) })
    .default({ enabled: true, bbr: true }),
});

// ---------------------------------------------------------------------------------------------------------------
// router:ntp

export const Ntp = z.strictObject({
  /** Upstream NTP servers of the router. */
  servers: z
    .array(nonEmpty("an NTP server's name or address"))
    .min(1, { error: "is empty (allowed: at least one NTP server)" }),
});

// ---------------------------------------------------------------------------------------------------------------
// router:registry — where the site's images (installer, data-plane extension) live

export const Registry = z.strictObject({
  /** Registry host[:port], e.g. registry.lab.example:5000. */
  server: z.string().regex(/^[a-z0-9.-]+(:\d+)?$/, { error: "is not a registry host (allowed: host or host:port)" }),
  username: nonEmpty("the registry user name").optional(),
  /** Repository prefix for images this program builds. */
  repository: z
    .string()
    .regex(/^[a-z0-9._/-]+$/, { error: "is not a repository path (allowed: a-z 0-9 . _ - /)" })
    .default("router"),
});

// ---------------------------------------------------------------------------------------------------------------
// router:dataplane — the XDP guard on the WAN and tc accounting on the segments (our Talos system extension)

const Cidr = NetworkCidr();
const RateLimit = z.strictObject({
  /** Tokens per second per source. */
  rate: intIn(1, 10_000_000, "packets per second per source"),
  /** Bucket size: packets a source may send in a burst. */
  burst: intIn(1, 10_000_000, "a burst in packets"),
});
const CountryCode = z
  .string()
  .regex(/^[A-Z]{2}$/, { error: "is not a country code (allowed: ISO 3166-1 alpha-2, e.g. KP)" });

export const Feed = z.strictObject({
  /** Name of the feed: its file name on the node and its label in metrics. */
  name: DnsLabel,
  /** HTTPS URL of a list: one CIDR per line (block/allow) or `CIDR CC` lines (geo). */
  url: z
    .string()
    .regex(/^https:\/\/\S+$/, { error: "is not an HTTPS URL (allowed: https://…; feeds are fetched on the router)" }),
  kind: z.enum(["block", "allow", "geo"], { error: "is not a feed kind (allowed: block, allow, geo)" }),
  /** How often the router refreshes the feed. */
  refresh: Duration.default("6h"),
});

export const Dataplane = z.strictObject({
  /** Attach the XDP guard to the WAN links (the extension is installed either way). */
  enabled: z.boolean().default(true),
  /**
   * How the XDP guard attaches to the WAN links. `native`: in the NIC driver, and in generic (SKB) mode, with a
   * warning and the router_dataplane_xdp_mode metric, where the driver has no native XDP (e.g. Intel e1000e/I219,
   * Realtek r8169). `native-only`: in the driver or not at all — a driver without native XDP leaves the loader
   * degraded (the firewall stays in force). `generic`: always in generic mode.
   */
  xdpMode: z
    .enum(["native", "native-only", "generic"], {
      error: "is not an XDP mode (allowed: native, native-only, generic)",
    })
    .default("native"),
  /** Prometheus metrics of the loader. */
  metricsPort: intIn(1024, 65535, "a TCP port").default(9430),
  bogons: z
    .strictObject({
      ipv4: z.boolean().default(true),
      ipv6: z.boolean().default(true),
      /** More prefixes to treat as bogons (e.g. the ISP's internal ranges seen from outside). */
      extra: z.array(Cidr).default([]),
    })
    .default({ ipv4: true, ipv6: true, extra: [] }),
  /** Sources always allowed: win over every other rule, rate limits included. */
  allowlist: z.array(Cidr).default([]),
  /** Sources always dropped. */
  blocklist: z.array(Cidr).default([]),
  /** Countries whose sources are dropped (needs a geo feed). */
  blockCountries: z.array(CountryCode).default([]),
  /** Lists fetched by the router itself (so they work before and without Kubernetes). */
  feeds: z.array(Feed).default([]),
  rateLimits: z
    .strictObject({
      syn: RateLimit.default({ rate: 200, burst: 400 }),
      icmp: RateLimit.default({ rate: 20, burst: 40 }),
      udp: RateLimit.default({ rate: 5000, burst: 10000 }),
      /** Buckets per class (a power of two); sources share buckets by hash, never insert per source. */
      slots: z
        .number({ error: "expected a number (a power of two between 1024 and 1048576, e.g. 262144)" })
        .int({ error: "is not an integer (allowed: a power of two between 1024 and 1048576, e.g. 262144)" })
        .refine((n) => n >= 1024 && n <= 1_048_576 && (n & (n - 1)) === 0, {
          error: "is not a power of two between 1024 and 1048576 (allowed: e.g. 262144)",
        })
        .default(262_144),
    })
    .default({
      syn: { rate: 200, burst: 400 },
      icmp: { rate: 20, burst: 40 },
      udp: { rate: 5000, burst: 10000 },
      slots: 262_144,
    }),
  /**
   * Where the extension comes from: `build` makes the image from ebpf/ at `pulumi up`, pushes it to
   * router:registry and builds an installer with it (imager); `image` uses a prebuilt extension image.
   */
  extension: z
    .strictObject({
      build: z.boolean().default(true),
      image: ImageRef.optional(),
      /** Container engine that runs the Talos imager on the operator's machine. */
      engine: z
        .enum(["docker", "podman"], { error: "is not a container engine (allowed: docker, podman)" })
        .default("docker"),
    })
    .default({ build: true, engine: "docker" }),
});

// ---------------------------------------------------------------------------------------------------------------
// The whole site.

/** Config keys of the site, in the order they are reported. */
export const siteKeys = {
  site: SiteInfo,
  node: Node,
  talos: Talos,
  links: Links,
  segments: Segments,
  zones: Zones,
  cluster: Cluster,
  cilium: Cilium,
  dns: Dns,
  ntp: Ntp,
  registry: Registry.optional(),
  firewall: Firewall.default({
    defaultAction: "drop",
    policies: [],
    rules: [],
    addressGroups: [],
    logDrops: true,
    logRate: "10/minute",
  }),
  portForwards: PortForwards.default([]),
  routes: Routes.default([]),
  routing: Routing.default({}),
  mdns: Mdns.default({ reflect: [] }),
  dataplane: Dataplane.default({
    enabled: true,
    xdpMode: "native",
    metricsPort: 9430,
    bogons: { ipv4: true, ipv6: true, extra: [] },
    allowlist: [],
    blocklist: [],
    blockCountries: [],
    feeds: [],
    rateLimits: {
      syn: { rate: 200, burst: 400 },
      icmp: { rate: 20, burst: 40 },
      udp: { rate: 5000, burst: 10000 },
      slots: 262_144,
    },
    extension: { build: true, engine: "docker" },
  }),
  observability: Observability.default(OBSERVABILITY_DEFAULTS),
  ids: Ids.default(IDS_DEFAULTS),
} as const;

/** An OSPF key: BIRD's config string (no escapes), printable ASCII without `"`. */
export const OSPF_KEY_PATTERN = /^[\x20\x21\x23-\x7e]{1,80}$/;
const OspfKey = z.string().regex(OSPF_KEY_PATTERN, {
  error: 'is not an OSPF key (allowed: 1 to 80 printable ASCII characters, spaces included, but no ")',
});

/** Config keys holding secrets (set with `pulumi config set --secret`). Never part of the plain Site. */
export const secretKeys = {
  /** Password for router:registry. */
  registryPassword: z.string().min(1, { error: "is empty (allowed: a non-empty password)" }),
  /** Basic-auth password of router:observability.remoteWrite. */
  remoteWritePassword: z.string().min(1, { error: "is empty (allowed: a non-empty password)" }),
  /** Basic-auth password of router:observability.logs.forward. */
  logForwardPassword: z.string().min(1, { error: "is empty (allowed: a non-empty password)" }),
  /** Bearer token sent to the webhook receivers of router:observability.alerts. */
  alertWebhookToken: z.string().min(1, { error: "is empty (allowed: a non-empty token)" }),
  /** SMTP password of the e-mail receivers of router:observability.alerts. */
  alertSmtpPassword: z.string().min(1, { error: "is empty (allowed: a non-empty password)" }),
  /** Key of router:routing.ospf.authentication (BIRD's config string: printable ASCII without `"`). */
  ospfKey: OspfKey,
  /** The second key of router:routing.ospf.authentication.next, while the OSPF key changes. */
  ospfNextKey: OspfKey,
} as const;

export const Site = z.strictObject(siteKeys);
export type Site = z.infer<typeof Site>;
export type SiteInput = z.input<typeof Site>;
export type Segment = z.infer<typeof Segment>;
export type Link = z.infer<typeof Link>;
export type Zone = z.infer<typeof Zone>;
export type Reservation = z.infer<typeof Reservation>;
export type Nic = z.infer<typeof Nic>;
export type InstallDisk = z.infer<typeof InstallDisk>;
export type SecretKey = keyof typeof secretKeys;
export type Dataplane = z.infer<typeof Dataplane>;
export type SegmentQos = z.infer<typeof SegmentQos>;
export type WanNat = z.infer<typeof WanNat>;
export type WanProbe = z.infer<typeof WanProbe>;
