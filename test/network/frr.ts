/**
 * FRR daemons inside a test's network namespaces: each instance has its own path space (`-N`, so its sockets
 * and pid files live in /var/run/frr/<name>/ and vtysh reaches it with `vtysh -N <name>`), runs as the frr user
 * (root is not in the frrvty group here) and reads the configuration file it is given. `stop` kills exactly the
 * daemons it started, by their pid files, and removes their path space.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { q } from "../../components/images";
import { renderFrr } from "../../components/network-services/config";
import type { SitePlan } from "../../components/site/plan";
import type { Site } from "../../components/site/schema";
import { IMAGE_SCRIPTS, withMember } from "../e2e/lib/pods";
import type { Netns } from "./netns";

export const FRR_DAEMONS = "/usr/lib/frr";
const RUN = "/var/run/frr";

export class FrrInstance {
  constructor(
    private readonly lab: Pick<Netns, "exec">,
    private readonly ns: string,
    /** The path space: unique on the machine. */
    readonly name: string,
  ) {}

  /** Starts daemons (zebra first) on one configuration file; throws with the daemon's words if one fails. */
  start(daemons: string[], config: string): void {
    for (const d of daemons) {
      const r = this.lab.exec(
        this.ns,
        [join(FRR_DAEMONS, d), "-d", "-N", this.name, "-F", "traditional", "-u", "frr", "-g", "frr", "-f", config],
        false,
      );
      if (r.code !== 0) throw new Error(`${d} in ${this.ns} did not start: ${r.out}`);
    }
  }

  /** A vtysh command's JSON answer (`… json`), or undefined while the daemon has none. */
  json<T>(command: string): T | undefined {
    const r = this.lab.exec(this.ns, ["vtysh", "-N", this.name, "-c", command], false);
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      return undefined;
    }
  }

  stop(): void {
    const dir = join(RUN, this.name);
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir).filter((x) => x.endsWith(".pid"))) {
      const pid = Number(readFileSync(join(dir, f), "utf8").trim());
      if (pid > 1)
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Polls `check` every half second until it returns a value or `ms` pass. */
export async function eventually<T>(ms: number, check: () => T | undefined): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * The shell script of a new frr pod's container, as the node runs it: fresh writable /etc/frr, /var/run/frr and
 * /var/tmp under `pod`, the image's /etc/group (root in frrvty), the rendered frr.conf, then the image's frr-start.
 * Run it in a mount namespace of its own (`ip netns exec` gives one). frr-start runs from a copy beside the pod's
 * files: a checkout under /var/tmp would be hidden by the pod's own /var/tmp.
 */
export function frrPodScript(pod: string, site: Site, plan: SitePlan): string {
  const conf = join(pod, "frr.conf");
  writeFileSync(conf, renderFrr(site, plan)!, { mode: 0o644 });
  writeFileSync(join(pod, "group"), withMember(readFileSync("/etc/group", "utf8"), "frrvty", "root"));
  for (const dir of ["etc-frr", "run-frr", "var-tmp"]) rmSync(join(pod, dir), { recursive: true, force: true });
  const binds: [string, string][] = [
    [join(pod, "etc-frr"), "/etc/frr"],
    [join(pod, "run-frr"), "/var/run/frr"],
    [join(pod, "var-tmp"), "/var/tmp"],
    [join(pod, "group"), "/etc/group"],
  ];
  for (const [dir] of binds.slice(0, 3)) mkdirSync(dir, { recursive: true });
  const start = join(pod, "frr-start");
  copyFileSync(IMAGE_SCRIPTS["/usr/local/bin/frr-start"], start);
  chmodSync(start, 0o755);
  return [
    "set -e",
    ...binds.map(([from, to]) => `mount --bind ${q(from)} ${q(to)}`),
    `exec ${q(start)} ${q(conf)}`,
  ].join("\n");
}
