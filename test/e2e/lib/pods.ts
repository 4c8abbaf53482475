/**
 * The router's own daemons, run the way the node runs them:
 * - the data-plane loader like its Talos extension service: the ExtensionServiceConfig files at their mount
 *   paths, a bpffs of its own at /sys/fs/bpf, its state directory, per the extension's service spec;
 * - every DaemonSet of the render like its pod: each container's command and environment in the router's
 *   network namespace (hostNetwork), in a mount namespace of its own holding the pod's volumes (ConfigMap files,
 *   hostPath state that survives restarts, emptyDirs). Nothing of the host's filesystem is changed (missing
 *   mount points come from overlays). Once its volumes are mounted, each container's command runs with exactly
 *   the capabilities its securityContext leaves it (setpriv from util-linux sets the bounding set to them, clears
 *   the inheritable and ambient sets, and sets no_new_privs where privilege escalation is off; uid 0 then holds
 *   exactly the bounding set, as in the container). A stack that adds DaemonSets to the render gets them run here
 *   as they are. A pod whose command exists only in its upstream image (UPSTREAM_BINARIES) runs the same program
 *   built from the Go module proxy at the image's version (tools/README.md) in its place; one of our own images'
 *   scripts (IMAGE_SCRIPTS) runs from its file in this repository.
 */
import { withoutNftQueue } from "../../helpers/nft-queue";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { q } from "../../../components/images";
import { CONFIG_PATH, EXTENSION_NAME, STATE_DIR } from "../../../components/dataplane/loader-config";
import { ETCD_PORTS, TALOS_API_PORTS } from "../../../components/talos-node/firewall";
import { KUBE_API_PORT } from "../../../components/talos-node/machine-config";
import { toolBinary } from "../../../tools/go-tools";
import type { Daemon, Shell } from "./exec";
import type { HostConfig, PodSpec } from "./rendered";
import type { Kubelet } from "./kubelet";
import { SA_DIR } from "../../../components/observability-stack/targets";

export const ROOT = join(__dirname, "../../..");
export const LOADER = join(ROOT, "ebpf/build/router-dataplane");
/**
 * Commands of upstream images that Debian does not package → the binary that stands in for them: VictoriaLogs'
 * image runs /victoria-logs-prod (VictoriaLogs' app/victoria-logs/multiarch/Dockerfile); tools/victoria-logs
 * builds it at the version of the site's default image.
 */
export const UPSTREAM_BINARIES: Readonly<Record<string, string>> = {
  "/victoria-logs-prod": toolBinary("victoria-logs"),
};

/**
 * Commands our own images install from this repository rather than from a Debian package → the file they are
 * built from: the observability image's metric scripts (images/observability/build-image.sh puts them in
 * /usr/local/bin, first on the image's PATH) and the services image's bird-start and router-ospf-status.
 */
export const IMAGE_SCRIPTS: Readonly<Record<string, string>> = {
  "router-dhcp-metrics": join(ROOT, "images/observability/router-dhcp-metrics"),
  "router-talker-metrics": join(ROOT, "images/observability/router-talker-metrics"),
  "router-ospf-metrics": join(ROOT, "images/observability/router-ospf-metrics"),
  // images/services/build-image.sh puts them in /usr/bin
  "bird-start": join(ROOT, "images/services/bird-start"),
  "router-ospf-status": join(ROOT, "images/services/router-ospf-status"),
};

/**
 * What of its image's own root filesystem a command of IMAGE_SCRIPTS relies on beyond the pod's volumes:
 * directories it writes (a tmpfs in the pod, so the host's stay untouched) and files whose content in the image
 * differs from the host's (bind-mounted over the host's in the pod).
 */
export const IMAGE_FILESYSTEM: Readonly<Record<string, ImageFilesystem>> = {};

export interface ImageFilesystem {
  /** Directories of the image the command writes. */
  writable: string[];
  /** Files of the image by path → their content. */
  files: Record<string, () => string>;
}

const EXTENSION_SPEC = join(ROOT, "ebpf/extension/rootfs/usr/local/etc/containers/router-dataplane.yaml");

/**
 * Files of a Talos node that services mount. resolv.conf: with host DNS on (the rendered ResolverConfig),
 * Talos points the node's resolver at its host DNS on 127.0.0.53; in the appliance the DNS area runs a stand-in
 * there (areas/dns-internet.ts), else nothing answers.
 */
const NODE_FILES: Record<string, string> = {
  "/etc/resolv.conf": "nameserver 127.0.0.53\n",
};

interface ServiceSpec {
  container: {
    entrypoint: string;
    args: string[];
    mounts: { source: string; destination: string; options?: string[] }[];
  };
}

function sanitize(s: string): string {
  return s.replace(/[^a-z0-9-]/gi, "-");
}

export class RouterPods {
  loader?: Daemon;
  /** Running pods by DaemonSet name (a restarted pod replaces its entry). */
  readonly running = new Map<string, Daemon>();
  /**
   * Secrets the pods mount, by name → a directory holding one file per key. The render has no Secret (its data
   * are Pulumi secrets): an area that runs a pod mounting one provides test values here.
   */
  readonly secrets = new Map<string, string>();
  /**
   * What a stack's image brings that the host has differently: a file's path in the image → the file that stands
   * in for it (bound read-only in every pod, e.g. a CA bundle holding a test CA).
   */
  readonly imageFiles = new Map<string, string>();
  /** Directories of programs a stack's image brings (searched before the host's PATH). */
  readonly imagePath: string[] = [];

  constructor(
    private readonly shell: Shell,
    private readonly router: string,
    private readonly host: HostConfig,
    readonly specs: PodSpec[],
    private readonly configMaps: Map<string, Map<string, string>>,
    /** The node's kubelet: each container's cgroup and the pod's service-account token. */
    private readonly kubelet: Kubelet,
  ) {}

  /**
   * Runs `argv` in the router's network namespace and a mount namespace prepared by `mounts` (in `cgroup` when
   * given).
   */
  private startInRouter(
    name: string,
    mounts: string[],
    argv: string[],
    env: Record<string, string> = {},
    cgroup?: string,
  ): Daemon {
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    // The overlays that make missing mount points (mountPoint) come first, like a container's root filesystem
    // before its mounts: an overlay of an ancestor mounted later would hide every mount made under it before
    // (an overlay of /etc for a ConfigMap at /etc/router hid the node's resolv.conf and the image's CA bundle).
    const overlay = (l: string) => l.startsWith("mount -t overlay ");
    const ordered = [...mounts.filter(overlay), ...mounts.filter((l) => !overlay(l))];
    const script = ["set -e", ...ordered, `exec env ${[...envArgs, ...argv].map(q).join(" ")}`].join("\n");
    // `ip netns exec` gives every process a mount namespace of its own with the namespace's /sys.
    return this.shell.daemon(name, this.router, ["sh", "-c", script], undefined, cgroup);
  }

  /** Shell lines that make `path` usable as a mount point without touching the host's filesystem. */
  private mountPoint(path: string, scratch: string, overlaid: Set<string>): string[] {
    if (existsSync(path)) return [];
    let anc = dirname(path);
    while (!existsSync(anc)) anc = dirname(anc);
    // one overlay per directory however it is named (/var/run is /run)
    anc = realpathSync(anc);
    const lines: string[] = [];
    if (!overlaid.has(anc)) {
      overlaid.add(anc);
      const up = join(scratch, "overlay", sanitize(anc), "upper");
      const wk = join(scratch, "overlay", sanitize(anc), "work");
      mkdirSync(up, { recursive: true });
      mkdirSync(wk, { recursive: true });
      lines.push(`mount -t overlay overlay -o lowerdir=${anc},upperdir=${up},workdir=${wk} ${anc}`);
    }
    lines.push(`mkdir -p ${q(path)}`);
    return lines;
  }

  /** A file of the node (see NODE_FILES), written on first use. */
  private nodeFile(path: string): string {
    const p = join(this.shell.work, "node", path);
    if (!existsSync(p)) {
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, NODE_FILES[path]);
    }
    return p;
  }

  /** Host paths of the node (hostPath volumes, the extension's state) live here. */
  hostPath(path: string): string {
    const p = join(this.shell.work, "node", path);
    mkdirSync(p, { recursive: true });
    return p;
  }

  private extensionSpec(): ServiceSpec {
    if (existsSync(EXTENSION_SPEC)) return parse(readFileSync(EXTENSION_SPEC, "utf8")) as ServiceSpec;
    return {
      container: {
        entrypoint: "/usr/bin/router-dataplane",
        args: ["--config", CONFIG_PATH],
        mounts: [
          { source: "/sys/fs/bpf", destination: "/sys/fs/bpf" },
          { source: STATE_DIR, destination: STATE_DIR },
        ],
      },
    };
  }

  /**
   * The data-plane loader as the Talos extension service runs it, with the ExtensionServiceConfig files (or
   * `replace`'s content for some of them: another render of the same site's files).
   */
  startLoader(replace: Map<string, string> = new Map()): Daemon {
    const rendered = this.host.extensionFiles.get(EXTENSION_NAME);
    if (!rendered) throw new Error(`no ExtensionServiceConfig ${EXTENSION_NAME} in the machine configuration`);
    // This kernel has no nft queue expression: the IDS queue's bypass verdicts load as accept (nft-queue.ts).
    const files = new Map(
      [...rendered].map(([p, c]) => [
        p,
        p.endsWith(".nft") ? withoutNftQueue(replace.get(p) ?? c) : (replace.get(p) ?? c),
      ]),
    );
    const scratch = join(this.shell.work, "ext");
    const root = join(scratch, "files");
    for (const [path, content] of files) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), content);
    }
    const spec = this.extensionSpec();
    const overlaid = new Set<string>();
    const mounts: string[] = [];
    for (const m of spec.container.mounts) {
      const ro = (m.options ?? []).includes("ro") ? "-o ro " : "";
      if (m.destination === "/sys/fs/bpf") mounts.push("mount -t bpf bpf /sys/fs/bpf");
      else if (NODE_FILES[m.source] !== undefined)
        mounts.push(`mount --bind ${ro}${q(this.nodeFile(m.source))} ${q(m.destination)}`);
      else {
        mounts.push(...this.mountPoint(m.destination, scratch, overlaid));
        mounts.push(`mount --bind ${ro}${q(this.hostPath(m.source))} ${q(m.destination)}`);
      }
    }
    // Talos mounts each configuration file read-only at its path.
    for (const path of files.keys()) {
      mounts.push(...this.mountPoint(dirname(path), scratch, overlaid));
      mounts.push(`touch ${q(path)}`, `mount --bind -o ro ${q(join(root, path))} ${q(path)}`);
    }
    this.loader = this.startInRouter("router-dataplane", mounts, [LOADER, ...spec.container.args]);
    return this.loader;
  }

  /** Starts the pods of the render `wanted` names (by DaemonSet, or DaemonSet-container). */
  startAll(wanted: (name: string) => boolean): void {
    for (const pod of this.specs) if (wanted(pod.name)) this.start(pod);
  }

  /**
   * Starts (or restarts) one pod; `capabilities` replaces the container's own set (a test showing that a daemon
   * given less than it renders fails). `asUser`: the command runs as the container's securityContext user
   * (runAsUser/runAsGroup, no supplementary groups); otherwise as root, since the owners its volumes need (which
   * the pod's init step sets) are not modelled for every pod.
   */
  start(pod: PodSpec, capabilities: string[] = pod.capabilities, asUser = false): Daemon {
    const scratch = join(this.shell.work, "pods", pod.name);
    const overlaid = new Set<string>();
    const mounts: string[] = [];
    // first, our image's script at its path in the image: run from the checkout it could be hidden by what the pod
    // mounts later (its /tmp, or a writable /var/tmp, hides a checkout there); a bind keeps the file it was given
    const script = this.imageScript(pod.command[0], scratch, overlaid);
    if (script) mounts.push(...script.lines);
    // then: the pod's /tmp emptyDir hides the scratch directory (under the host's /tmp) once mounted
    const image = IMAGE_FILESYSTEM[pod.command[0]];
    if (image) mounts.push(...this.imageMounts(image, scratch, overlaid));
    // The kubelet writes every pod's resolv.conf (for ClusterFirstWithHostNet: the cluster's DNS, which forwards
    // to the node's host DNS). No cluster DNS runs here: a pod gets the node's (never the host machine's resolver).
    mounts.push(`mount --bind -o ro ${q(this.nodeFile("/etc/resolv.conf"))} /etc/resolv.conf`);
    // the image's files first: the pod's volumes (a /tmp of its own, say) are mounted over the image
    for (const [path, file] of [...this.imageFiles].sort(([a], [b]) => a.localeCompare(b))) {
      // a missing file is made only inside an overlay: the host's filesystem is never changed
      if (existsSync(dirname(path)) && !existsSync(path))
        throw new Error(`image file ${path}: the host has its directory but not the file to bind over`);
      mounts.push(...this.mountPoint(dirname(path), scratch, overlaid));
      if (!existsSync(path)) mounts.push(`touch ${q(path)}`);
      mounts.push(`mount --bind -o ro ${q(file)} ${q(path)}`);
    }
    pod.volumes.forEach((v, i) => {
      let src: string;
      if (v.source.kind === "configMap") {
        src = join(scratch, `config-${i}`);
        mkdirSync(src, { recursive: true });
        const cm = this.configMaps.get(v.source.name);
        const items = v.source.items ?? [...(cm?.keys() ?? [])].map((key) => ({ key, path: key }));
        for (const item of items) {
          const content = cm?.get(item.key);
          if (content === undefined)
            throw new Error(`pod ${pod.name}: ConfigMap ${v.source.name} has no key ${item.key}`);
          writeFileSync(join(src, item.path), content);
        }
      } else if (v.source.kind === "hostPath") src = this.hostPath(v.source.path);
      else if (v.source.kind === "secret") src = this.secret(pod, v.source.name, v.source.items, scratch, i);
      else if (v.source.kind === "image")
        // Only the BGP collector mounts one (talosctl), and it needs the Talos API, which the appliance has not.
        throw new Error(`pod ${pod.name}: the appliance runs no pod with an image volume (${v.source.reference})`);
      else {
        // one directory per pod and volume: the containers of a pod share it, and it outlives their restarts;
        // the kubelet makes it world-writable (pkg/volume/emptydir/empty_dir.go, perm 0777)
        src = this.emptyDirOf(pod.daemonSet, v.source.volume);
        if (!existsSync(src)) {
          mkdirSync(src, { recursive: true });
          chmodSync(src, 0o777);
        }
      }
      if (v.subPath) {
        src = join(src, v.subPath);
        mkdirSync(src, { recursive: true });
      }
      mounts.push(...this.mountPoint(v.mountPath, scratch, overlaid));
      mounts.push(`mount --bind ${v.readOnly ? "-o ro " : ""}${q(src)} ${q(v.mountPath)}`);
    });
    // the kubelet mounts the service account's token where the pod keeps automountServiceAccountToken
    if (pod.serviceAccount) {
      mounts.push(...this.mountPoint(SA_DIR, scratch, overlaid));
      const sa = this.kubelet.serviceAccountDir(pod.namespace, pod.serviceAccount);
      mounts.push(`mount --bind -o ro ${q(sa)} ${q(SA_DIR)}`);
    }
    const [cmd, ...args] = pod.command;
    const command = [script?.path ?? UPSTREAM_BINARIES[cmd] ?? cmd, ...args];
    const d = this.startInRouter(
      pod.name,
      mounts,
      [...privileges(capabilities, pod.noNewPrivs, asUser ? pod.runAs : undefined), ...command],
      {
        PATH: [...this.imagePath, process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"].join(":"),
        ...pod.env,
      },
      this.kubelet.cgroupOf(pod),
    );
    this.running.set(pod.name, d);
    return d;
  }

  /** Mount commands that give a pod the image's own directories and files a command of the image relies on. */
  /**
   * Shell lines that put one of IMAGE_SCRIPTS at its image path (an absolute command, else /usr/local/bin, first
   * on the image's PATH), bound read-only from the checkout; a missing file is made inside an overlay of its
   * directory, never on the host's filesystem.
   */
  private imageScript(
    cmd: string,
    scratch: string,
    overlaid: Set<string>,
  ): { lines: string[]; path: string } | undefined {
    const file = IMAGE_SCRIPTS[cmd];
    if (!file) return undefined;
    const path = cmd.startsWith("/") ? cmd : join("/usr/local/bin", cmd);
    const lines = existsSync(path)
      ? []
      : [...this.mountPoint(join(dirname(path), ".image-scripts"), scratch, overlaid), `touch ${q(path)}`];
    lines.push(`mount --bind -o ro ${q(file)} ${q(path)}`);
    return { lines, path };
  }

  private imageMounts(image: ImageFilesystem, scratch: string, overlaid: Set<string>): string[] {
    const lines = image.writable.flatMap((dir) => [
      ...this.mountPoint(dir, scratch, overlaid),
      `mount -t tmpfs -o mode=0755 tmpfs ${q(dir)}`,
    ]);
    for (const [path, content] of Object.entries(image.files)) {
      const src = join(scratch, "image", path);
      mkdirSync(dirname(src), { recursive: true });
      writeFileSync(src, content());
      lines.push(`mount --bind -o ro ${q(src)} ${q(path)}`);
    }
    return lines;
  }

  private emptyDirOf(daemonSet: string, volume: string): string {
    return join(this.shell.work, "pods", `${daemonSet}.empty`, volume);
  }

  /** The host directory of a pod's emptyDir volume mounted at `mountPath` (a socket a daemon made there, say). */
  emptyDir(name: string, mountPath: string): string {
    const pod = this.spec(name);
    const v = pod.volumes.find((x) => x.mountPath === mountPath);
    if (v?.source.kind !== "emptyDir") throw new Error(`pod ${name} has no emptyDir at ${mountPath}`);
    return this.emptyDirOf(pod.daemonSet, v.source.volume);
  }

  /** A secret volume's directory: the Secret's keys a pod asks for (all when no items), copied for it. */
  private secret(
    pod: PodSpec,
    name: string,
    items: { key: string; path: string }[] | undefined,
    scratch: string,
    index: number,
  ): string {
    const from = this.secrets.get(name);
    if (!from) throw new Error(`pod ${pod.name}: no test values for Secret ${name} (RouterPods.secrets)`);
    const src = join(scratch, `secret-${index}`);
    mkdirSync(src, { recursive: true });
    for (const item of items ?? readdirSync(from).map((key) => ({ key, path: key }))) {
      if (!existsSync(join(from, item.key))) throw new Error(`pod ${pod.name}: Secret ${name} has no key ${item.key}`);
      copyFileSync(join(from, item.key), join(src, item.path));
      chmodSync(join(src, item.path), 0o400);
    }
    return src;
  }

  /** A pod of the render by its DaemonSet name. */
  spec(name: string): PodSpec {
    const p = this.specs.find((x) => x.name === name);
    if (!p) throw new Error(`no pod ${name} in the render`);
    return p;
  }

  /** The running pod of a DaemonSet. */
  pod(name: string): Daemon {
    const d = this.running.get(name);
    if (!d) throw new Error(`pod ${name} is not running`);
    return d;
  }
}

/**
 * The network services' pods (components/network-services): what every area needs, since the clients take their
 * addresses from them. Other stacks' pods run when an area asks for them (Area.pods).
 */
export function networkServicePod(name: string): boolean {
  return /^(kea-dhcp[46]|radvd|chrony|avahi-.+)$/.test(name);
}

/**
 * The observability stack's pods the appliance runs (components/observability-stack; a DaemonSet of several
 * containers runs each as its own pod, named `<daemonset>-<container>`), and the flows DaemonSet's (nfacctd, the
 * top-talker script and a softflowd per link).
 */
export const OBSERVABILITY_PODS: ReadonlySet<string> = new Set([
  "prometheus",
  "alertmanager",
  "node-exporter-node-exporter",
  "node-exporter-dhcp-metrics",
  "node-exporter-ospf-metrics",
  "logs",
  "log-collector-ulogd",
  "log-collector-syslog-ng",
]);
export function observabilityPod(name: string): boolean {
  return OBSERVABILITY_PODS.has(name) || name.startsWith("flows-");
}

/** The DNS stack's pods the appliance runs (the DNS area runs the feeds job on demand, not on its timer). */
export function dnsPod(name: string): boolean {
  return name.startsWith("dns-") && name !== "dns-feeds";
}

/**
 * The setpriv prefix that runs a command as a container with `capabilities` (names as Kubernetes writes them)
 * runs it: bounding set exactly those, inheritable and ambient sets empty, no_new_privs when asked, as `user`
 * (its uid and gid, no supplementary groups) when given.
 */
export function privileges(capabilities: string[], noNewPrivs: boolean, user?: { uid: number; gid: number }): string[] {
  const bounding = ["-all", ...capabilities.map((c) => `+${c.toLowerCase()}`)].join(",");
  return [
    "setpriv",
    ...(user ? [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups"] : []),
    `--bounding-set=${bounding}`,
    "--inh-caps=-all",
    "--ambient-caps=-all",
    ...(noNewPrivs ? ["--no-new-privs"] : []),
    "--",
  ];
}

/**
 * Ports of the node's own services the appliance answers with the probe tool: DNS, Talos API and trustd,
 * Kubernetes API, etcd (components/talos-node/firewall.ts names them); the kubelet's port is the kubelet stand-in
 * (kubelet.ts). DNS only while the DNS stack's pods do not run: they answer port 53 on the gateways themselves
 * (Talos' own host DNS is on 127.0.0.53).
 */
export function standInPorts(dns = true): { tcp: number[]; udp: number[] } {
  const etcd = ETCD_PORTS.split("-").map(Number);
  const dnsPort = dns ? [53] : [];
  return { tcp: [...dnsPort, ...TALOS_API_PORTS, KUBE_API_PORT, ...etcd], udp: dnsPort };
}
