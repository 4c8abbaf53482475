/**
 * Network namespaces of the virtual appliance. Every name starts with the appliance's prefix (unique per test
 * file and checkout), so a crashed run's namespaces are found and removed by the next run of the same file.
 */
import { existsSync } from "node:fs";
import { sh, type Shell } from "./exec";

/** Creates a namespace with its loopback up; `pingSockets` lets unprivileged ICMP sockets (the prober) work. */
export function addNamespace(shell: Shell, ns: string, pingSockets: boolean): void {
  sh(["ip", "netns", "add", ns]);
  shell.ip(ns, "link set lo up");
  if (pingSockets) shell.exec(ns, ["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]);
}

/** Kills what still runs in a namespace and deletes it. */
export function deleteNamespace(ns: string): void {
  if (!existsSync(`/run/netns/${ns}`)) return;
  // Only processes this harness started live in its namespaces (a previous run's, after a crash).
  const pids = sh(["ip", "netns", "pids", ns], { allowFail: true }).stdout.split(/\s+/).filter(Boolean);
  for (const pid of pids)
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // gone already
    }
  sh(["ip", "netns", "del", ns], { allowFail: true });
}

/** Removes namespaces a crashed earlier run with the same prefix left behind. */
export function cleanupLeftovers(prefix: string): void {
  const list = sh(["ip", "netns", "list"])
    .stdout.split("\n")
    .map((l) => l.split(" ")[0]);
  for (const ns of list) if (ns.startsWith(`${prefix}-`)) deleteNamespace(ns);
}
