/**
 * router:observability — what the router collects about itself (metrics, logs, flows), how long it keeps it, where
 * it forwards it for a fleet, and who hears its alerts. No Pulumi import; cross-field rules live in
 * validate-observability.ts. Secrets (remote-write and log-forwarding passwords, the webhook token, the SMTP
 * password) are separate secret keys (schema.ts `secretKeys`), never fields here.
 */
import { z } from "zod";
import { DnsLabel, Duration, ImageRef, nonEmpty } from "./scalars";

/** Ports of the observability services on the router (management zones only; site/policy.ts). */
export const OBSERVABILITY_PORTS = {
  /** Prometheus (TSDB, query API, rule evaluation). */
  prometheus: 9090,
  /** Alertmanager. */
  alertmanager: 9093,
  /** node exporter (host, conntrack, clock, textfile metrics of the collectors). */
  nodeExporter: 9100,
  /** VictoriaLogs (log store: ingestion and LogsQL queries). */
  logs: 9428,
  /** Grafana (dashboards, anonymous read-only). */
  dashboards: 8080,
} as const;

/** Ports that only the router itself uses (loopback): the log collector's inputs and the local flow collector. */
export const OBSERVABILITY_LOCAL_PORTS = {
  /** syslog-ng: Talos service logs (JSON lines over TCP). */
  talosLogs: 6050,
  /** syslog-ng: Talos kernel messages (JSON lines over TCP). */
  kernelLogs: 6051,
  /** syslog-ng: the firewall's drop records from ulogd2 (one JSON record per UDP datagram). */
  firewallLogs: 6052,
  /** nfacctd: the router's own IPFIX collector (top talkers), fed by softflowd. */
  flows: 4739,
} as const;

const HttpUrl = z
  .string({ error: "expected a string (an http:// or https:// URL)" })
  .regex(/^https?:\/\/[^\s/?#]+(\/[^\s]*)?$/, {
    error: "is not an http(s) URL (allowed: e.g. https://host:8428/api/v1/write)",
  });

const HostPort = z
  .string({ error: "expected a string (host:port)" })
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, {
    error: "is not host:port (allowed: e.g. 192.0.2.10:4739 or [2001:db8::10]:4739)",
  })
  .refine(
    (s) => {
      const p = Number(s.slice(s.lastIndexOf(":") + 1));
      return p >= 1 && p <= 65535;
    },
    { error: "has a port outside 1–65535 (allowed: host:port with a port from 1 to 65535)" },
  );

const Email = z
  .string({ error: "expected a string (an e-mail address)" })
  .regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { error: "is not an e-mail address (allowed: e.g. noc@example.net)" });

const Percent = z.number().min(1).max(100);

export const AlertReceiver = z.strictObject({
  /** Receiver name (Alertmanager's receiver and the summary's label). */
  name: DnsLabel,
  /**
   * An HTTP endpoint that gets Alertmanager's webhook JSON. When the secret `alertWebhookToken` is set, it is sent
   * as a bearer token to every webhook receiver.
   */
  webhook: z.strictObject({ url: HttpUrl }).optional(),
  /** E-mail through an SMTP relay; the secret `alertSmtpPassword` is its password when `username` is set. */
  email: z
    .strictObject({
      /** Recipients. */
      to: z.array(Email).min(1, { error: "is empty (allowed: at least one recipient)" }),
      /** Sender address. */
      from: Email,
      /** SMTP relay as host:port. */
      smarthost: HostPort,
      /** SMTP login (with the secret alertSmtpPassword). */
      username: nonEmpty("the user name to log in with").optional(),
      /** Require STARTTLS (default true: the password never crosses the network in clear). */
      requireTls: z.boolean().default(true),
    })
    .optional(),
});

export const Observability = z.strictObject({
  /** Deploy the observability stack (default true). */
  enabled: z.boolean().default(true),
  /** How often every target is scraped and every rule evaluated (5s–5m). */
  scrapeInterval: Duration.default("15s"),
  /** How long metrics are kept on the router (at least 2h). */
  retention: Duration.default("168h"),
  /** Most disk the TSDB may use, in GiB; the oldest blocks go first. */
  retentionSizeGiB: z.number().int().min(1).max(1024).default(8),
  /** Memory limits of the stack's workloads, in MiB (sized for a 4-core / 8 GB box by default). */
  memoryMiB: z
    .strictObject({
      /** Prometheus. */
      tsdb: z.number().int().min(128).max(16384).default(640),
      /** VictoriaLogs. */
      logs: z.number().int().min(64).max(8192).default(192),
      /** Alertmanager. */
      alertmanager: z.number().int().min(32).max(1024).default(48),
      /** Grafana. */
      dashboards: z.number().int().min(32).max(1024).default(96),
      /** Each collector: node exporter, syslog-ng, ulogd2, softflowd, nfacctd. */
      collector: z.number().int().min(16).max(1024).default(48),
    })
    .default({ tsdb: 640, logs: 192, alertmanager: 48, dashboards: 96, collector: 48 }),
  /**
   * Remote write of every sample to a central TSDB for a fleet (VictoriaMetrics, Thanos, Mimir). With `username`,
   * the secret `remoteWritePassword` is the basic-auth password (https only).
   */
  remoteWrite: z
    .strictObject({
      /** The TSDB's remote-write endpoint. */
      url: HttpUrl,
      /** Basic-auth user. */
      username: nonEmpty("the user name to log in with").optional(),
    })
    .optional(),
  alerts: z
    .strictObject({
      /** Who hears every alert. */
      receivers: z.array(AlertReceiver).default([]),
      /** How often a firing alert is sent again. */
      repeatInterval: Duration.default("4h"),
      /** Thresholds of the rules. */
      thresholds: z
        .strictObject({
          /** A DHCP pool at or above this share of addresses in use (percent). */
          dhcpPoolPercent: Percent.default(90),
          /** Connection tracking at or above this share of its table (percent). */
          conntrackPercent: Percent.default(80),
          /** XDP drops above this many packets per second (5-minute rate). */
          xdpDropsPerSecond: z.number().min(1).default(5000),
          /** DNS SERVFAIL answers above this share of answers (percent, 5-minute rate). */
          dnsServfailPercent: Percent.default(5),
          /** A filesystem at or above this share used (percent). */
          diskPercent: Percent.default(85),
          /** Memory at or above this share used (percent). */
          memoryPercent: Percent.default(90),
          /** A certificate expiring within this many days. */
          certificateDays: z.number().int().min(1).max(365).default(14),
          /** IDS alerts above this many per minute (5-minute rate, per Suricata process) for 5 minutes. */
          idsAlertsPerMinute: z.number().min(1).default(30),
          /** Packets the kernel dropped before Suricata read them, above this share of the captured (percent). */
          idsCaptureDropPercent: Percent.default(1),
        })
        .default({
          dhcpPoolPercent: 90,
          conntrackPercent: 80,
          xdpDropsPerSecond: 5000,
          dnsServfailPercent: 5,
          diskPercent: 85,
          memoryPercent: 90,
          certificateDays: 14,
          idsAlertsPerMinute: 30,
          idsCaptureDropPercent: 1,
        }),
    })
    .default({
      receivers: [],
      repeatInterval: "4h",
      thresholds: {
        dhcpPoolPercent: 90,
        conntrackPercent: 80,
        xdpDropsPerSecond: 5000,
        dnsServfailPercent: 5,
        diskPercent: 85,
        memoryPercent: 90,
        certificateDays: 14,
        idsAlertsPerMinute: 30,
        idsCaptureDropPercent: 1,
      },
    }),
  logs: z
    .strictObject({
      /** How long logs are kept on the router (at least 24h). */
      retention: Duration.default("168h"),
      /**
       * Forward every record to a central store as JSON lines over HTTP (VictoriaLogs' /insert/jsonline or any
       * endpoint that takes newline-delimited JSON). With `username`, the secret `logForwardPassword` is the
       * basic-auth password (https only).
       */
      forward: z
        .strictObject({ url: HttpUrl, username: nonEmpty("the user name to log in with").optional() })
        .optional(),
    })
    .default({ retention: "168h" }),
  flows: z
    .strictObject({
      /** IPFIX collectors (host:port, UDP) that get a flow record of every segment and WAN. */
      collectors: z.array(HostPort).default([]),
      /** A long flow is exported at least this often. */
      activeTimeout: Duration.default("60s"),
      /** Top talkers per segment kept as metrics. */
      topTalkers: z.number().int().min(1).max(100).default(10),
    })
    .default({ collectors: [], activeTimeout: "60s", topTalkers: 10 }),
  /**
   * Upstream images of what Debian does not package. A tag is resolved to its digest once at `pulumi up` and the
   * workload is pinned to it; a reference with @sha256 is used as given.
   */
  images: z
    .strictObject({
      /** VictoriaLogs (Apache-2.0). */
      logs: ImageRef.default("docker.io/victoriametrics/victoria-logs:v1.52.2"),
      /** Grafana (AGPL-3.0: only its upstream image runs; no Grafana code is part of this project). */
      dashboards: ImageRef.default("docker.io/grafana/grafana:11.6.0"),
    })
    .default({
      logs: "docker.io/victoriametrics/victoria-logs:v1.52.2",
      dashboards: "docker.io/grafana/grafana:11.6.0",
    }),
});
export type Observability = z.infer<typeof Observability>;
export type AlertReceiver = z.infer<typeof AlertReceiver>;

/** Defaults of router:observability (the key may be left out). */
export const OBSERVABILITY_DEFAULTS: Observability = Observability.parse({});
