/**
 * FRR's capabilities: zebra and ospfd, started with the rendered OSPF configuration and exactly the capabilities
 * the FRR DaemonSet's container holds (setpriv: bounding set, nothing inheritable or ambient, no_new_privs, as the
 * runtime gives uid 0), start and keep running; without SYS_ADMIN each exits at once, because FRR's privilege
 * code (lib/privs.c zprivs_caps_init) raises its daemon's whole list (zebra/main.c, ospfd/ospf_main.c: NET_ADMIN,
 * NET_RAW, SYS_ADMIN, and for ospfd NET_BIND_SERVICE) into the permitted set and exits when one is missing. So
 * SYS_ADMIN stays in the render only because FRR asks for it; this test fails once a release no longer does.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { renderStack } from "../../cli/render";
import { containerCapabilities } from "../e2e/lib/rendered";
import { privileges } from "../e2e/lib/pods";
import { devStack } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";
import { sleep } from "../helpers/wait";

const t = tier("frr-privileges", {
  root: true,
  commands: ["ip", "unshare", "setpriv", "mount"],
  files: ["/usr/lib/frr/zebra", "/usr/lib/frr/ospfd"],
});

describe.skipIf(!t.ok)("FRR's capabilities", () => {
  const ns = `priv-frr-${process.pid}`;
  const started: ChildProcess[] = [];
  let dir = "";
  let caps: string[] = [];

  beforeAll(async () => {
    const config = devStack((raw) => {
      raw.routing = { ospf: { routerId: "10.10.0.1", segments: ["servers"], passive: ["mgmt"] } };
    });
    const { files } = await renderStack({ stack: "dev", config });
    const ds = parse(files.get("k8s/daemonset-router-system-frr.yaml")!) as {
      spec: { template: { spec: { containers: { name: string; securityContext: Record<string, unknown> }[] } } };
    };
    const c = ds.spec.template.spec.containers[0];
    caps = containerCapabilities(`frr container ${c.name}`, c.securityContext);
    dir = tempDir("priv-frr-");
    writeFileSync(join(dir, "frr.conf"), files.get("services/frr.conf")!);
    // Debian's FRR is built with the vty group frrvty and refuses to start unless its user (root here) is in it.
    const group = readFileSync("/etc/group", "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("frrvty:"));
    writeFileSync(join(dir, "group"), [...group, "frrvty:x:64999:root", ""].join("\n"));
    spawnSync("ip", ["netns", "add", ns]);
    spawnSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
  }, 60_000);

  afterAll(() => {
    for (const p of started) if (p.exitCode === null && p.pid) process.kill(p.pid, "SIGKILL");
    spawnSync("ip", ["netns", "del", ns]);
  });

  /** Starts an FRR daemon with `with` capabilities in a mount namespace of its own; its output after 3 s. */
  async function run(daemon: string, withCaps: string[]): Promise<{ running: boolean; output: string }> {
    const script = [
      "set -e",
      `mount --bind ${join(dir, "group")} /etc/group`,
      "mount -t tmpfs tmpfs /var/tmp",
      "mount -t tmpfs tmpfs /var/run/frr",
      `exec ${privileges(withCaps, true).join(" ")} /usr/lib/frr/${daemon} -F traditional -u root -g root -f ${join(dir, "frr.conf")} -i /var/run/frr/${daemon}.pid`,
    ].join("\n");
    const p = spawn("ip", ["netns", "exec", ns, "unshare", "-m", "sh", "-c", script]);
    started.push(p);
    let output = "";
    p.stdout.on("data", (b: Buffer) => (output += b.toString()));
    p.stderr.on("data", (b: Buffer) => (output += b.toString()));
    await sleep(3000);
    const running = p.exitCode === null && p.signalCode === null;
    if (running) p.kill("SIGTERM");
    return { running, output };
  }

  it.each(["zebra", "ospfd"])(
    "%s runs with the rendered capabilities and exits without SYS_ADMIN, which FRR itself demands",
    async (daemon) => {
      expect(caps).toContain("SYS_ADMIN");
      const full = await run(daemon, caps);
      expect(full.running, `${daemon} with ${caps.join(",")}: ${full.output}`).toBe(true);
      const less = await run(
        daemon,
        caps.filter((c) => c !== "SYS_ADMIN"),
      );
      expect(less.running).toBe(false);
      expect(less.output).toMatch(/initial cap_set_proc failed/);
      expect(less.output).toMatch(/Wanted caps:.*cap_sys_admin/);
    },
    30_000,
  );
});
