/**
 * Kubernetes objects of the shared network services (DESIGN decision 7): each daemon runs on the host network in
 * the router-system namespace, from our services image pinned by digest, with explicit capabilities instead of
 * privileged mode, resource requests and limits, liveness and readiness probes, and its state on host paths that
 * survive pod restarts and Talos upgrades (/var is preserved across upgrades). Pure: plain objects.
 */
// Types only (erased at run time): the objects are checked field by field against the Kubernetes API types, so a
// misspelt field fails the type check instead of being silently ignored by the API server.
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { ISecret } from "kubernetes-models/v1/Secret";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import { ROUTER_NAMESPACE } from "../talos-node/machine-config";
import {
  KEA_RUN_DIR,
  KEA_STATE_DIR,
  renderAvahi,
  renderChrony,
  renderKea4,
  usesDhcpv4,
  renderKea6,
  renderRadvd,
  usesDhcpv6,
} from "./config";
import {
  BIRD_RUN_DIR,
  BIRD_SECRETS_DIR,
  OSPF_ACTIVE_KEY_FILE,
  OSPF_DEAD_S,
  OSPF_HELLO_S,
  OSPF_KEY_FILE,
  renderBird,
} from "./bird";

import {
  DAEMON_LABEL,
  LABELS,
  configMapName,
  daemonConfigMap,
  hostDaemonSet,
  type DaemonVolume,
  type HostDaemon,
  type Named,
} from "../daemonset";

export { DAEMON_LABEL, configMapName };
export type K8sObject = Named<IDaemonSet> | Named<IConfigMap> | Named<INamespace> | Named<ISecret>;

/** Config files by ConfigMap key (also the artifact names under services/). */
export function serviceConfigs(site: Site, plan: SitePlan, model: PolicyModel): Map<string, string> {
  const files = new Map<string, string>();
  if (usesDhcpv4(plan)) files.set("kea-dhcp4.json", renderKea4(site, plan, model));
  files.set("kea-dhcp6.json", renderKea6(site, plan));
  const radvd = renderRadvd(site, plan);
  if (radvd) files.set("radvd.conf", radvd);
  files.set("chrony.conf", renderChrony(site, plan, model));
  for (const g of site.mdns.reflect) files.set(`avahi-daemon.${g.name}.conf`, renderAvahi(site, plan, g.name));
  const bird = renderBird(site, plan);
  if (bird) files.set("bird.conf", bird);
  return files;
}

const CONFIG_DIR = "/etc/router";
/** BIRD's run directory (an emptyDir) and its control socket, which birdc reaches. */
export { BIRD_RUN_DIR };
export const BIRD_SOCKET = `${BIRD_RUN_DIR}/bird.ctl`;
/** Host directory for the services' state (leases, drift). */
export const HOST_STATE_DIR = "/var/lib/router";
/**
 * The OSPF status the bird pod writes on the node (images/services/router-ospf-status): the try path reads it
 * through the Talos API, the metrics collector through a host path. Its directory, and the file in it.
 */
export const OSPF_STATUS_DIR = `${HOST_STATE_DIR}/routing`;
export const OSPF_STATUS_FILE = `${OSPF_STATUS_DIR}/ospf.json`;
/** Where the bird pod's status container mounts OSPF_STATUS_DIR. */
const OSPF_STATUS_MOUNT = "/var/lib/router-routing";
/** Seconds between two statuses. */
export const OSPF_STATUS_INTERVAL = 5;
/** The bird pod's Secret (the OSPF key file), when OSPF has authentication; its data are the component's secrets. */
export const BIRD_SECRET = "bird-secrets";
export const BIRD_SECRET_KEYS = [OSPF_KEY_FILE.slice(BIRD_SECRETS_DIR.length + 1)];

interface Daemon {
  name: string;
  /** Config keys the daemon reads (its pods roll when they change). */
  configKeys: string[];
  command: string[];
  capabilities: string[];
  resources: { cpu: string; memory: string; cpuLimit: string; memoryLimit: string };
  liveness: string[];
  readiness?: string[];
  state?: { host: string; mount: string };
  run?: string;
  /** Secret items mounted read only (mode 0400) at `mount`. */
  secret?: { name: string; items: string[]; mount: string };
  env?: Record<string, string>;
  sidecar?: HostDaemon["sidecar"];
}

function sh(script: string): string[] {
  return ["/bin/sh", "-c", script];
}

function daemons(site: Site, plan: SitePlan, configs: Map<string, string>): Daemon[] {
  const keaProbe = (sock: string) =>
    sh(`printf '{"command": "status-get"}' | socat -t 2 - UNIX-CONNECT:${sock} | grep -q '"result": 0'`);
  const list: Daemon[] = [];
  if (configs.has("kea-dhcp4.json"))
    list.push({
      name: "kea-dhcp4",
      configKeys: ["kea-dhcp4.json"],
      command: ["kea-dhcp4", "-c", `${CONFIG_DIR}/kea-dhcp4.json`],
      // The raw (AF_PACKET) socket that answers clients without an address, and the UDP socket on port 67 it
      // opens beside it; Kea changes no link, route or address.
      capabilities: ["NET_BIND_SERVICE", "NET_RAW"],
      resources: { cpu: "50m", memory: "64Mi", cpuLimit: "500m", memoryLimit: "256Mi" },
      liveness: keaProbe(`${KEA_RUN_DIR}/kea4-ctrl-socket`),
      state: { host: `${HOST_STATE_DIR}/kea`, mount: KEA_STATE_DIR },
      run: KEA_RUN_DIR,
      env: { KEA_PIDFILE_DIR: KEA_RUN_DIR, KEA_LOCKFILE_DIR: KEA_RUN_DIR },
    });
  list.push({
    name: "chrony",
    configKeys: ["chrony.conf"],
    // -x: Talos owns the system clock; chronyd only serves it.
    command: ["chronyd", "-d", "-x", "-f", `${CONFIG_DIR}/chrony.conf`],
    capabilities: ["NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN"],
    resources: { cpu: "10m", memory: "16Mi", cpuLimit: "100m", memoryLimit: "64Mi" },
    liveness: sh('kill -0 "$(cat /run/chrony/chronyd.pid)"'),
    state: { host: `${HOST_STATE_DIR}/chrony`, mount: "/var/lib/chrony" },
    run: "/run/chrony",
  });
  if (configs.has("radvd.conf"))
    list.push({
      name: "radvd",
      configKeys: ["radvd.conf"],
      command: [
        "radvd",
        "--nodaemon",
        "--config",
        `${CONFIG_DIR}/radvd.conf`,
        "--logmethod",
        "stderr",
        "--pidfile",
        "/run/radvd/radvd.pid",
      ],
      // The raw ICMPv6 socket for advertisements and solicitations; radvd only reads the links' settings.
      capabilities: ["NET_RAW"],
      resources: { cpu: "10m", memory: "16Mi", cpuLimit: "100m", memoryLimit: "64Mi" },
      liveness: sh('kill -0 "$(cat /run/radvd/radvd.pid)"'),
      run: "/run/radvd",
    });
  if (usesDhcpv6(site, plan))
    list.push({
      name: "kea-dhcp6",
      configKeys: ["kea-dhcp6.json"],
      command: ["kea-dhcp6", "-c", `${CONFIG_DIR}/kea-dhcp6.json`],
      // DHCPv6 is plain UDP on port 547 (multicast membership needs no capability); no raw socket.
      capabilities: ["NET_BIND_SERVICE"],
      resources: { cpu: "50m", memory: "64Mi", cpuLimit: "500m", memoryLimit: "256Mi" },
      liveness: keaProbe(`${KEA_RUN_DIR}/kea6-ctrl-socket`),
      state: { host: `${HOST_STATE_DIR}/kea`, mount: KEA_STATE_DIR },
      run: KEA_RUN_DIR,
      env: { KEA_PIDFILE_DIR: KEA_RUN_DIR, KEA_LOCKFILE_DIR: KEA_RUN_DIR },
    });
  for (const g of site.mdns.reflect)
    list.push({
      name: `avahi-${g.name}`,
      configKeys: [`avahi-daemon.${g.name}.conf`],
      command: [
        "avahi-daemon",
        "--no-drop-root",
        "--no-chroot",
        "--no-rlimits",
        "-f",
        `${CONFIG_DIR}/avahi-daemon.${g.name}.conf`,
      ],
      // avahi-daemon gives its runtime directory (the run emptyDir, made by root) to the avahi user and refuses
      // to start when it cannot: "Failed to create runtime directory". Multicast sockets need nothing.
      capabilities: ["CHOWN"],
      resources: { cpu: "10m", memory: "16Mi", cpuLimit: "200m", memoryLimit: "64Mi" },
      liveness: ["avahi-daemon", "--check"],
      run: "/run/avahi-daemon",
    });
  const authenticated = !!site.routing.ospf?.authentication;
  if (configs.has("bird.conf"))
    list.push({
      name: "bird",
      configKeys: ["bird.conf"],
      // bird-start (images/services/bird-start) holds the previous BIRD's routes through a restart, then execs
      // BIRD with these arguments. No -u: BIRD stays uid 0 and uses the capabilities it is given (with -u it
      // would raise NET_BIND_SERVICE and NET_BROADCAST too, sysdep/linux/syspriv.h). No -R: see bird.ts.
      // With authentication it first copies the Secret's keys to where bird.conf includes them (a new pod only).
      command: [
        "bird-start",
        ...(authenticated ? ["--keys", OSPF_KEY_FILE, OSPF_ACTIVE_KEY_FILE] : []),
        "-f",
        "-c",
        `${CONFIG_DIR}/bird.conf`,
        "-s",
        BIRD_SOCKET,
      ],
      // OSPF's raw IP sockets (NET_RAW); the kernel routes it installs and the packets' priority (NET_ADMIN).
      // test/network/bird-privileges.test.ts runs BIRD with exactly these and sees it learn and install a route.
      capabilities: ["NET_ADMIN", "NET_RAW"],
      resources: { cpu: "50m", memory: "32Mi", cpuLimit: "1", memoryLimit: "256Mi" },
      liveness: ["birdc", "-s", BIRD_SOCKET, "show", "status"],
      run: BIRD_RUN_DIR,
      ...(authenticated ? { secret: { name: BIRD_SECRET, items: BIRD_SECRET_KEYS, mount: BIRD_SECRETS_DIR } } : {}),
      // What BIRD says of its OSPF neighbours, on the node, for the try path's adjacency check and the metrics.
      // It only talks to BIRD's socket (the shared run directory) and writes its host directory: no capability.
      // With authentication it also watches the Secret's key file (which the kubelet updates in place when a key,
      // a key id, an algorithm or the next key's `send` changes) and gives BIRD the new keys on trial, without a
      // restart: the neighbours Full before must be heard and stay Full, or the previous keys come back.
      sidecar: {
        name: "ospf-status",
        command: [
          "router-ospf-status",
          ...(authenticated
            ? ["--keys", OSPF_KEY_FILE, OSPF_ACTIVE_KEY_FILE, "--timers", String(OSPF_HELLO_S), String(OSPF_DEAD_S)]
            : []),
          BIRD_SOCKET,
          `${OSPF_STATUS_MOUNT}/ospf.json`,
          String(OSPF_STATUS_INTERVAL),
        ],
        capabilities: [],
        resources: { cpu: "5m", memory: "8Mi", cpuLimit: "100m", memoryLimit: "32Mi" },
        volumes: [{ name: "status", mountPath: OSPF_STATUS_MOUNT, source: { hostPath: OSPF_STATUS_DIR } }],
      },
    });
  return list;
}

function daemonSet(d: Daemon, image: unknown, configs: Map<string, string>): Named<IDaemonSet> {
  const volumes: DaemonVolume[] = [];
  if (d.state) volumes.push({ name: "state", mountPath: d.state.mount, source: { hostPath: d.state.host } });
  if (d.run) volumes.push({ name: "run", mountPath: d.run, source: { memory: "16Mi" } });
  if (d.secret)
    volumes.push({
      name: "secrets",
      mountPath: d.secret.mount,
      readOnly: true,
      source: { secret: d.secret.name, items: d.secret.items },
    });
  return hostDaemonSet({ ...d, configDir: CONFIG_DIR, volumes }, image, configs);
}

/** The DaemonSets' names, in the order the rollout gate checks them. */
export function daemonNames(site: Site, plan: SitePlan, model: PolicyModel): string[] {
  return daemons(site, plan, serviceConfigs(site, plan, model)).map((d) => d.name);
}

/**
 * Every object of the network services, namespace first. `image` is placed as given (the component passes the
 * digest-pinned reference, which is only known once the image is pushed).
 */
export function renderServiceObjects(site: Site, plan: SitePlan, model: PolicyModel, image: unknown): K8sObject[] {
  const configs = serviceConfigs(site, plan, model);
  const namespace: Named<INamespace> = {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: ROUTER_NAMESPACE,
      labels: {
        ...LABELS,
        // Host-network daemons with capabilities: exempt from baseline pod security in this namespace only.
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/audit": "privileged",
        "pod-security.kubernetes.io/warn": "privileged",
      },
    },
  };
  const list = daemons(site, plan, configs);
  return [namespace, ...list.map((d) => daemonConfigMap(d, configs)), ...list.map((d) => daemonSet(d, image, configs))];
}
