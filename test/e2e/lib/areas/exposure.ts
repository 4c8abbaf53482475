/**
 * Exposure: nothing of the router answers the internet. Every socket listening in the router namespace is
 * probed from the internet on every WAN address (and at its own address where it is bound to one).
 */
import { expect, it } from "vitest";
import { familyOf } from "../../../../components/site/ip";
import { listening, probe, type ProbeSpec } from "../checks";
import { internetSource } from "../internet";
import { installObserver, observedKeys } from "../matrix";
import type { Area } from "../suite";

export const exposure: Area = {
  title: "exposure",
  tests(ctx) {
    it("exposes nothing of the router to the WAN: every TCP and UDP socket listening in the router is unreachable from the internet on every WAN address", async () => {
      // Dangerous when wrong: the Talos and Kubernetes APIs, DNS, DHCP or the metrics open to the internet.
      const app = ctx.app;
      installObserver(app);
      const sockets = listening(app);
      expect(sockets.length).toBeGreaterThan(0);
      const specs: (ProbeSpec & { socket: string })[] = [];
      let n = 0;
      for (const s of sockets) {
        const fam = s.address === "*" ? 0 : familyOf(s.address);
        const wild = s.address === "*" || s.address === "0.0.0.0" || s.address === "::";
        const targets: string[] = [];
        for (const w of app.wans) {
          if ((fam === 4 || fam === 0) && w.addr4) targets.push(w.addr4);
          if ((fam === 6 || fam === 0) && w.addr6) targets.push(w.addr6);
        }
        // a socket bound to one inside address: try that address too (the hostile neighbour routes it)
        if (!wild && !s.address.startsWith("fe80:") && !s.address.startsWith("ff")) targets.push(s.address);
        for (const dst of targets) {
          const f = familyOf(dst) as 4 | 6;
          specs.push({
            id: `s${n}`,
            proto: s.proto,
            dst,
            port: s.port,
            src: internetSource(f, 20 + (n % 20)),
            socket: `${s.proto} ${s.address}:${s.port} (${s.process})`,
          });
          n++;
        }
      }
      const r = await probe(app, app.inet, specs);
      const seen = observedKeys(app);
      const exposed = specs
        .filter((s) => {
          const res = r.get(s.id)!;
          return (
            seen.has(`${s.src}|${s.dst}|${s.proto}|${s.port}`) ||
            res.answerer === "router" ||
            (res.observed === "reached" && !res.answerer)
          );
        })
        .map((s) => `${s.socket} via ${s.dst}: ${r.get(s.id)!.raw}`);
      expect(exposed).toEqual([]);
      console.log(
        `${ctx.title}: ${sockets.length} listening sockets, ${specs.length} probes from the internet, none reached the router`,
      );
    });
  },
};
