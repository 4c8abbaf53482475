/**
 * Drives the fake Talos node (test/fixtures/fake-node/node.js, a daemon with real timers and its state on disk) and
 * runs the lifecycle scripts against it through the talosctl and curl shims in test/fixtures/fake-bin.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { tempDir } from "./temp";

export const FAKE_BIN = join(__dirname, "../fixtures/fake-bin");
const DAEMON = join(__dirname, "../fixtures/fake-node/node.js");

export interface Disk {
  dev_path: string;
  size: number;
  readonly: boolean;
  cdrom: boolean;
  model?: string;
  serial?: string;
  wwid?: string;
  transport?: string;
  rotational?: boolean;
}

export interface Link {
  name: string;
  permanentAddr: string;
  hardwareAddr?: string;
  /** The alias a LinkAliasConfig gave it (LinkStatus spec.alias). */
  alias?: string;
  /** LinkStatus spec.type (default ether) and spec.kind (vlan, bond…; default none). */
  type?: string;
  kind?: string;
}

export interface Identity {
  links: Link[];
  disks: Disk[];
  /** SPKI SHA-256 of the maintenance certificate, base64 (what `--cert-fingerprint` takes). */
  certFingerprint: string;
}

export interface Faults {
  /** Subcommands (`health`, `get:probestatus`, `service`) or endpoints (`readyz`, `loader-health`) that never answer. */
  hang?: string[];
  /** Every call and request takes this long. */
  slowMs?: number;
  /** These subcommands take this long (ms). */
  slowCalls?: Record<string, number>;
  /** The node reboots this long after it receives a try. */
  rebootAfterTryMs?: number;
  /** The box at the maintenance address is another one. */
  identity?: Partial<Identity>;
  unhealthyImages?: string[];
  pullFail?: string[];
  probe?: boolean;
  kubeDown?: boolean;
  clusterUnhealthy?: boolean;
  /** nft refuses a ruleset that contains this text. */
  rejectRulesetContaining?: string;
  dataplaneService?: string;
  /** Addresses of the running configuration's VLAN links that the kernel never gets (as the configuration writes them). */
  dropAddresses?: string[];
  /** IPv6 addresses of those links that another host already has: duplicate address detection fails. */
  duplicateAddresses?: string[];
  /** BGP neighbours (addresses) whose BFD session stays in Init (fake-node/bgp.js). */
  bfdStuckInit?: string[];
  /** Installer images on which no BGP session comes up. */
  bgpBrokenImages?: string[];
  /**
   * OSPF neighbours (router ids) whose hellos stop reaching BIRD under any configuration that becomes active after
   * the fault is set (fake-node/ospf.js): a change that drops OSPF.
   */
  ospfSilenced?: string[];
  /** The bird pod's status container no longer writes: the status file keeps its last content. */
  ospfStatusStopped?: boolean;
}

/** An OSPF router on one of the node's segments (fake-node/ospf.js). */
export interface OspfNeighbour {
  routerId: string;
  address: string;
  /** The router's link it is on (a segment's VLAN link). */
  interface: string;
  /** Its OSPF area on that link (default 0.0.0.0): the bird pod's model forms no adjacency in another. */
  area?: string;
}

/** A router on the other side of a BGP session (fake-node/bgp.js). */
export interface BgpNeighbour {
  address: string;
  /** Its own AS. */
  asn: number;
  /** The AS it expects this router to have. */
  peerAsn: number;
  /** It runs BFD on the session. */
  bfd?: boolean;
  routerId?: string;
  /** Prefixes it sends. */
  prefixes?: number;
}

export interface NodeOptions {
  managementAddress: string;
  maintenanceAddress: string;
  metricsPort: number;
  identity: Identity;
  /** The node already runs this configuration (skip maintenance mode). */
  installed?: boolean;
  savedConfig?: string;
  bootstrapped?: boolean;
  image?: string;
  kubeconfig?: string;
  /** SHA-256 (hex) of the client certificate the Kubernetes API accepts. */
  kubeClientFingerprint?: string;
  rebootMs?: number;
  /** The BGP neighbours around the node. */
  bgpNeighbours?: BgpNeighbour[];
  /** How long a BGP session takes to establish (BFD as long again); default 400 ms. */
  bgpEstablishMs?: number;
  /** The OSPF neighbours around the node, and BIRD's and the status container's timers (fake-node/ospf.js). */
  ospfNeighbours?: OspfNeighbour[];
  ospfHelloMs?: number;
  ospfDeadMs?: number;
  ospfFullMs?: number;
  ospfStatusMs?: number;
  ospfPodStartMs?: number;
}

export interface Received {
  event: string;
  mode?: string;
  sha256?: string;
  insecure?: boolean;
  image?: string;
  at: number;
}

export interface NodeState {
  installed: boolean;
  bootstrapped: boolean;
  down: boolean;
  saved: string | null;
  running: string | null;
  trying: boolean;
  slots: { current: string; previous: string | null };
  reboots: number;
  received: Received[];
  loader: { rulesetSha: string | null; generation: string | null; ruleset: string };
}

export interface FakeCall {
  argv: string[];
  sub: string;
  files: Record<string, { path: string; kind: string; mode?: string; sha256?: string }>;
  code: number;
}

export interface ScriptRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  calls: FakeCall[];
  seconds: number;
}

export interface RunOptions {
  stdin?: string;
  env?: Record<string, string>;
  /** Kill the script with this signal once its stderr matches. */
  killWhen?: { stderr: RegExp; signal: NodeJS.Signals };
  /** Extra directories first on PATH. */
  path?: string[];
  /** Working directory of the script. */
  cwd?: string;
}

export const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

export class FakeNode {
  private constructor(
    readonly dir: string,
    private readonly proc: ChildProcess,
  ) {}

  static async start(opts: NodeOptions): Promise<FakeNode> {
    const dir = tempDir("fake-node-");
    writeFileSync(join(dir, "node.json"), JSON.stringify(opts));
    const proc = spawn(process.execPath, [DAEMON, dir], { stdio: ["ignore", "inherit", "inherit"] });
    const node = new FakeNode(dir, proc);
    const deadline = Date.now() + 10_000;
    while (!existsSync(join(dir, "ready.json"))) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error("the fake node did not start");
      await new Promise((r) => setTimeout(r, 20));
    }
    return node;
  }

  async request<T>(req: Record<string, unknown>): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      const conn = connect(join(this.dir, "node.sock"));
      let buf = "";
      conn.on("connect", () => conn.write(JSON.stringify(req) + "\n"));
      conn.on("data", (d) => (buf += d));
      conn.on("end", () => resolve(JSON.parse(buf) as T));
      conn.on("error", reject);
    });
  }

  async fault(faults: Faults): Promise<void> {
    await this.request({ op: "fault", faults });
  }

  /** Frames (Buffers) that cross a link (by kernel name) in turn, one every everyMs, while a capture listens. */
  async traffic(link: string, frames: Buffer[], everyMs = 5): Promise<void> {
    await this.request({ op: "traffic", link, frames: frames.map((f) => f.toString("hex")), everyMs });
  }

  /** The captures the node ran: link, filter length (instructions), packets sent, how each ended. */
  async captures(): Promise<{ link: string; filter: number; packets: number; ended: string }[]> {
    return await this.request({ op: "captures" });
  }

  /** The node's resources of a type as `talosctl get TYPE -o json` prints them (with this site's credentials). */
  async talosGet(type: string): Promise<{ metadata: { id: string; type: string }; spec: Record<string, unknown> }[]> {
    return await this.request({ op: "resources", type });
  }

  async state(): Promise<NodeState> {
    return await this.request<NodeState>({ op: "state" });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    await exited;
  }

  calls(): FakeCall[] {
    const log = join(this.dir, "calls.jsonl");
    return existsSync(log)
      ? readFileSync(log, "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as FakeCall)
      : [];
  }

  /** Runs a script with the shims first on PATH; resolves when it exits. */
  async run(script: string, opts: RunOptions = {}): Promise<ScriptRun> {
    const before = this.calls().length;
    const started = Date.now();
    const child = spawn("bash", ["-c", script], {
      stdio: ["pipe", "pipe", "pipe"],
      cwd: opts.cwd,
      env: {
        PATH: [...(opts.path ?? []), FAKE_BIN, process.env.PATH].join(":"),
        HOME: process.env.HOME ?? "/tmp",
        FAKE_NODE_DIR: this.dir,
        ROUTER_RETRY_MS: "50",
        ...opts.env,
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => {
      stderr += d;
      if (opts.killWhen && opts.killWhen.stderr.test(stderr)) child.kill(opts.killWhen.signal);
    });
    child.stdin!.on("error", () => {});
    child.stdin!.end(opts.stdin ?? "");
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      child.on("close", (c, s) => r([c, s])),
    );
    return { code, signal, stdout, stderr, calls: this.calls().slice(before), seconds: (Date.now() - started) / 1000 };
  }
}

/** The subcommands in call order, e.g. ["get", "get", "apply-config", "version"]. */
export function subs(run: ScriptRun): string[] {
  return run.calls.map((c) => c.sub);
}

/** Value following a flag in a call's argv. */
export function flag(call: FakeCall, name: string): string | undefined {
  const i = call.argv.indexOf(name);
  return i >= 0 ? call.argv[i + 1] : undefined;
}
