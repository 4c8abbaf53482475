/**
 * Kubernetes objects of the observability stack (DESIGN decisions 7 and 14): host-network workloads in their own
 * namespace, each from our observability image (Debian's Prometheus, Alertmanager, node exporter, syslog-ng,
 * ulogd2, softflowd, pmacct) or an upstream image pinned by digest (VictoriaLogs, Grafana), with memory limits
 * from the site, state on host paths that survive restarts and upgrades, configuration in immutable ConfigMaps
 * named by content, and credentials only in Secrets mounted as files. Pure: plain objects; image references and
 * secret values are placed as given (the component passes outputs).
 */
import { createHash } from "node:crypto";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { durationSeconds } from "../site/duration";
import { OBSERVABILITY_PORTS } from "../site/schema-observability";
import { renderKea4 } from "../network-services/config";
import type { PolicyModel } from "../site/policy";
import { alertmanagerArgs, ALERTMANAGER_CONFIG, ALERTMANAGER_DATA, ALERTMANAGER_SECRETS } from "./alertmanager";
import { TALKERS_CSV, flowLinks, softflowdArgs, NFACCTD_CONFIG } from "./flows";
import {
  LOG_FORWARD_SECRET_CONF,
  LOGS_DATA,
  SYSLOG_NG_CONFIG,
  ULOGD_CONFIG,
  ZEEK_LOGS,
  idsLogSources,
  logStoreArgs,
} from "./logs";
import { ROUTER_IDS_PATHS } from "../ids-stack/suricata";
import { OSPF_DEAD_S } from "../network-services/bird";
import { OSPF_STATUS_DIR, OSPF_STATUS_FILE, OSPF_STATUS_INTERVAL } from "../network-services/k8s";
import { PROMETHEUS_CONFIG_DIR, PROMETHEUS_DATA, PROMETHEUS_SECRETS, prometheusArgs } from "./prometheus";
import { hostPort } from "./targets";
import type { StackFiles } from "./files";

export const OBS_NAMESPACE = "router-observability";
/** Host directory of the stack's state (TSDB, alert silences, log store, collector buffers). */
export const OBS_STATE_DIR = "/var/lib/router/observability";
/** Host directory of the node exporter's textfile collector (the DHCP and top-talker metrics). */
export const TEXTFILE_DIR = `${OBS_STATE_DIR}/textfile`;
const LABELS = { "app.kubernetes.io/part-of": "router", "app.kubernetes.io/managed-by": "pulumi" };

type Meta = { metadata: { name: string; namespace?: string; labels?: Record<string, string> } };
export type ObsObject = Meta & { apiVersion: string; kind: string; [k: string]: unknown };

/** Images of the stack: ours (Debian daemons) and the upstream ones (pinned by digest by the component). */
export interface StackImages {
  own: unknown;
  logs: unknown;
  dashboards: unknown;
  /** Talos' talosctl image (the BGP collector mounts its binary): only on a site with BGP. */
  talosctl?: unknown;
}

/** Talos' talosctl image of a release (siderolabs/talos hack/release: `ghcr.io/siderolabs/talosctl:<version>`). */
export function talosctlImage(version: string): string {
  return `ghcr.io/siderolabs/talosctl:${version}`;
}

/** Where the BGP collector finds talosctl: the talosctl image (one file, /talosctl) mounted as an image volume. */
export const TALOSCTL_DIR = "/opt/talosctl";
/**
 * The Talos service account of the BGP collector: Talos (machine.features.kubernetesTalosAPIAccess) turns it into a
 * Secret of the same name holding a talosconfig with only the os:reader role, mounted where talosctl looks for it
 * (pkg/machinery/constants ServiceAccountMountPath, TalosconfigFilename).
 */
export const TALOS_SA = {
  name: "bgp-metrics",
  roles: ["os:reader"],
  mount: "/var/run/secrets/talos.dev",
  key: "config",
};

interface Mount {
  /** ConfigMap or Secret (by object name) and the keys to mount, or a host/empty directory. */
  source:
    | { configMap: string; keys: string[] }
    | { secret: string; keys: string[] }
    | { host: string }
    | { empty: true }
    | { image: unknown };
  path: string;
  readOnly?: boolean;
}

interface Container {
  name: string;
  image: unknown;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  capabilities?: string[];
  memoryMiB: number;
  mounts: Mount[];
  /** Probe: HTTP path on the management address and port, or a command. */
  probe?: { http: { path: string; port: number } } | { exec: string[] };
  /** Run as this uid (upstream images' own users); root otherwise (capabilities on host links). */
  runAsUser?: number;
}

interface Workload {
  name: string;
  containers: Container[];
  serviceAccount?: string;
  hostPID?: boolean;
}

function contentName(base: string, data: Record<string, unknown>): string {
  const h = createHash("sha256");
  for (const k of Object.keys(data).sort()) h.update(`${k}=${String(data[k])}\0`);
  return `${base}-${h.digest("hex").slice(0, 16)}`;
}

/** The files of each ConfigMap of the stack, by role (files.ts renders them). */
export type ConfigMaps = Record<string, Record<string, string>>;

function volumeOf(m: Mount, i: number, names: Map<string, string>): IVolume {
  const name = `v${i}`;
  const s = m.source;
  if ("configMap" in s)
    return { name, configMap: { name: names.get(s.configMap)!, items: s.keys.map((k) => ({ key: k, path: k })) } };
  if ("secret" in s)
    return {
      name,
      secret: { secretName: s.secret, items: s.keys.map((k) => ({ key: k, path: k })), defaultMode: 0o400 },
    };
  if ("host" in s) return { name, hostPath: { path: s.host, type: "DirectoryOrCreate" } };
  // An OCI image's files, read only (Kubernetes image volumes: beta and on by default since 1.35).
  if ("image" in s) return { name, image: { reference: s.image as string, pullPolicy: "IfNotPresent" } } as IVolume;
  return { name, emptyDir: { medium: "Memory", sizeLimit: "16Mi" } };
}

function containerOf(c: Container, mountIndex: (m: Mount) => number, address: string): IContainer {
  const goLimit = Math.floor(c.memoryMiB * 0.9);
  const probe = c.probe
    ? {
        ...("http" in c.probe
          ? { httpGet: { host: address, path: c.probe.http.path, port: c.probe.http.port } }
          : { exec: { command: c.probe.exec } }),
        initialDelaySeconds: 10,
        periodSeconds: 20,
        timeoutSeconds: 5,
        failureThreshold: 3,
      }
    : undefined;
  return {
    name: c.name,
    image: c.image as string,
    imagePullPolicy: "IfNotPresent",
    ...(c.command ? { command: c.command } : {}),
    ...(c.args ? { args: c.args } : {}),
    // Go daemons keep their heap under the limit instead of meeting the OOM killer.
    env: Object.entries({ GOMEMLIMIT: `${goLimit}MiB`, ...c.env }).map(([name, value]) => ({ name, value })),
    securityContext: {
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsUser: c.runAsUser ?? 0,
      runAsNonRoot: (c.runAsUser ?? 0) !== 0,
      capabilities: { drop: ["ALL"], add: c.capabilities ?? [] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    resources: {
      requests: { cpu: "10m", memory: `${Math.ceil(c.memoryMiB / 2)}Mi` },
      limits: { memory: `${c.memoryMiB}Mi` },
    },
    ...(probe ? { livenessProbe: probe, readinessProbe: probe } : {}),
    volumeMounts: c.mounts.map((m): IVolumeMount => ({
      name: `v${mountIndex(m)}`,
      mountPath: m.path,
      ...(m.readOnly ? { readOnly: true } : {}),
    })),
  };
}

function daemonSet(w: Workload, names: Map<string, string>, address: string): ObsObject & IDaemonSet {
  // A Mount two containers share is one volume of the pod.
  const mounts = [...new Set(w.containers.flatMap((c) => c.mounts))];
  const volumes = mounts.map((m, i) => volumeOf(m, i, names));
  const labels = { ...LABELS, "app.kubernetes.io/name": w.name };
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: w.name, namespace: OBS_NAMESPACE, labels },
    spec: {
      selector: { matchLabels: { "app.kubernetes.io/name": w.name } },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels },
        spec: {
          hostNetwork: true,
          ...(w.hostPID ? { hostPID: true } : {}),
          dnsPolicy: "ClusterFirstWithHostNet",
          priorityClassName: "system-cluster-critical",
          ...(w.serviceAccount
            ? { serviceAccountName: w.serviceAccount, automountServiceAccountToken: true }
            : { automountServiceAccountToken: false }),
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          tolerations: [{ operator: "Exists" }],
          containers: w.containers.map((c) => containerOf(c, (m) => mounts.indexOf(m), address)),
          volumes,
        },
      },
    },
  };
}

const mib = (site: Site) => site.observability.memoryMiB;
/** Secret files by workload (keys only). */
type SecretFiles = Record<string, string[]>;
function secretMount(secrets: SecretFiles, role: string, path: string): Mount[] {
  const keys = secrets[role] ?? [];
  return keys.length ? [{ source: { secret: `${role}-secrets`, keys }, path, readOnly: true }] : [];
}
const cm = (configMap: string, keys: string[], path: string): Mount => ({
  source: { configMap, keys },
  path,
  readOnly: true,
});
const host = (dir: string, path: string, readOnly = false): Mount => ({ source: { host: dir }, path, readOnly });
const run = (path: string): Mount => ({ source: { empty: true }, path });

function metricsWorkloads(site: Site, plan: SitePlan, images: StackImages, secrets: SecretFiles): Workload[] {
  const P = OBSERVABILITY_PORTS;
  const interval = String(durationSeconds(site.observability.scrapeInterval));
  return [
    {
      name: "prometheus",
      serviceAccount: "prometheus",
      containers: [
        {
          name: "prometheus",
          image: images.own,
          command: ["prometheus", ...prometheusArgs(site, plan)],
          memoryMiB: mib(site).tsdb,
          mounts: [
            cm("prometheus", ["prometheus.yml"], `${PROMETHEUS_CONFIG_DIR}/config`),
            cm("prometheus-rules", ["router.rules.yml"], `${PROMETHEUS_CONFIG_DIR}/rules`),
            host(`${OBS_STATE_DIR}/prometheus`, PROMETHEUS_DATA),
            ...secretMount(secrets, "prometheus", PROMETHEUS_SECRETS),
          ],
          probe: { http: { path: "/-/ready", port: P.prometheus } },
        },
      ],
    },
    {
      name: "alertmanager",
      containers: [
        {
          name: "alertmanager",
          image: images.own,
          command: ["prometheus-alertmanager", ...alertmanagerArgs(plan)],
          memoryMiB: mib(site).alertmanager,
          mounts: [
            cm("alertmanager", ["alertmanager.yml"], ALERTMANAGER_CONFIG.replace(/\/[^/]+$/, "")),
            host(`${OBS_STATE_DIR}/alertmanager`, ALERTMANAGER_DATA),
            ...secretMount(secrets, "alertmanager", ALERTMANAGER_SECRETS),
          ],
          probe: { http: { path: "/-/ready", port: P.alertmanager } },
        },
      ],
    },
    {
      name: "node-exporter",
      hostPID: true,
      containers: [
        {
          name: "node-exporter",
          image: images.own,
          command: [
            "prometheus-node-exporter",
            `--web.listen-address=${hostPort(plan.managementAddress, P.nodeExporter)}`,
            "--path.rootfs=/host/root",
            `--collector.textfile.directory=${TEXTFILE_DIR}`,
          ],
          memoryMiB: mib(site).collector,
          mounts: [host("/", "/host/root", true), host(TEXTFILE_DIR, TEXTFILE_DIR, true)],
          probe: { http: { path: "/metrics", port: P.nodeExporter } },
        },
        {
          name: "dhcp-metrics",
          image: images.own,
          command: [
            "router-dhcp-metrics",
            "/etc/router-obs/pools",
            "/var/lib/kea/kea-leases4.csv",
            `${TEXTFILE_DIR}/dhcp.prom`,
            interval,
          ],
          memoryMiB: 16,
          mounts: [
            cm("dhcp", ["pools"], "/etc/router-obs"),
            // Kea's lease file, on the host path the network services keep it (read only).
            host("/var/lib/router/kea", "/var/lib/kea", true),
            host(TEXTFILE_DIR, TEXTFILE_DIR),
          ],
        },
        ...bgpCollector(site, plan, images, interval),
        ...ospfCollector(site, images, interval),
      ],
    },
  ];
}

/**
 * The BGP sessions Talos runs, read through the Talos API with the collector's Talos service account (os:reader)
 * and written for the node exporter (images/observability/router-bgp-metrics). Only on a site with BGP.
 */
function bgpCollector(site: Site, plan: SitePlan, images: StackImages, interval: string): Container[] {
  if (!site.routing.bgp || images.talosctl === undefined) return [];
  return [
    {
      name: "bgp-metrics",
      image: images.own,
      command: [
        "router-bgp-metrics",
        "/etc/router-obs-bgp/bgp-neighbours",
        plan.managementAddress,
        `${TEXTFILE_DIR}/bgp.prom`,
        interval,
      ],
      env: { TALOSCTL: `${TALOSCTL_DIR}/talosctl`, TALOSCONFIG: `${TALOS_SA.mount}/${TALOS_SA.key}` },
      memoryMiB: 64,
      mounts: [
        cm("bgp", ["bgp-neighbours"], "/etc/router-obs-bgp"),
        { source: { image: images.talosctl }, path: TALOSCTL_DIR, readOnly: true },
        { source: { secret: TALOS_SA.name, keys: [TALOS_SA.key] }, path: TALOS_SA.mount, readOnly: true },
        host(TEXTFILE_DIR, TEXTFILE_DIR),
      ],
    },
  ];
}

/**
 * The OSPF neighbours as BIRD reports them: the bird pod's status container writes them to the node
 * (images/services/router-ospf-status); this reads that file, read only, and writes it for the node exporter
 * (images/observability/router-ospf-metrics). Only on a site with OSPF. The dead interval turns BIRD's seconds to
 * dead into the age of the last hello; a status older than three of its intervals is stale.
 */
function ospfCollector(site: Site, images: StackImages, interval: string): Container[] {
  if (!site.routing.ospf) return [];
  return [
    {
      name: "ospf-metrics",
      image: images.own,
      command: [
        "router-ospf-metrics",
        OSPF_STATUS_FILE,
        String(OSPF_DEAD_S),
        String(OSPF_STATUS_INTERVAL),
        `${TEXTFILE_DIR}/ospf.prom`,
        interval,
      ],
      // jq over at most 64 KiB of status (the script's cap) stays near 11 MiB, whatever the file holds
      memoryMiB: 32,
      mounts: [host(OSPF_STATUS_DIR, OSPF_STATUS_DIR, true), host(TEXTFILE_DIR, TEXTFILE_DIR)],
    },
  ];
}

function logWorkloads(site: Site, plan: SitePlan, images: StackImages, secrets: SecretFiles): Workload[] {
  const ids = idsLogSources(site);
  return [
    {
      name: "logs",
      containers: [
        {
          name: "victoria-logs",
          image: images.logs,
          // The upstream image's binary.
          command: ["/victoria-logs-prod", ...logStoreArgs(site, plan)],
          memoryMiB: mib(site).logs,
          mounts: [host(`${OBS_STATE_DIR}/logs`, LOGS_DATA)],
          probe: { http: { path: "/health", port: OBSERVABILITY_PORTS.logs } },
        },
      ],
    },
    {
      name: "log-collector",
      containers: [
        {
          name: "syslog-ng",
          image: images.own,
          command: [
            "syslog-ng",
            "-F",
            "--no-caps",
            "-f",
            SYSLOG_NG_CONFIG,
            "-R",
            "/var/lib/syslog-ng/syslog-ng.persist",
            "-p",
            "/run/syslog-ng/syslog-ng.pid",
            "-c",
            "/run/syslog-ng/syslog-ng.ctl",
          ],
          memoryMiB: mib(site).collector,
          mounts: [
            cm("log-collector", ["syslog-ng.conf"], SYSLOG_NG_CONFIG.replace(/\/[^/]+$/, "")),
            host(`${OBS_STATE_DIR}/syslog-ng`, "/var/lib/syslog-ng"),
            host("/var/log/pods", "/var/log/pods", true),
            run("/run/syslog-ng"),
            // the collector binds the IDS's EVE socket here; Zeek's logs are read only
            ...(ids.suricata ? [host(ROUTER_IDS_PATHS.events, ROUTER_IDS_PATHS.events)] : []),
            ...(ids.zeek ? [host(ZEEK_LOGS, ZEEK_LOGS, true)] : []),
            ...secretMount(secrets, "log-collector", LOG_FORWARD_SECRET_CONF.replace(/\/[^/]+$/, "")),
          ],
        },
        {
          name: "ulogd",
          image: images.own,
          command: ["ulogd", "-c", ULOGD_CONFIG],
          // Binding an NFLOG group needs CAP_NET_ADMIN in the host's network namespace.
          capabilities: ["NET_ADMIN"],
          memoryMiB: 16,
          mounts: [cm("log-collector", ["ulogd.conf"], "/etc/ulogd"), run("/run/ulogd")],
        },
      ],
    },
  ];
}

function flowWorkload(site: Site, plan: SitePlan, images: StackImages): Workload {
  const interval = String(durationSeconds(site.observability.scrapeInterval));
  // One emptyDir for both: nfacctd writes the aggregate the talker script reads.
  const flowsRun = run("/run/flows");
  return {
    name: "flows",
    containers: [
      {
        name: "nfacctd",
        image: images.own,
        command: ["nfacctd", "-f", NFACCTD_CONFIG],
        memoryMiB: mib(site).collector,
        mounts: [cm("flows", ["nfacctd.conf"], "/etc/pmacct"), flowsRun],
      },
      {
        name: "talker-metrics",
        image: images.own,
        command: [
          "router-talker-metrics",
          "/etc/router-obs/links",
          TALKERS_CSV,
          `${TEXTFILE_DIR}/talkers.prom`,
          String(site.observability.flows.topTalkers),
          interval,
        ],
        memoryMiB: 16,
        mounts: [cm("flows", ["links"], "/etc/router-obs"), flowsRun, host(TEXTFILE_DIR, TEXTFILE_DIR)],
      },
      ...flowLinks(plan).map((l) => ({
        name: `softflowd-${l.link.replace(/[^a-z0-9]/g, "-")}`,
        image: images.own,
        command: softflowdArgs(site, l),
        capabilities: ["NET_RAW", "NET_ADMIN"],
        memoryMiB: 16,
        mounts: [run("/run/softflowd")],
      })),
    ],
  };
}

function dashboardWorkload(site: Site, plan: SitePlan, images: StackImages): Workload {
  return {
    name: "grafana",
    containers: [
      {
        name: "grafana",
        image: images.dashboards,
        memoryMiB: mib(site).dashboards,
        runAsUser: 472,
        env: {
          GF_SERVER_HTTP_ADDR: plan.managementAddress,
          GF_SERVER_HTTP_PORT: String(OBSERVABILITY_PORTS.dashboards),
          GF_PATHS_PROVISIONING: "/etc/grafana/provisioning",
          GF_PATHS_DATA: "/var/lib/grafana",
          // Dashboards are code: everyone on a management zone reads them, nobody logs in to edit them.
          GF_AUTH_ANONYMOUS_ENABLED: "true",
          GF_AUTH_ANONYMOUS_ORG_ROLE: "Viewer",
          GF_AUTH_DISABLE_LOGIN_FORM: "true",
          GF_ANALYTICS_REPORTING_ENABLED: "false",
          GF_ANALYTICS_CHECK_FOR_UPDATES: "false",
        },
        mounts: [
          cm("grafana", ["datasources.yaml"], "/etc/grafana/provisioning/datasources"),
          cm("grafana", ["dashboards.yaml"], "/etc/grafana/provisioning/dashboards"),
          cm("grafana-dashboards", [], "/var/lib/grafana-dashboards"),
          host(`${OBS_STATE_DIR}/grafana`, "/var/lib/grafana"),
        ],
        probe: { http: { path: "/api/health", port: OBSERVABILITY_PORTS.dashboards } },
      },
    ],
  };
}

function rbac(): ObsObject[] {
  return [
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "prometheus", namespace: OBS_NAMESPACE, labels: LABELS },
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "router-prometheus", labels: LABELS },
      // Read metrics only: the kubelet's (nodes/metrics) and the API server's (/metrics).
      rules: [
        { apiGroups: [""], resources: ["nodes/metrics"], verbs: ["get"] },
        { nonResourceURLs: ["/metrics", "/metrics/cadvisor"], verbs: ["get"] },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "router-prometheus", labels: LABELS },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "router-prometheus" },
      subjects: [{ kind: "ServiceAccount", name: "prometheus", namespace: OBS_NAMESPACE }],
    },
  ];
}

/**
 * Every object of the stack, namespace first. `secretData` holds each Secret's files (values as given: outputs
 * in the component, placeholders offline); a workload mounts its Secret only when it has one.
 */
export function renderObservabilityObjects(
  site: Site,
  plan: SitePlan,
  files: StackFiles,
  images: StackImages,
  secretData: Record<string, Record<string, unknown>>,
): ObsObject[] {
  const names = new Map<string, string>();
  const configMaps: ObsObject[] = [];
  for (const [role, data] of Object.entries(files.configMaps).sort(([a], [b]) => a.localeCompare(b))) {
    const name = contentName(role, data);
    names.set(role, name);
    configMaps.push({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name, namespace: OBS_NAMESPACE, labels: { ...LABELS, "router.edge/config": role } },
      immutable: true,
      data,
    });
  }
  const secrets: ObsObject[] = Object.entries(secretData)
    .filter(([, d]) => Object.keys(d).length > 0)
    .map(([role, d]) => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: `${role}-secrets`, namespace: OBS_NAMESPACE, labels: LABELS },
      type: "Opaque",
      stringData: d,
    }));
  const withSecret: SecretFiles = Object.fromEntries(
    Object.entries(secretData).map(([role, d]) => [role, Object.keys(d).sort()]),
  );
  const workloads = [
    ...metricsWorkloads(site, plan, images, withSecret),
    ...logWorkloads(site, plan, images, withSecret),
    flowWorkload(site, plan, images),
    dashboardWorkload(site, plan, images),
  ];
  // The dashboards ConfigMap mounts every key it has.
  const dash = workloads
    .find((w) => w.name === "grafana")!
    .containers[0].mounts.find((m) => "configMap" in m.source && m.source.configMap === "grafana-dashboards")!;
  (dash.source as { keys: string[] }).keys = Object.keys(files.configMaps["grafana-dashboards"] ?? {}).sort();
  const namespace: ObsObject = {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: OBS_NAMESPACE,
      labels: {
        ...LABELS,
        // Host-network collectors with capabilities: exempt from baseline pod security in this namespace only.
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/audit": "privileged",
        "pod-security.kubernetes.io/warn": "privileged",
      },
    },
  };
  // Talos makes the collector's talosconfig Secret from this (a CRD of Talos, there once the feature is on).
  const talosServiceAccount: ObsObject[] = workloads.some((w) => w.containers.some((c) => c.name === "bgp-metrics"))
    ? [
        {
          apiVersion: "talos.dev/v1alpha1",
          kind: "ServiceAccount",
          metadata: { name: TALOS_SA.name, namespace: OBS_NAMESPACE, labels: LABELS },
          spec: { roles: TALOS_SA.roles },
        },
      ]
    : [];
  return [
    namespace,
    ...rbac(),
    ...talosServiceAccount,
    ...configMaps,
    ...secrets,
    ...workloads.map((w) => daemonSet(w, names, plan.managementAddress)),
  ];
}

/** The DaemonSets' names (the rollout follows them). */
export function observabilityDaemons(): string[] {
  return ["alertmanager", "flows", "grafana", "log-collector", "logs", "node-exporter", "prometheus"];
}

/** Kea's pools of the node exporter's DHCP script: "<subnet id> <segment> <start> <end>" per segment. */
export function renderPools(site: Site, plan: SitePlan, model: PolicyModel): string {
  const kea = JSON.parse(renderKea4(site, plan, model)) as {
    Dhcp4: { subnet4: { id: number; pools: { pool: string }[]; "user-context": { segment: string } }[] };
  };
  return kea.Dhcp4.subnet4
    .flatMap((s) =>
      s.pools.map((p) => {
        const [start, end] = p.pool.split("-").map((x) => x.trim());
        return `${s.id} ${s["user-context"].segment} ${start} ${end}\n`;
      }),
    )
    .join("");
}
