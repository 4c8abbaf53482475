/**
 * The bird pod inside a test's network namespace, as the node runs it: the rendered DaemonSet's container command
 * (components/network-services/k8s.ts) with its configuration and control socket paths moved under the test's
 * directory (the ConfigMap's /etc/router and the run emptyDir), started with exactly the container's capabilities
 * (setpriv, as test/e2e/lib/pods.ts runs every pod) in a PID namespace of its own, whose PID 1 is BIRD as in the
 * container (the command is the image's bird-start, run from the checkout, which execs BIRD). `birdc` talks to it
 * through its control socket.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { OSPF_ACTIVE_KEY_FILE, OSPF_KEY_FILE, renderBird } from "../../components/network-services/bird";
import { BIRD_RUN_DIR, renderServiceObjects } from "../../components/network-services/k8s";
import type { SitePlan } from "../../components/site/plan";
import type { PolicyModel } from "../../components/site/policy";
import type { Site } from "../../components/site/schema";
import type { Daemon, Shell } from "../e2e/lib/exec";
import { IMAGE_SCRIPTS, privileges } from "../e2e/lib/pods";
import { containerCapabilities } from "../e2e/lib/rendered";
import { sleep, waitFor } from "../helpers/wait";
import { spawnSync } from "node:child_process";

interface Container {
  command: string[];
  securityContext: Record<string, unknown>;
}

/** The rendered bird DaemonSet's container (through YAML, as the API server would hold it), or its second one. */
export function birdContainer(dev: { site: Site; plan: SitePlan; policy: PolicyModel }, index = 0): Container {
  const ds = renderServiceObjects(dev.site, dev.plan, dev.policy, "image").find(
    (o) => o.kind === "DaemonSet" && o.metadata.name === "bird",
  );
  if (!ds) throw new Error("the render has no bird DaemonSet");
  const doc = parse(stringify(ds)) as { spec: { template: { spec: { containers: Container[] } } } };
  return doc.spec.template.spec.containers[index];
}

export class BirdPod {
  readonly socket: string;
  readonly capabilities: string[];
  /** The Secret's OSPF key file, here (the test writes it; bird-start copies it for BIRD). */
  readonly keyFile: string;
  /** The keys BIRD reads (bird.conf's include), in the pod's run directory here. */
  readonly activeKeyFile: string;
  private readonly conf: string;
  private readonly command: string[];
  private readonly dev: { site: Site; plan: SitePlan; policy: PolicyModel };
  daemon?: Daemon;

  constructor(
    private readonly shell: Shell,
    /** The full name of the network namespace it runs in. */
    private readonly netns: string,
    dir: string,
    dev: { site: Site; plan: SitePlan; policy: PolicyModel },
  ) {
    const run = join(dir, "run-bird");
    mkdirSync(run, { recursive: true });
    this.conf = join(dir, "bird.conf");
    mkdirSync(join(dir, "secrets"), { recursive: true });
    this.keyFile = join(dir, "secrets", "ospf-keys.conf");
    const conf = renderBird(dev.site, dev.plan)!;
    const inRun = (path: string) => join(run, path.slice(BIRD_RUN_DIR.length + 1));
    writeFileSync(
      this.conf,
      conf.replaceAll(`include "${OSPF_ACTIVE_KEY_FILE}";`, `include "${inRun(OSPF_ACTIVE_KEY_FILE)}";`),
      { mode: 0o644 },
    );
    this.activeKeyFile = inRun(OSPF_ACTIVE_KEY_FILE);
    this.socket = join(run, "bird.ctl");
    this.dev = dev;
    const c = birdContainer(dev);
    this.capabilities = containerCapabilities("bird container", c.securityContext);
    this.command = c.command.map((a, i) =>
      i === 0 && IMAGE_SCRIPTS[a]
        ? IMAGE_SCRIPTS[a]
        : a.startsWith("/etc/router/")
          ? this.conf
          : a === OSPF_KEY_FILE
            ? this.keyFile
            : a.startsWith(`${BIRD_RUN_DIR}/`)
              ? join(run, a.slice(BIRD_RUN_DIR.length + 1))
              : a,
    );
  }

  /**
   * Starts a new pod (BIRD is PID 1 of its PID namespace) with the container's capabilities unless others are
   * given; `edit` changes the command; `env` is added to the container's environment.
   */
  start(
    opts: { capabilities?: string[]; edit?: (argv: string[]) => string[]; env?: Record<string, string> } = {},
  ): Daemon {
    const command = opts.edit ? opts.edit(this.command) : this.command;
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const argv = [
      ...privileges(opts.capabilities ?? this.capabilities, true),
      ...(env.length > 0 ? ["env", ...env] : []),
      ...command,
    ];
    this.daemon = this.shell.daemon("bird-pod", this.netns, ["unshare", "--pid", "--fork", "--kill-child", ...argv]);
    return this.daemon;
  }

  /**
   * The rendered status container's command (images/services/router-ospf-status from the checkout), with the
   * pod's paths moved here: BIRD's socket, the key file it watches, `out` for the status file, every `interval` s.
   */
  statusCommand(out: string, interval: number): string[] {
    const c = birdContainer(this.dev, 1).command;
    const [script, ...args] = c;
    return [
      IMAGE_SCRIPTS[script] ?? script,
      ...args.map((a, i) =>
        a === OSPF_KEY_FILE
          ? this.keyFile
          : a === OSPF_ACTIVE_KEY_FILE
            ? this.activeKeyFile
            : a.startsWith(`${BIRD_RUN_DIR}/`)
              ? this.socket
              : a.endsWith(".json")
                ? out
                : i === args.length - 1
                  ? String(interval)
                  : a,
      ),
    ];
  }

  /** A birdc command's output (through the control socket), or the error. */
  birdc(...cmd: string[]): string {
    const r = spawnSync("birdc", ["-s", this.socket, ...cmd], { encoding: "utf8", timeout: 5_000 });
    return `${r.stdout}${r.stderr}`;
  }

  /** BIRD's own pid (PID 1 of the pod), seen from here. */
  pid(): number {
    const d = this.daemon!;
    const children = readFileSync(`/proc/${d.pid}/task/${d.pid}/children`, "utf8").trim().split(/\s+/);
    return Number(children[0]);
  }

  /** Ends the pod as the kubelet does: SIGTERM to PID 1, SIGKILL once `graceMs` pass. */
  async stop(graceMs = 10_000): Promise<void> {
    const d = this.daemon;
    if (!d || d.exited) return;
    const pid1 = this.pid();
    process.kill(pid1, "SIGTERM");
    const end = Date.now() + graceMs;
    while (!d.exited && Date.now() < end) await sleep(100);
    if (!d.exited) process.kill(pid1, "SIGKILL");
    await waitFor("the bird pod's end", () => d.exited, 5_000, 50);
  }
}
