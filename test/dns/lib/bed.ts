/**
 * A test bed for the DNS stack in network namespaces: a router namespace with the site's segment links (veths
 * named as on the appliance) and a WAN to an internet namespace, one client namespace per chosen segment, and
 * the router's daemons run the way their DaemonSets run them — each from its HostDaemon spec (the same objects
 * the DaemonSets are built from): its command, as its user with only its capabilities (setpriv), in a mount
 * namespace holding its volumes at their paths (the ConfigMap's files read-only, host paths from the bed's node
 * directory so state survives restarts, Secret files, memory for emptyDirs). The host's filesystem is never
 * changed: /etc, /var/lib and /run are overlaid inside each daemon's mount namespace. Every name carries the
 * bed's tag; cleanup() stops what the bed started and deletes its namespaces.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import type { HostDaemon } from "../../../components/daemonset";
import type { SitePlan } from "../../../components/site/plan";
import { q } from "../../../components/images";

const ROOT = resolve(__dirname, "../../..");
/** Where the stack's own programs are built (router-dns-stats, dns-feeds, router-fetch). */
export const EXTRA_PATH = [join(ROOT, "images/dns/build"), join(ROOT, "images/dns"), join(ROOT, "ebpf/build")];

let programs: string | undefined;
/**
 * A world-readable copy of the stack's own programs, made at the first start: the feeds job and the stats
 * collector run as unprivileged users, which cannot reach a checkout under a private directory (a clone in /root
 * or in a mktemp directory, mode 0700).
 */
export function programsDir(): string {
  if (programs) return programs;
  // not under /tmp: a daemon's /tmp is its own tmpfs (as the pod's)
  const dir = mkdtempSync("/var/tmp/dns-programs-");
  chmodSync(dir, 0o755);
  for (const from of EXTRA_PATH) {
    if (!existsSync(from)) continue;
    for (const f of readdirSync(from)) {
      const src = join(from, f);
      if (statSync(src).isFile() && statSync(src).mode & 0o111 && !existsSync(join(dir, f)))
        copyFileSync(src, join(dir, f));
    }
  }
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o755);
  // a bed's cleanup removes it; the exit hook covers a process that made no bed (a vitest worker exits without it)
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  programs = dir;
  return dir;
}

/** Removes the programs' copy (the next start makes a new one). */
export function removeProgramsDir(): void {
  if (programs) rmSync(programs, { recursive: true, force: true });
  programs = undefined;
}

export interface Proc {
  name: string;
  child: ChildProcess;
  output: string[];
}

export interface Sh {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class DnsBed {
  readonly router: string;
  readonly internet: string;
  readonly clients = new Map<string, string>();
  readonly procs = new Map<string, Proc>();
  /** The node's host paths (hostPath volumes) live below this directory. */
  readonly node: string;
  private readonly namespaces: string[] = [];

  constructor(
    readonly tag: string,
    readonly work: string,
  ) {
    this.router = `${tag}-rtr`;
    this.internet = `${tag}-inet`;
    this.node = join(work, "node");
    mkdirSync(this.node, { recursive: true });
  }

  /** Runs a command to completion (throws on failure unless allowFail). */
  sh(argv: string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}): Sh {
    const r = spawnSync(argv[0], argv.slice(1), {
      encoding: "utf8",
      input: opts.input,
      timeout: opts.timeoutMs ?? 30_000,
      maxBuffer: 64 << 20,
    });
    const res = { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
    if (res.status !== 0 && !opts.allowFail)
      throw new Error(`${argv.join(" ")} failed (${res.status}): ${res.stderr}${res.stdout}`);
    return res;
  }

  /** Runs a command in a namespace. */
  in(ns: string, argv: string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}): Sh {
    return this.sh(["ip", "netns", "exec", ns, ...argv], opts);
  }

  /** Runs a shell script asynchronously in a namespace (probes in several namespaces at once). */
  inAsync(ns: string, script: string, timeoutMs = 30_000): Promise<Sh> {
    return new Promise((done) => {
      const child = spawn("ip", ["netns", "exec", ns, "sh", "-c", script], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("close", (status) => {
        clearTimeout(timer);
        done({ status, stdout, stderr });
      });
    });
  }

  private addNs(name: string): void {
    this.sh(["ip", "netns", "add", name]);
    this.namespaces.push(name);
    this.in(name, ["ip", "link", "set", "lo", "up"]);
  }

  /**
   * The router with every segment of the plan (a veth per segment link, its gateways), a WAN `wan0` to the
   * internet namespace holding `internetAddresses` (the router 198.51.100.1/24), and a client namespace for each
   * of `clientSegments` (the client's own addressing is left to the test: static or DHCP).
   */
  topology(plan: SitePlan, clientSegments: string[], internetAddresses: string[]): void {
    this.addNs(this.router);
    this.addNs(this.internet);
    for (const k of ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
      this.in(this.router, ["sysctl", "-qw", k]);
    this.sh([
      "ip",
      "link",
      "add",
      "wan0",
      "netns",
      this.router,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      this.internet,
    ]);
    this.in(this.router, ["ip", "addr", "add", "198.51.100.1/24", "dev", "wan0"]);
    this.in(this.router, ["ip", "link", "set", "wan0", "up"]);
    for (const a of internetAddresses) this.in(this.internet, ["ip", "addr", "add", `${a}/24`, "dev", "eth0"]);
    this.in(this.internet, ["ip", "link", "set", "eth0", "up"]);
    this.in(this.internet, ["ip", "route", "add", "default", "via", "198.51.100.1"]);
    for (const seg of plan.segments) {
      const client = clientSegments.includes(seg.name) ? `${this.tag}-${seg.name}` : undefined;
      if (client) {
        this.addNs(client);
        this.clients.set(seg.name, client);
        this.sh([
          "ip",
          "link",
          "add",
          seg.link,
          "netns",
          this.router,
          "type",
          "veth",
          "peer",
          "name",
          "eth0",
          "netns",
          client,
        ]);
        this.in(client, ["ip", "link", "set", "eth0", "up"]);
      } else this.in(this.router, ["ip", "link", "add", seg.link, "type", "veth", "peer", "name", `p${seg.vlan}`]);
      this.in(this.router, ["ip", "addr", "add", seg.ipv4!.gatewayCidr, "dev", seg.link]);
      if (seg.ipv6) this.in(this.router, ["ip", "addr", "add", seg.ipv6.gatewayCidr, "dev", seg.link, "nodad"]);
      this.in(this.router, ["ip", "link", "set", seg.link, "up"]);
    }
  }

  /** Gives a client a static address in its segment (IPv4 and, when the segment has IPv6, IPv6) and routes. */
  staticClient(plan: SitePlan, segment: string, host: number): { v4: string; v6?: string } {
    const seg = plan.segments.find((s) => s.name === segment)!;
    const ns = this.clients.get(segment)!;
    const v4 = seg.ipv4!.gateway.replace(/\.\d+$/, `.${host}`);
    this.in(ns, ["ip", "addr", "add", `${v4}/${seg.ipv4!.prefixLength}`, "dev", "eth0"]);
    this.in(ns, ["ip", "route", "add", "default", "via", seg.ipv4!.gateway]);
    if (!seg.ipv6) return { v4 };
    const v6 = `${seg.ipv6.prefix.split("::")[0]}::${host.toString(16)}`;
    this.in(ns, ["ip", "addr", "add", `${v6}/64`, "dev", "eth0", "nodad"]);
    this.in(ns, ["ip", "-6", "route", "add", "default", "via", seg.ipv6.gateway]);
    return { v4, v6 };
  }

  /** Starts a long-running process in a namespace through a shell script; its output is kept. */
  start(name: string, ns: string, script: string): Proc {
    const child = spawn("ip", ["netns", "exec", ns, "sh", "-c", script], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PATH: [programsDir(), process.env.PATH].join(":") },
    });
    const output: string[] = [];
    child.stdout?.on("data", (d: Buffer) => output.push(d.toString()));
    child.stderr?.on("data", (d: Buffer) => output.push(d.toString()));
    const p = { name, child, output };
    this.procs.set(name, p);
    return p;
  }

  /** Shell lines that overlay /etc, /var/lib and /run in the process's own mount namespace. */
  private overlays(name: string): string[] {
    return ["/etc", "/var/lib"]
      .flatMap((dir) => {
        const base = join(this.work, "overlay", name, dir.replace(/\//g, "_"));
        mkdirSync(join(base, "upper"), { recursive: true });
        mkdirSync(join(base, "work"), { recursive: true });
        return [`mount -t overlay overlay -o lowerdir=${dir},upperdir=${base}/upper,workdir=${base}/work ${dir}`];
      })
      .concat(["mount -t tmpfs none /run"]);
  }

  /**
   * Starts a process in the router's namespace with a mount namespace of its own (/etc, /var/lib and /run overlaid
   * as for the daemons): `setup` shell lines run first (e.g. a tmpfs for a state directory), then `argv`.
   */
  startInRouter(name: string, setup: string[], argv: string[]): Proc {
    return this.start(
      name,
      this.router,
      ["set -e", ...this.overlays(name), ...setup, `exec ${argv.map(q).join(" ")}`].join("\n"),
    );
  }

  /** A host path of the node (created when missing), as a hostPath volume sees it. */
  hostPath(path: string): string {
    const p = join(this.node, path);
    mkdirSync(p, { recursive: true });
    return p;
  }

  /**
   * Runs a daemon as its DaemonSet does: `configs` are the ConfigMap's files, `secrets` the Secret's directory,
   * `extraMounts` lines that adjust the node (e.g. a CA bundle), then its init step and its command as its user
   * with only its capabilities.
   */
  startDaemon(d: HostDaemon, configs: Map<string, string>, secrets: string, extraMounts: string[] = []): Proc {
    const confDir = join(this.work, "config", d.name);
    mkdirSync(confDir, { recursive: true });
    for (const k of d.configKeys) writeFileSync(join(confDir, k), configs.get(k) ?? "");
    // Sources live under the bed's work directory (in /tmp): everything is bound before /tmp is the pod's own.
    const lines = [
      "set -e",
      ...this.overlays(d.name),
      ...extraMounts,
      `mkdir -p ${d.configDir}`,
      `mount --bind -o ro ${confDir} ${d.configDir}`,
    ];
    const volumes = [...d.volumes, { name: "tmp", mountPath: "/tmp", readOnly: false, source: { memory: "16Mi" } }];
    for (const v of volumes) {
      lines.push(`mkdir -p ${q(v.mountPath)}`);
      const s = v.source;
      if ("memory" in s) lines.push(`mount -t tmpfs none ${q(v.mountPath)}`);
      else lines.push(`mount --bind ${q("hostPath" in s ? this.hostPath(s.hostPath) : secrets)} ${q(v.mountPath)}`);
    }
    const env = Object.entries(d.env ?? {})
      .map(([k, v]) => `${k}=${q(v)}`)
      .join(" ");
    const caps = (list: string[]) => ["-all", ...list.map((c) => `+${c.toLowerCase()}`)].join(",");
    // The init step sees the volumes writable (as its container mounts them); the daemon reads some only.
    if (d.init)
      lines.push(
        `setpriv --inh-caps=-all --bounding-set=${caps(d.init.capabilities)} ${d.init.command.map(q).join(" ")}`,
      );
    for (const v of volumes) if (v.readOnly) lines.push(`mount -o remount,bind,ro ${q(v.mountPath)}`);
    const user = d.user ? `--reuid=${d.user} --regid=${d.user} --clear-groups ` : "";
    lines.push(
      `exec env ${env} setpriv ${user}--inh-caps=-all --bounding-set=${caps(d.capabilities)} ${d.command.map(q).join(" ")}`,
    );
    return this.start(d.name, this.router, lines.join("\n"));
  }

  /** The last lines each process wrote, and whether it still runs (for failure messages). */
  logs(lines = 15): string {
    return [...this.procs.values()]
      .map((p) => {
        const state =
          p.child.exitCode !== null || p.child.signalCode !== null
            ? `exited ${p.child.exitCode ?? p.child.signalCode}`
            : "running";
        return `== ${p.name} (${state})\n${p.output.join("").split("\n").slice(-lines).join("\n")}`;
      })
      .join("\n");
  }

  /** Stops a process (SIGTERM, then SIGKILL) and waits for it. */
  async stop(name: string, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const p = this.procs.get(name);
    if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
    const gone = new Promise((r) => p.child.once("exit", r));
    p.child.kill(signal);
    const timer = setTimeout(() => p.child.kill("SIGKILL"), 3000);
    await gone;
    clearTimeout(timer);
  }

  /** Stops every process the bed started and deletes its namespaces (killing whatever still runs in them). */
  async cleanup(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((n) => this.stop(n)));
    for (const ns of this.namespaces) {
      const pids = this.sh(["ip", "netns", "pids", ns], { allowFail: true }).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) this.sh(["kill", "-9", pid], { allowFail: true });
      this.sh(["ip", "netns", "del", ns], { allowFail: true });
    }
    removeProgramsDir();
  }
}
