/**
 * What each layer publishes about itself for review tooling, as structured facts (its `review` output), the way
 * it publishes its SUMMARY section (DESIGN decision 15): `npm run diff` compares the facts of two renders into a
 * semantic summary, and the policy pack's intent policies check them. A layer computes its facts from its own
 * plan with a pure function beside its component; nothing here or in the tools recomputes a layer's plan.
 *
 * A layer's facts sit under one key of `LayerReview`; a new layer adds its key (e.g. `ids`) and fills it.
 */

/** A firewall zone as the policy sees it. */
export interface ZoneFacts {
  name: string;
  management: boolean;
  /** A zone of WAN links. */
  wan: boolean;
  /** Segments in the zone. */
  segments: string[];
  /** Router services answered in the zone (dhcp, dns, ntp, mdns, ping). */
  services: string[];
}

/** One cell of the zone matrix: new connections from `from` to `to` (a zone or "router"). */
export interface MatrixCellFacts {
  from: string;
  to: string;
  /** Verdict for traffic no rule singles out ("services" toward the router: only the zone's services). */
  verdict: string;
  /** The rules refining the pair, in match order, each as `action proto/ports [to …] (name)`. */
  rules: string[];
}

/** A port forward, resolved to the zone of its target. */
export interface ForwardFacts {
  name: string;
  protocol: string;
  /** Public port or range. */
  port: string;
  /** WAN links it listens on. */
  wans: string[];
  /** Inside IPv4 target and port. */
  to: string;
  /** Zone of the IPv4 target (null: outside every segment). */
  toZone: string | null;
  /** IPv6 pinhole target and its zone, if any. */
  ipv6?: string;
  /**
   * The IPv6 target and the port it is reached at, `[address]:port`: toPort like the IPv4 target (NAT66 to a unique
   * local host, or a global host whose port the router moves), the public port behind prefix translation.
   */
  ipv6To?: string;
  ipv6Zone?: string | null;
  /** Allowed sources ("any" when unrestricted). */
  sources: string[] | "any";
  hairpin: boolean;
}

/** What the router's verdict is for one management service asked from a management zone. */
export interface ManagementAccessFacts {
  zone: string;
  service: string;
  port: number;
  verdict: string;
}

/** The firewall layer's facts (DataPlane: the zone policy and what it exposes). */
export interface FirewallFacts {
  zones: ZoneFacts[];
  matrix: MatrixCellFacts[];
  forwards: ForwardFacts[];
  /** What the WAN zones can open: one line per opening, `proto/ports → destination (what opens it)`. */
  wanExposure: string[];
  /** The Talos and Kubernetes APIs from each management zone. */
  managementAccess: ManagementAccessFacts[];
  /** The rules, compiled. */
  rules: RuleFacts[];
  /** Zone-pair policies, `from>to` (zones or "any") → action. */
  policies: Record<string, string>;
  defaultAction: string;
}

/** A rule of router:firewall.rules as compiled (first match wins). */
export interface RuleFacts {
  name: string;
  from: string[] | "any";
  to: string[] | "any";
  toRouter: boolean;
  protocols: string[] | "any";
  /** Port ranges `a` or `a-b`; absent: every port. */
  ports?: string[];
  /** True when the rule names source or destination addresses. */
  addressed: boolean;
  action: string;
}

/** One segment's addressing and what its clients are told to use. */
export interface SegmentFacts {
  name: string;
  vlan: number;
  zone: string;
  link: string;
  /** Null for an IPv6-only segment. */
  ipv4: string | null;
  gateway4: string | null;
  ipv6: string | null;
  gateway6: string | null;
  /** DHCPv4 and DHCPv6 pools, `start-end`. */
  pools: string[];
  /** Reserved hosts, `name address…`. */
  reservations: string[];
  /** DNS servers handed out by DHCPv4, DHCPv6 and router advertisements (RDNSS). */
  dnsServers: string[];
  /** NTP servers handed out by DHCPv4. */
  ntpServers: string[];
}

/** Which router service a layer actually runs for which zones (DNS by the DNS layer, NTP by chrony, …). */
export interface ServedFacts {
  service: "dns" | "ntp";
  zones: string[];
}

/** Intrusion detection coverage (the IDS layer): zone pairs the site requires and the pairs it covers. */
export interface IdsFacts {
  /** `from>to` pairs the site requires inspected, with the mode it asks for. */
  required: { from: string; to: string; mode: "detect" | "inline" }[];
  /** `from>to` pairs the layer inspects, and how. */
  covered: { from: string; to: string; mode: "detect" | "inline" }[];
}

/** The observability layer: who reaches its endpoints and how alert receivers' credentials are held. */
export interface ObservabilityFacts {
  /** The router's metrics, alert, log and dashboard endpoints, with the zones the policy lets open them. */
  endpoints: { name: string; port: number; reachableFrom: string[] }[];
  /** Alert receivers; `credential`: the secret key it sends and whether its value is a Pulumi secret. */
  receivers: { name: string; credential?: { key: string; set: boolean; pulumiSecret: boolean } }[];
}

/** Dynamic routing run by the network services (BIRD's OSPF). */
export interface RoutingFacts {
  ospf: {
    area: string;
    /** Active OSPF segments as `segment (link)`: BIRD's adjacencies there are held through its restarts. */
    segments: string[];
    passive: string[];
    redistribute: string[];
    /** SHA-256 of the rendered bird.conf: a change restarts BIRD. */
    configDigest: string;
    /** `hmac-sha256, key id 1`, or `none` (the key itself is a secret: never here). */
    authentication: string;
    /** The keys BIRD holds (none without authentication): id, algorithm, and whether it sends with it. */
    keys?: { keyId: number; algorithm: string; sent: boolean }[];
  };
}

/** A physical (or bonded) link of the node. */
export interface LinkFacts {
  name: string;
  role: "wan" | "trunk";
  /** WAN links: their zone, failover priority and addressing. */
  zone?: string;
  priority?: number;
  addressing?: string;
  /** Bond members, when the link is a bond. */
  members?: string[];
}

/** The node itself. */
export interface NodeFacts {
  site: string;
  hostname: string;
  fqdn: string;
  managementAddress: string;
  links: LinkFacts[];
}

/** A layer's `review` output: the keys it owns. */
export interface LayerReview {
  node?: NodeFacts;
  firewall?: FirewallFacts;
  segment?: SegmentFacts;
  served?: ServedFacts[];
  /** Profile-like settings a reviewer compares by key (DNS upstreams and filtering, …): key → value. */
  profiles?: Record<string, string>;
  ids?: IdsFacts;
  observability?: ObservabilityFacts;
  routing?: RoutingFacts;
}

/** Everything the layers published, collected. */
export interface ReviewModel {
  node?: NodeFacts;
  firewall?: FirewallFacts;
  segments: SegmentFacts[];
  served: ServedFacts[];
  profiles: Record<string, string>;
  ids?: IdsFacts;
  observability?: ObservabilityFacts;
  routing?: RoutingFacts;
}

/** Collects the layers' `review` outputs (in any order) into one model; keys are sorted for stable output. */
export function collectReview(reviews: readonly LayerReview[]): ReviewModel {
  const model: ReviewModel = { segments: [], served: [], profiles: {} };
  for (const r of reviews) {
    if (r.node) model.node = r.node;
    if (r.firewall) model.firewall = r.firewall;
    if (r.segment) model.segments.push(r.segment);
    model.served.push(...(r.served ?? []));
    Object.assign(model.profiles, r.profiles ?? {});
    if (r.ids) model.ids = r.ids;
    if (r.observability) model.observability = r.observability;
    if (r.routing) model.routing = r.routing;
  }
  model.served.sort((a, b) => a.service.localeCompare(b.service));
  model.segments.sort((a, b) => a.vlan - b.vlan || a.name.localeCompare(b.name));
  model.profiles = Object.fromEntries(Object.entries(model.profiles).sort(([a], [b]) => a.localeCompare(b)));
  return model;
}
