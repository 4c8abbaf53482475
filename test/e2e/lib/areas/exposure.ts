/**
 * Exposure: nothing of the router answers the internet. Every socket listening in the router namespace is
 * probed from the internet on every WAN address (and at its own address where it is bound to one). And the
 * router fails closed: at boot, before the data-plane loader runs, and after the loader is killed, no
 * management port answers the WAN or a zone that is not a management zone, and nothing from the WAN reaches
 * inside beyond what the policy allows (at boot: nothing at all — the forward gate holds).
 */
import { expect, it } from "vitest";
import { familyOf } from "../../../../components/site/ip";
import { listening, probe, type ProbeSpec } from "../checks";
import { internetSource } from "../internet";
import type { Appliance } from "../appliance";
import { formatRows, managementPorts, scanInside, scanManagement, type ScanRow } from "../fail-closed";
import { installObserver, matrixPorts, observedKeys } from "../matrix";
import { PolicyOracle } from "../oracle";
import type { Area } from "../suite";
import { waitFor } from "../../../helpers/wait";
import { metrics } from "../checks";

/** What the scans saw at boot, before the loader started. */
const atBoot = new WeakMap<Appliance, { management: ScanRow[]; inside: ScanRow[] }>();

/** A port no rule, service or forward of the site names (the matrix's free port). */
function freeTcp(app: Appliance): number {
  return matrixPorts(app.site).tcp.find((p) => p >= 8000)!;
}

const open = (r: ScanRow) => r.observed === "reached";

/** What the policy says of a scan row with the ruleset in place (management zones reach management ports). */
function policyOpens(app: Appliance, oracle: PolicyOracle, r: ScanRow): boolean {
  const wan = app.plan.wans[0];
  const from = r.from === "internet" ? wan.zone : r.from;
  const holder =
    app.clients.holder(r.dst) ?? app.hosts.find((h) => h.sources4.includes(r.dst) || h.sources6.includes(r.dst));
  const wanAddressOf = app.wans.find((w) => w.addr4 === r.dst || w.addr6 === r.dst)?.wan.name;
  const d = oracle.decide({
    from,
    to: r.target === "router" ? "router" : holder!.segment.zone,
    proto: "tcp",
    port: r.port,
    src: r.src,
    dst: r.dst,
    via: r.from === "internet" ? (wanAddressOf ?? wan.name) : undefined,
    wanAddressOf,
  });
  return d.verdict === "accept";
}

export const exposure: Area = {
  title: "exposure",
  async beforeLoader(app) {
    const [management, inside] = await Promise.all([scanManagement(app), scanInside(app, freeTcp(app))]);
    atBoot.set(app, { management, inside });
  },
  tests(ctx) {
    it("fails closed at boot, before the data-plane loader runs: Talos' own firewall keeps every management port from the WAN and from every non-management zone while management zones reach them, and the forward gate lets nothing in from the WAN", () => {
      // Dangerous when wrong: between power-on and the extension's start (or when it never starts) the Talos and
      // Kubernetes APIs and etcd would answer the internet, and the LAN would be open to it.
      const app = ctx.app;
      const scan = atBoot.get(app)!;
      const mgmtZones = new Set(app.site.zones.filter((z) => z.management).map((z) => z.name));
      const exposed = scan.management.filter((r) => !mgmtZones.has(r.from) && open(r));
      const lockedOut = scan.management.filter((r) => mgmtZones.has(r.from) && !open(r));
      const inside = scan.inside.filter(open);
      expect(scan.management.filter((r) => r.from === "internet").length).toBeGreaterThan(0);
      expect(scan.management.filter((r) => mgmtZones.has(r.from)).length).toBeGreaterThan(0);
      expect({ exposed: formatRows(exposed), lockedOut: formatRows(lockedOut), inside: formatRows(inside) }).toEqual({
        exposed: "",
        lockedOut: "",
        inside: "",
      });
      console.log(
        `${ctx.title}: at boot ${scan.management.length} management-port probes (ports ${managementPorts(app).join(", ")}) and ${scan.inside.length} probes from the WAN inside, as expected`,
      );
    });

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
        // a socket bound to one inside address: try that address too (the hostile neighbour routes it); not a
        // loopback address (Kea's DDNS sender binds 127.0.0.1): from the internet host that is its own loopback
        const loopback = s.address.startsWith("127.") || s.address === "::1";
        if (!wild && !loopback && !s.address.startsWith("fe80:") && !s.address.startsWith("ff"))
          targets.push(s.address);
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
          // passed the router's input (a port forward's DNAT to an inside host, the DoH port 443 of a site
          // forwarding 443 say, passes forward to that host: not the router's socket)
          return (
            seen.has(`input:${s.src}|${s.dst}|${s.proto}|${s.port}`) ||
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

    it("fails closed with the data-plane loader killed: the ruleset it loaded stays, no management port answers the WAN or a non-management zone, nothing from the WAN reaches inside beyond the policy; a restarted loader serves again", async () => {
      const app = ctx.app;
      const oracle = new PolicyOracle(app.site);
      await app.loader!.stop("SIGKILL");
      // an inside host's answer to the internet may be lost beyond the router (an untranslated private source):
      // what passed the router's forward filter counts as reached
      installObserver(app);
      const scans = await Promise.all([scanManagement(app), scanInside(app, freeTcp(app))]);
      const seen = observedKeys(app);
      const [management, inside] = scans.map((rows) =>
        rows.map((r) =>
          seen.has(`${r.src}|${r.dst}|tcp|${r.port}`) && r.observed !== "reached"
            ? { ...r, observed: "reached", raw: `${r.raw}; passed the router's filter` }
            : r,
        ),
      );
      const loaded = app.exec(app.router, ["nft", "list", "tables"]).stdout;
      const restarted = await app.startLoader();
      // the new loader takes over the killed one's programs; a degraded start (e.g. XDP already held, EBUSY)
      // would leave the guard to go with the old link
      const started = restarted
        .log()
        .split("\n")
        .find((l) => l.includes('"event":"started"'));
      await waitFor(
        "the loader's metrics",
        async () => (await metrics(app).catch(() => new Map())).size > 0,
        20_000,
        200,
      );
      const wrong = [...management, ...inside].filter((r) => open(r) !== policyOpens(app, oracle, r));
      expect(started).toMatch(/"msg":"ok;/);
      expect(loaded).toMatch(/table inet router/);
      expect(formatRows(wrong)).toBe("");
      expect(management.filter((r) => r.from === "internet" && open(r))).toEqual([]);
    });
  },
};
