/**
 * The zone policy: every zone pair (the WAN and the router included) × TCP/UDP/ICMP × IPv4/IPv6 probed on the
 * running router and compared with the policy oracle (lib/matrix.ts).
 */
import { expect, it } from "vitest";
import { compilePolicy } from "../../../../components/site/policy";
import {
  agrees,
  buildCells,
  formatDisagreements,
  formatMatrix,
  matrixPorts,
  oraclesAgree,
  probeCells,
} from "../matrix";
import type { Area } from "../suite";

export const policy: Area = {
  title: "zone policy",
  ports: (site) => matrixPorts(site),
  tests(ctx) {
    it(`forwards, drops and rejects new connections exactly as two independent policy oracles agree: every zone pair and the router, the WAN addresses, forwards and hairpin, TCP, UDP and ICMP, allowed and denied ports, IPv4 and IPv6 (at least ${ctx.minCells} cells)`, async () => {
      const app = ctx.app;
      const cells = buildCells(app);
      expect(cells.length).toBeGreaterThanOrEqual(ctx.minCells);
      // Dangerous when wrong: the product's policy model is what the ruleset, the anti-lockout check and the
      // summary's matrix are built from; where it reads the site otherwise than the documented meaning, the
      // router does something else than the operator wrote.
      const disagree = cells.filter((c) => !oraclesAgree(c));
      expect(
        disagree.length,
        `the two oracles disagree on ${disagree.length} cells:\n${formatDisagreements(cells)}`,
      ).toBe(0);
      // every pair that crosses the router has cells
      const pairs = new Set(cells.map((c) => `${c.from}>${c.to}`));
      const model = compilePolicy(app.site, app.plan);
      const reachable = model.zones.filter(
        (z) => model.wanZones.includes(z) || app.plan.segments.some((s) => s.zone === z),
      );
      const missing: string[] = [];
      for (const f of reachable)
        for (const to of [...reachable, "router"]) {
          const routed =
            to !== f || model.wanZones.includes(f) || app.plan.segments.filter((s) => s.zone === f).length > 1;
          if (routed && !pairs.has(`${f}>${to}`)) missing.push(`${f}>${to}`);
        }
      expect(missing, "zone pairs without cells").toEqual([]);
      const started = Date.now();
      const retried = await probeCells(app, cells);
      const took = Date.now() - started;
      if (retried.length)
        console.log(
          `${ctx.title}: ${retried.length} cells needed a second attempt:\n${retried.map((c) => `  ${c.from}→${c.to} ${c.proto}/${c.port ?? "-"} ${c.src} → ${c.dst}: ${c.observed}; ${c.detail}`).join("\n")}`,
        );
      expect(cells.filter((c) => !agrees(c)).length, formatMatrix(cells)).toBe(0);
      expect(took, "the matrix must run well under a minute").toBeLessThan(60_000);
      console.log(
        `${ctx.title}: ${cells.length} cells agree with both policy oracles (probed in ${(took / 1000).toFixed(1)} s)`,
      );
    });
  },
};
