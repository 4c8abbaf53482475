/**
 * FRR daemons inside a test's network namespaces (the neighbour routers BIRD's OSPF meets): each instance has its own path space (`-N`, so its sockets
 * and pid files live in /var/run/frr/<name>/ and vtysh reaches it with `vtysh -N <name>`), runs as the frr user
 * (root is not in the frrvty group here) and reads the configuration file it is given. `stop` kills exactly the
 * daemons it started, by their pid files, and removes their path space.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
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
 * frr.conf of a neighbour router for the BIRD tests: OSPF in area 0 on its eth0 with FRR's default timers,
 * advertising its connected prefixes (the route the router under test learns).
 */
export function ospfPeerConf(routerId: string): string {
  return [
    "frr defaults traditional",
    "hostname peer",
    "interface eth0",
    " ip ospf area 0.0.0.0",
    "!",
    "router ospf",
    ` ospf router-id ${routerId}`,
    " redistribute connected",
    "!",
    "",
  ].join("\n");
}
