/**
 * Boot: the router comes up as the node would — every rendered kernel parameter in place, SLAAC uplinks that
 * accept router advertisements while forwarding, the ruleset loaded by the data-plane loader and the XDP guard
 * on every WAN link.
 */
import { existsSync } from "node:fs";
import { expect, it } from "vitest";
import { EXTENSION_NAME } from "../../../../components/dataplane/loader-config";
import type { Appliance } from "../appliance";
import type { Area } from "../suite";

function procPath(key: string): string {
  return `/proc/sys/${key.includes("/") ? key : key.replace(/\./g, "/")}`;
}

function readProc(app: Appliance, key: string): string {
  return app.exec(app.router, ["cat", procPath(key)]).stdout.trim();
}

export const boot: Area = {
  title: "boot",
  tests(ctx) {
    const slaacWans = ctx.plan.wans.filter((w) => w.ipv6.mode === "slaac");

    it("applies every rendered kernel parameter a network namespace holds, and each other one is a host-wide parameter of this kernel", () => {
      const app = ctx.app;
      const { applied, absent, failed } = app.topology.sysctls;
      expect(applied.length + absent.length + failed.length).toBe(app.host.sysctls.length);
      const wrong = app.host.sysctls
        .filter(([k]) => applied.includes(k))
        .filter(([k, v]) => readProc(app, k) !== v)
        .map(([k, v]) => `${k}: rendered ${v}, kernel has ${readProc(app, k)}`);
      expect(wrong).toEqual([]);
      // Not in the namespace (or read-only there): it must still be a parameter of this kernel, set host-wide.
      const unknown = [...absent, ...failed].filter((k) => !existsSync(procPath(k)));
      expect(unknown, "rendered kernel parameters this kernel does not have").toEqual([]);
      for (const k of failed) {
        const mode = app.exec(app.router, ["stat", "-c", "%a", procPath(k)]).stdout.trim();
        expect(mode, `${k} exists in the namespace but could not be written`).toBe("444");
      }
    });

    if (slaacWans.length)
      it("makes every SLAAC uplink accept router advertisements while forwarding (the loader sets it; the kernel parameters cannot)", () => {
        // Dangerous when wrong: the uplink gets no IPv6 address and no IPv6 default route. The NICs exist before
        // Talos writes its parameters, so `default.accept_ra` does not reach them (siderolabs/talos#5632); the
        // data-plane loader, which knows the uplink's kernel name, sets accept_ra 2.
        const app = ctx.app;
        expect(slaacWans.map((w) => ({ link: w.name, ...app.topology.wanRaState.get(w.name) }))).toEqual(
          slaacWans.map((w) => ({ link: w.name, forwarding: 1, acceptRa: 1 })),
        );
        expect(slaacWans.map((w) => ({ link: w.name, ...app.topology.wanRaNow(w.name) }))).toEqual(
          slaacWans.map((w) => ({ link: w.name, forwarding: 1, acceptRa: 2 })),
        );
        expect(app.loader!.log()).toMatch(/"event":"wan_accept_ra"/);
        expect(app.workarounds).toEqual([]);
      });

    it("loads the rendered ruleset through the data-plane loader and attaches the XDP guard to every WAN link", () => {
      const app = ctx.app;
      expect(app.loader!.exited, app.loader!.log()).toBe(false);
      expect(app.loader!.log()).toMatch(/"event":"nft_applied"/);
      const files = app.host.extensionFiles.get(EXTENSION_NAME)!;
      const rulesetPath = [...files.keys()].find((p) => p.endsWith(".nft"))!;
      const renderedChains = [...files.get(rulesetPath)!.matchAll(/^\tchain (\S+) \{/gm)].map((m) => m[1]).sort();
      const live = JSON.parse(app.exec(app.router, ["nft", "-j", "list", "table", "inet", "router"]).stdout) as {
        nftables: { chain?: { name: string } }[];
      };
      const liveChains = live.nftables.flatMap((x) => (x.chain ? [x.chain.name] : [])).sort();
      expect(liveChains).toEqual(renderedChains);
      for (const w of app.wans) {
        const link = app.exec(app.router, ["ip", "link", "show", "dev", w.wan.name]).stdout;
        // native mode ("xdp", not "xdpgeneric"), the guard's program
        expect(link, w.wan.name).toMatch(/ mtu \d+ xdp qdisc /);
        expect(link, w.wan.name).toMatch(/prog\/xdp id \d+ name wan_guard /);
      }
    });
  },
};
