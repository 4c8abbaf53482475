/**
 * Least privilege: every pod runs with exactly the capabilities its container renders (read back from the
 * kernel, decoded with the capability numbers of linux/capability.h), and a daemon given less than its rendered
 * set fails where a user would notice — so the harness enforces the set, and the areas before this one prove the
 * rendered sets are enough (DHCPv4, DHCPv6, router advertisements, NTP, mDNS).
 */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { renderRadvd } from "../../../../components/network-services/config";
import { sleep, waitFor } from "../../../helpers/wait";
import type { Appliance } from "../appliance";
import type { Area } from "../suite";

/** Capability numbers by name (without CAP_), from the kernel's UAPI header. */
function capabilityNumbers(): Map<string, number> {
  const header = readFileSync("/usr/include/linux/capability.h", "utf8");
  const out = new Map<string, number>();
  for (const m of header.matchAll(/^#define\s+CAP_([A-Z_]+)\s+(\d+)\s*$/gm)) out.set(m[1], Number(m[2]));
  return out;
}

/** The capability names of a /proc status mask (hex). */
function decode(mask: string, numbers: Map<string, number>): string[] {
  const bits = BigInt(`0x${mask}`);
  return [...numbers]
    .filter(([, n]) => (bits >> BigInt(n)) & 1n)
    .map(([name]) => name)
    .sort();
}

/** A process's capability sets and no_new_privs, from /proc/PID/status. */
function privilegesOf(pid: number, numbers: Map<string, number>) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (k: string) => new RegExp(`^${k}:\\s*(\\S+)`, "m").exec(status)?.[1] ?? "";
  return {
    command: readFileSync(`/proc/${pid}/comm`, "utf8").trim(),
    bounding: decode(field("CapBnd"), numbers),
    permitted: decode(field("CapPrm"), numbers),
    effective: decode(field("CapEff"), numbers),
    inheritable: decode(field("CapInh"), numbers),
    ambient: decode(field("CapAmb"), numbers),
    noNewPrivs: field("NoNewPrivs") === "1",
  };
}

/** Restarts a pod with one capability of its rendered set removed; the pod's spec and the weakened daemon. */
async function startWithout(app: Appliance, name: string, capability: string) {
  const spec = app.pods.spec(name);
  expect(spec.capabilities).toContain(capability);
  await app.pods.pod(name).stop();
  const weak = app.pods.start(
    spec,
    spec.capabilities.filter((c) => c !== capability),
  );
  return { spec, weak };
}

export const privileges: Area = {
  title: "least privilege",
  tests(ctx) {
    it("runs every pod with exactly its container's rendered capabilities as its bounding set, no more in its permitted and effective sets (a daemon may drop some itself, as chronyd does), nothing inheritable or ambient, no_new_privs", () => {
      const numbers = capabilityNumbers();
      expect(numbers.get("NET_RAW"), "CAP_NET_RAW in linux/capability.h").toBe(13);
      const pods = ctx.app.pods;
      expect(pods.running.size, "running pods").toBeGreaterThan(0);
      const exited = [...pods.running]
        .filter(([, d]) => d.exited)
        .map(([name, d]) => `${name}: ${d.log().slice(-400)}`);
      expect(exited, "pods that exited").toEqual([]);
      const seen = [...pods.running].map(([name, d]) => {
        const p = privilegesOf(d.pid, numbers);
        // what the daemon holds beyond its bounding set (the kernel never allows any: shown, not assumed)
        const beyond = (set: string[]) => set.filter((c) => !p.bounding.includes(c));
        return { name, ...p, permitted: beyond(p.permitted), effective: beyond(p.effective) };
      });
      const want = [...pods.running.keys()].map((name) => {
        const spec = pods.spec(name);
        const caps = [...spec.capabilities].sort();
        return {
          name,
          // the daemon itself, not a shell or setpriv before its exec
          command: seen.find((s) => s.name === name)!.command,
          bounding: caps,
          permitted: [],
          effective: [],
          inheritable: [],
          ambient: [],
          noNewPrivs: spec.noNewPrivs,
        };
      });
      expect(seen).toEqual(want);
      for (const s of seen) expect(["sh", "setpriv", "env", "ip"], s.name).not.toContain(s.command);
    });

    const dhcp = ctx.plan.segments.filter((s) => s.dhcp.enabled && s.dhcp.pool);
    if (dhcp.length)
      it("Kea DHCPv4 started without NET_RAW (less than it renders) answers no client; with its rendered set the same client gets a lease", async () => {
        const app = ctx.app;
        const { spec, weak } = await startWithout(app, "kea-dhcp4", "NET_RAW");
        try {
          const host = app.addHost(dhcp[0].name, "nocap", 0x60);
          app.dhcp.start4(host.ns, "eth0");
          await waitFor(
            "Kea to fail opening its raw sockets",
            () => /DHCPSRV_OPEN_SOCKET_FAIL .*Failed to create raw LPF socket/.test(weak.log()),
            20_000,
          );
          await sleep(8000);
          expect(app.dhcp.lease4(host.ns)?.ip, "a lease from Kea without NET_RAW").toBeUndefined();
          await weak.stop();
          const full = app.pods.start(spec);
          await waitFor("kea-dhcp4 to start again", () => /DHCP4_STARTED/.test(full.log()), 20_000);
          await waitFor("a lease with the rendered capabilities", () => app.dhcp.lease4(host.ns)?.ip, 30_000);
        } finally {
          // later areas need Kea as rendered
          if (!weak.exited) {
            await weak.stop();
            app.pods.start(spec);
          }
        }
      });

    if (renderRadvd(ctx.site, ctx.plan))
      it("radvd started without NET_RAW (less than it renders) exits on its ICMPv6 socket; with its rendered set it runs", async () => {
        const app = ctx.app;
        const { spec, weak } = await startWithout(app, "radvd", "NET_RAW");
        try {
          await waitFor("radvd without NET_RAW to exit", () => weak.exited, 10_000, 20);
          expect(weak.log()).toMatch(/Operation not permitted/);
        } finally {
          await weak.stop();
        }
        const full = app.pods.start(spec);
        await sleep(3000);
        expect(full.exited, `radvd with its rendered capabilities exited: ${full.log()}`).toBe(false);
      });
  },
};
