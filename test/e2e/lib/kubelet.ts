/**
 * What the node's kubelet gives the pods the appliance runs, and its port: each container's processes in a memory
 * cgroup of their own under one pod cgroup per DaemonSet (as the kubelet's cgroup manager places them), the
 * service-account token the kubelet mounts where a pod keeps automountServiceAccountToken, and the kubelet's HTTPS
 * port 10250 with its cAdvisor metrics read from those cgroups (test/e2e/tools/kubelet-stand-in.mjs says what of
 * the kubelet it models). The cgroups are made under the harness's own memory cgroup (cgroup v1) or at the root of
 * the unified hierarchy (v2, where a cgroup holding processes cannot delegate its memory controller), named after
 * the appliance's prefix; stop() removes them.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { parse } from "yaml";
import { KUBELET_PORT } from "../../../components/talos-node/firewall";
import type { Daemon, Shell } from "./exec";
import type { PodSpec } from "./rendered";

const CGROUP = "/sys/fs/cgroup";

export interface CgroupHierarchy {
  version: 1 | 2;
  /** Where the hierarchy holding the memory controller is mounted. */
  mount: string;
  /** The directory the appliance's cgroups go under. */
  parent: string;
}

/** The memory controller's hierarchy on this machine and where the harness may make cgroups in it. */
export function memoryHierarchy(): CgroupHierarchy {
  if (existsSync(join(CGROUP, "cgroup.controllers"))) {
    const controllers = readFileSync(join(CGROUP, "cgroup.subtree_control"), "utf8");
    if (!controllers.split(/\s+/).includes("memory")) writeFileSync(join(CGROUP, "cgroup.subtree_control"), "+memory");
    return { version: 2, mount: CGROUP, parent: CGROUP };
  }
  const mount = join(CGROUP, "memory");
  if (!existsSync(join(mount, "memory.usage_in_bytes")))
    throw new Error(`no memory cgroup controller: neither ${CGROUP}/cgroup.controllers nor ${mount}`);
  const own = readFileSync("/proc/self/cgroup", "utf8")
    .split("\n")
    .map((l) => l.split(":"))
    .find((f) => f[1]?.split(",").includes("memory"));
  return { version: 1, mount, parent: join(mount, own?.[2] ?? "/") };
}

/** The appliance's cgroup directory for `prefix`. */
function applianceCgroup(h: CgroupHierarchy, prefix: string): string {
  return join(h.parent, `${prefix}.kubepods`);
}

/** Removes a cgroup tree bottom-up (a cgroup is removed by rmdir once it has no process and no child). */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(join(dir, e.name));
  for (let i = 0; i < 20; i++)
    try {
      rmdirSync(dir);
      return;
    } catch {
      // a process that was just killed can hold it for a moment
      spawnSync("sleep", ["0.05"]);
    }
}

/** Removes what a killed run left for `prefix`. */
export function cleanupLeftoverCgroups(prefix: string): void {
  try {
    removeCgroup(applianceCgroup(memoryHierarchy(), prefix));
  } catch {
    // no memory controller: nothing was made
  }
}

interface StatePod {
  pod: string;
  namespace: string;
  cgroup: string;
  containers: { container: string; image: string; cgroup: string }[];
}

export class Kubelet {
  readonly hierarchy = memoryHierarchy();
  private readonly root: string;
  private readonly dir: string;
  private readonly tokens = new Map<string, { namespace: string; serviceAccount: string }>();
  private readonly pods = new Map<string, StatePod>();
  private readonly rbac: unknown[];
  daemon?: Daemon;

  constructor(
    private readonly shell: Shell,
    prefix: string,
    private readonly node: string,
    /** The render's files (its k8s/ objects give the RBAC). */
    files: ReadonlyMap<string, string>,
  ) {
    this.root = applianceCgroup(this.hierarchy, prefix);
    this.dir = join(shell.work, "kubelet");
    mkdirSync(this.dir, { recursive: true });
    this.rbac = [...files]
      .filter(([p]) => p.startsWith("k8s/"))
      .map(([, text]) => parse(text) as { kind?: string })
      .filter((o) => o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding");
  }

  /** The memory cgroup a pod's container runs in (made now, with its pod's). */
  cgroupOf(pod: PodSpec): string {
    const podDir = join(this.root, `pod-${pod.daemonSet}`);
    const dir = join(podDir, pod.container);
    if (this.hierarchy.version === 2) {
      // v2: the memory controller must be enabled in each parent for its children to account memory
      for (const d of [this.root, podDir]) {
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, "cgroup.subtree_control"), "+memory");
      }
    }
    mkdirSync(dir, { recursive: true });
    const entry = this.pods.get(pod.daemonSet) ?? {
      pod: `${pod.daemonSet}-${this.node}`,
      namespace: pod.namespace,
      cgroup: podDir,
      containers: [],
    };
    if (!entry.containers.some((c) => c.container === pod.container))
      entry.containers.push({ container: pod.container, image: pod.image, cgroup: dir });
    this.pods.set(pod.daemonSet, entry);
    this.writeState();
    return dir;
  }

  /**
   * The directory the kubelet mounts at SA_DIR for a pod's service account: token (one per account and
   * appliance, known to the kubelet's port), ca.crt and namespace.
   */
  serviceAccountDir(namespace: string, serviceAccount: string): string {
    const d = join(this.dir, "serviceaccounts", namespace, serviceAccount);
    if (!existsSync(join(d, "token"))) {
      mkdirSync(d, { recursive: true });
      const token = randomBytes(24).toString("base64url");
      writeFileSync(join(d, "token"), token, { mode: 0o600 });
      writeFileSync(join(d, "namespace"), namespace);
      writeFileSync(join(d, "ca.crt"), readFileSync(this.certificate("cluster-ca").cert));
      this.tokens.set(token, { namespace, serviceAccount });
      this.writeState();
    }
    return d;
  }

  /** A self-signed certificate and its key (made once per name). */
  private certificate(name: string): { key: string; cert: string } {
    const key = join(this.dir, `${name}.key`);
    const cert = join(this.dir, `${name}.crt`);
    if (!existsSync(cert)) {
      const made = spawnSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-days",
          "2",
          "-subj",
          `/CN=${this.node}-${name}`,
          "-keyout",
          key,
          "-out",
          cert,
        ],
        { encoding: "utf8" },
      );
      if (made.status !== 0) throw new Error(`openssl could not make the ${name} certificate: ${made.stderr}`);
    }
    return { key, cert };
  }

  private get stateFile(): string {
    return join(this.dir, "state.json");
  }

  private writeState(): void {
    const state = {
      node: this.node,
      tokens: Object.fromEntries(this.tokens),
      rbac: this.rbac,
      cgroup: { version: this.hierarchy.version, mount: this.hierarchy.mount },
      pods: [...this.pods.values()],
    };
    // whole or not at all: the stand-in reads it on every request
    writeFileSync(`${this.stateFile}.new`, JSON.stringify(state));
    renameSync(`${this.stateFile}.new`, this.stateFile);
  }

  /** Starts the kubelet's port in the router's network namespace. */
  start(router: string, tool: string): Daemon {
    this.writeState();
    const { key, cert } = this.certificate("kubelet");
    // the router's network namespace only: `ip netns exec` would mount the namespace's own /sys over the
    // host's, hiding the cgroups it reads
    this.daemon = this.shell.daemons.start(
      "kubelet",
      [
        "nsenter",
        `--net=/run/netns/${router}`,
        process.execPath,
        tool,
        this.stateFile,
        key,
        cert,
        String(KUBELET_PORT),
      ],
      this.shell.log("kubelet"),
    );
    return this.daemon;
  }

  /** Removes the appliance's cgroups (after its processes have stopped). */
  stop(): void {
    removeCgroup(this.root);
  }
}
