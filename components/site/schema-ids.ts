/**
 * router:ids — intrusion detection and prevention (DESIGN decision 13): Suricata watching the WANs and the
 * segments a site selects (AF_PACKET), inline (NFQUEUE) for the zone pairs it selects, rules fetched on the router
 * with suricata-update, alerts that put their source on the XDP guard's dynamic blocklist, and Zeek for protocol
 * logs. No Pulumi import; cross-field rules live in validate-ids.ts.
 */
import { z } from "zod";
import { DnsLabel, Duration, ImageRef, NetworkCidr } from "./scalars";

const Sid = z
  .number({ error: "expected a number (a Suricata signature id from 1 to 4294967295)" })
  .int({ error: "is not an integer (allowed: a signature id from 1 to 4294967295)" })
  .min(1, { error: "is outside 1–4294967295 (allowed: a signature id)" })
  .max(4_294_967_295, { error: "is outside 1–4294967295 (allowed: a signature id)" });

const Cpu = z
  .number({ error: "expected a number (a CPU index from 0 to 255)" })
  .int({ error: "is not an integer (allowed: a CPU index from 0 to 255)" })
  .min(0, { error: "is outside 0–255 (allowed: a CPU index)" })
  .max(255, { error: "is outside 0–255 (allowed: a CPU index)" });

export const IdsRuleSource = z.strictObject({
  /** Name of the source: its file name under the rules directory and its label in metrics. */
  name: DnsLabel,
  /** HTTPS URL of a rule archive (.tar.gz) or a .rules file; fetched on the router by suricata-update. */
  url: z.string().regex(/^https:\/\/[^\s'"`$\\]+$/, {
    error: "is not an HTTPS URL (allowed: https://… without quotes, spaces or $; rules are fetched on the router)",
  }),
});

export const IdsThreshold = z.discriminatedUnion(
  "type",
  [
    z.strictObject({
      /** Never alert on this signature for the given addresses (Suricata `suppress`). */
      type: z.literal("suppress"),
      sid: Sid,
      /** Whose address `ip` names. */
      track: z.enum(["by_src", "by_dst"], { error: "is not a track (allowed: by_src, by_dst)" }),
      /** Addresses the suppression applies to. */
      ip: NetworkCidr(),
    }),
    z.strictObject({
      /**
       * limit: at most `count` alerts per `seconds`; threshold: one alert every `count` matches; both: one alert
       * once `count` matches happened within `seconds` (Suricata threshold types).
       */
      type: z.enum(["limit", "threshold", "both"], {
        error: "has no valid type (allowed: suppress, limit, threshold, both)",
      }),
      sid: Sid,
      track: z.enum(["by_src", "by_dst"], { error: "is not a track (allowed: by_src, by_dst)" }),
      count: z.number().int().min(1).max(1_000_000),
      seconds: z.number().int().min(1).max(86_400),
    }),
  ],
  { error: "has no valid type (allowed: suppress, limit, threshold, both)" },
);

export const IdsIpsPair = z.strictObject({
  /** Zone the connection comes from. */
  from: DnsLabel,
  /** Zone it goes to. */
  to: DnsLabel,
});

export const Ids = z.strictObject({
  /** Run the IDS stack (Suricata, and Zeek when zeek.enabled). Off by default. */
  enabled: z.boolean().default(false),
  /** Segments watched in IDS mode besides the WANs (which are always watched). */
  segments: z.array(DnsLabel).default([]),
  /**
   * Zone pairs inspected inline: the forward hook hands every packet of their connections that the zone policy
   * accepted to Suricata over NFQUEUE with bypass (traffic keeps flowing, uninspected, while Suricata is down).
   */
  ips: z
    .strictObject({
      pairs: z.array(IdsIpsPair).default([]),
      /** Queues the packets are spread over (fanout by flow), one Suricata thread each. */
      queues: z.number().int().min(1).max(16).default(2),
      /** First queue number (queues are first … first + queues − 1). */
      firstQueue: z.number().int().min(0).max(65_000).default(0),
    })
    .default({ pairs: [], queues: 2, firstQueue: 0 }),
  /** CPU placement of Suricata's threads. */
  cpu: z
    .strictObject({
      /** Capture/worker threads per watched link. */
      threadsPerLink: z.number().int().min(1).max(64).default(1),
      /** CPUs the worker threads are pinned to; empty: no pinning. */
      workerCpus: z.array(Cpu).default([]),
      /** CPUs of the management threads (flow manager, stats); empty: no pinning. */
      managementCpus: z.array(Cpu).default([]),
    })
    .default({ threadsPerLink: 1, workerCpus: [], managementCpus: [] }),
  rules: z
    .strictObject({
      /** Rule sources fetched with suricata-update on the router. */
      sources: z
        .array(IdsRuleSource)
        .default([
          { name: "et-open", url: "https://rules.emergingthreats.net/open/suricata-7.0.10/emerging.rules.tar.gz" },
        ]),
      /** How often the router fetches the sources. */
      updateInterval: Duration.default("24h"),
      /** The site's own rules (Suricata rule syntax, one rule per entry, each with a unique sid). */
      local: z
        .array(
          z.string().min(1, {
            error:
              'is empty (allowed: one Suricata rule on one line, with its own sid, e.g. alert tcp any any -> $HOME_NET 23 (msg:"telnet"; sid:1000001;))',
          }),
        )
        .default([]),
      /** Signatures switched off (from any source). */
      disable: z.array(Sid).default([]),
      /** Suppressions and rate limits of alerts per signature. */
      thresholds: z.array(IdsThreshold).default([]),
    })
    .default({
      sources: [
        { name: "et-open", url: "https://rules.emergingthreats.net/open/suricata-7.0.10/emerging.rules.tar.gz" },
      ],
      updateInterval: "24h",
      local: [],
      disable: [],
      thresholds: [],
    }),
  /** Alerts that put their source on the XDP guard's dynamic blocklist. */
  block: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Alerts of this Suricata severity or a more severe one (1 is the most severe) block their source. */
      severity: z.number().int().min(1).max(4).default(1),
      /** How long a source stays blocked; the entry expires by itself. */
      duration: Duration.default("1h"),
      /** Most sources blocked at once (a full table refuses new entries, counted and logged). */
      maxEntries: z.number().int().min(16).max(1_048_576).default(65_536),
      /** Sources never blocked (besides the guard's allowlist, the management zones and the upstream). */
      never: z.array(NetworkCidr()).default([]),
    })
    .default({ enabled: true, severity: 1, duration: "1h", maxEntries: 65_536, never: [] }),
  zeek: z
    .strictObject({
      /** Zeek protocol logs (conn, dns, http, tls, ssh, files) on the same links. Off by default. */
      enabled: z.boolean().default(false),
      /** Zeek's upstream image (e.g. zeek/zeek), pinned by digest; required when enabled. */
      image: ImageRef.optional(),
    })
    .default({ enabled: false }),
  /** An alert burst: more than `count` alerts within `window` fires the IdsAlertBurst alert. */
  alertBurst: z
    .strictObject({ count: z.number().int().min(1).max(1_000_000).default(50), window: Duration.default("5m") })
    .default({ count: 50, window: "5m" }),
});

export const IDS_DEFAULTS = Ids.parse({});
export type Ids = z.infer<typeof Ids>;
export type IdsThreshold = z.infer<typeof IdsThreshold>;
