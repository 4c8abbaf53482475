/**
 * NAT and port forwards: masquerading to the internet (NAT44, NAT66 where a WAN does it), port forwards from the
 * internet with their WANs and sources, IPv6 forwards (pinholes, or NAT66 to a unique local host), hairpin.
 */
import { expect, it } from "vitest";
import { familyOf } from "../../../../components/site/ip";
import { compilePolicy, evaluate } from "../../../../components/site/policy";
import type { PortForward, Site } from "../../../../components/site/schema";
import type { SegmentPlan, SitePlan } from "../../../../components/site/plan";
import type { Appliance } from "../appliance";
import { conntrack, metrics, probe, type ProbeSpec } from "../checks";
import { INTERNET, internetSource } from "../internet";
import type { Area } from "../suite";
import { firstPort, forwardTarget, forwardTarget6, internet6, memberOf, onWan } from "./common";
import { PolicyOracle } from "../oracle";

function isUla(addr: string): boolean {
  return /^f[cd]/i.test(addr);
}

/** The protocols a forward carries. */
function protocols(pf: PortForward): ("tcp" | "udp")[] {
  return pf.protocol === "tcp+udp" ? ["tcp", "udp"] : [pf.protocol];
}

/** True when the internet can reach a forward's IPv6 target through the primary WAN. */
function reachable6(plan: SitePlan, pf: PortForward): boolean {
  const w = plan.wans[0];
  if (!pf.ipv6 || w.ipv6.mode !== "slaac") return false;
  // A unique local target is reached through the WAN's own address (NAT66); a global one is routed to the site.
  return isUla(pf.ipv6) ? w.nat.ipv6 === "masquerade" : true;
}

function openForwards(site: Site, plan: SitePlan): PortForward[] {
  return site.portForwards.filter(
    (pf) => !pf.sources && (pf.wans ?? plan.wans.map((w) => w.name)).includes(plan.wans[0].name),
  );
}

export const nat: Area = {
  title: "NAT and port forwards",
  ports: () => ({ tcp: [80, 443], udp: [53, 123, 853] }),
  tests(ctx) {
    const { site, plan } = ctx;
    const pinholes = openForwards(site, plan).filter((pf) => reachable6(plan, pf));

    it("masquerades LAN traffic to the internet behind the primary WAN's address (NAT44), and IPv6 behind its IPv6 address where the WAN does NAT66 (global prefixes pass untranslated)", async () => {
      const app = ctx.app;
      const rows = await masqueradeRows(app);
      expect(rows.filter((r) => (r.want as { probe: string }).probe.startsWith("tcp4")).length).toBeGreaterThan(0);
      expect(rows.map((r) => r.got)).toEqual(rows.map((r) => r.want));
    });

    if (openForwards(site, plan).length)
      it("forwards each unrestricted port forward of the primary WAN to its inside host, keeping the client's address", async () => {
        const app = ctx.app;
        const w = app.wans[0];
        const specs: ProbeSpec[] = [];
        const want = new Map<string, unknown>();
        openForwards(site, plan).forEach((pf, i) => {
          const src4 = internetSource(4, 40 + (i % 20));
          for (const proto of protocols(pf)) {
            specs.push({ id: `${pf.name}-${proto}`, proto, dst: w.addr4!, port: firstPort(pf), src: src4 });
            want.set(`${pf.name}-${proto}`, {
              answerer: forwardTarget(app, pf)?.name,
              port: String(pf.toPort ?? firstPort(pf)),
              peer: src4,
            });
          }
        });
        const r = await probe(app, app.inet, specs);
        const rows = specs.map((s) => {
          const res = r.get(s.id)!;
          return {
            got: { forward: s.id, answerer: res.answerer ?? res.raw, port: res.raw.split(" ")[3], peer: res.peer },
            want: { forward: s.id, ...(want.get(s.id) as object) },
          };
        });
        expect(rows.map((x) => x.got)).toEqual(rows.map((x) => x.want));
      });

    if (pinholes.length)
      it("forwards each port forward's IPv6 target to the internet: a global host answers at its own address, a ULA host through the WAN's address (NAT66), both at toPort like the IPv4 host", async () => {
        // A global target is a firewall opening (pinhole): the host answers at its own address. A unique local
        // target cannot be routed on the internet, so the router forwards from its own WAN address (NAT66).
        const app = ctx.app;
        const w = app.wans[0];
        const specs: ProbeSpec[] = [];
        const want: unknown[] = [];
        pinholes.forEach((pf, i) => {
          const src6 = internetSource(6, 40 + (i % 20));
          for (const proto of protocols(pf)) {
            const dst = isUla(pf.ipv6!) ? w.addr6! : pf.ipv6!;
            specs.push({ id: `${pf.name}-${proto}`, proto, dst, port: firstPort(pf), src: src6 });
            want.push({
              pinhole: `${pf.name}-${proto}`,
              to: dst,
              // NAT66 moves the port like NAT44 (toPort), and so does the router for a global host
              answer: `${forwardTarget6(app, pf)?.name} ${proto} ${pf.toPort ?? firstPort(pf)} ${src6}`,
            });
          }
        });
        const r = await probe(app, app.inet, specs);
        // what the router did with each attempt, for the failure message
        const ct = conntrack(app, 6).filter((l) => specs.some((s) => l.includes(`dst=${s.dst} `)));
        expect(
          specs.map((s) => ({ pinhole: s.id, to: s.dst, answer: r.get(s.id)!.raw.replace(/^reached /, "") })),
          `the router's connection table for these attempts:\n${ct.join("\n")}`,
        ).toEqual(want);
      });

    if (site.portForwards.some((pf) => pf.sources?.some((c) => familyOf(c.split("/")[0]) === 4)))
      it("lets a source-restricted port forward in from its allowed sources only, and on no WAN it does not name", async () => {
        // Dangerous when wrong: a forward meant for one partner's network would be open to the whole internet.
        const app = ctx.app;
        const before = await metrics(app);
        const rows = await restrictedRows(app);
        // the WAN guard's verdicts meanwhile, for the failure message
        const after = await metrics(app);
        const drops = [...after]
          .filter(([k, v]) => k.startsWith("router_dataplane_drop_packets_total") && v !== (before.get(k) ?? 0))
          .map(([k, v]) => `${k} +${v - (before.get(k) ?? 0)}`);
        expect(
          rows.map((x) => x.got),
          `XDP drops during the test: ${drops.join(", ") || "none"}`,
        ).toEqual(rows.map((x) => x.want));
      });

    if (site.portForwards.length)
      it("hairpins: an inside client reaches each hairpin port forward it is a source of at the address of each of its WANs (a DHCP WAN's lease included) and the inside host sees the router as the source; a forward without hairpin, limited to other sources or to other WANs, stays closed from inside", async () => {
        const app = ctx.app;
        const oracle = new PolicyOracle(app.site);
        const wans = app.wans.filter((x) => x.addr4);
        const rows: { got: unknown; want: unknown }[] = [];
        for (const pf of app.site.portForwards) {
          const t = forwardTarget(app, pf);
          const proto = protocols(pf)[0];
          // The independent oracle: the hairpin is offered to the forward's sources only (everyone when none), at
          // the addresses of its WANs.
          const decide = (inside: SegmentPlan, w: (typeof wans)[number]) =>
            oracle.decide({
              from: inside.zone,
              to: "router",
              proto,
              port: firstPort(pf),
              src: app.client(inside.name).addr4!,
              dst: w.addr4!,
              wanAddressOf: w.wan.name,
            });
          // A client of a zone the router itself serves on that port (a management port the forward's public
          // port shares) is answered by the router, not the hairpin: probe from a zone where only the hairpin
          // could answer.
          const inside = app.plan.segments.find((s) => {
            if (s.name === t?.segment.name || !app.client(s.name).addr4) return false;
            return wans.every((w) => {
              const d = decide(s, w);
              return d.by.startsWith("hairpin:") || d.verdict === "drop";
            });
          });
          if (!inside) continue;
          const h = app.client(inside.name);
          const got = await probe(
            app,
            h.ns,
            wans.map((w) => ({ id: w.wan.name, proto, dst: w.addr4!, port: firstPort(pf), src: h.addr4 })),
          );
          for (const w of wans) {
            const r = got.get(w.wan.name)!;
            const offered = decide(inside, w).by.startsWith("hairpin:");
            const row = { forward: pf.name, from: inside.name, at: w.wan.name };
            rows.push({
              got: { ...row, observed: r.observed, answerer: r.answerer, peer: r.peer },
              want: offered
                ? { ...row, observed: "reached", answerer: t?.name, peer: t?.segment.ipv4!.gateway }
                : { ...row, observed: "dropped", answerer: undefined, peer: undefined },
            });
          }
        }
        expect(rows.map((x) => x.got)).toEqual(rows.map((x) => x.want));
      });
  },
};

/** Each segment's client to the internet: the first port of each kind its zone may open; who the server saw. */
async function masqueradeRows(app: Appliance): Promise<{ got: unknown; want: unknown }[]> {
  const w = app.wans[0];
  const rows: { got: unknown; want: unknown }[] = [];
  const model = compilePolicy(app.site, app.plan);
  for (const seg of app.plan.segments) {
    const h = app.client(seg.name);
    const own6 = internet6(app, h);
    const candidates: ProbeSpec[] = [
      { id: "tcp4", proto: "tcp", dst: INTERNET.server4, port: 80, src: h.addr4 },
      { id: "tcp4-443", proto: "tcp", dst: INTERNET.server4, port: 443, src: h.addr4 },
      ...[53, 123, 853].map((port) => ({
        id: `udp4-${port}`,
        proto: "udp" as const,
        dst: INTERNET.server4,
        port,
        src: h.addr4,
      })),
      ...(own6 ? [{ id: "tcp6", proto: "tcp" as const, dst: INTERNET.server6, port: 80, src: own6 }] : []),
    ];
    // what the policy lets this segment open to the internet (the first allowed port of each kind; not a port
    // the router answers in the server's place, as forced DNS is)
    const allowed = candidates.filter((c) => {
      if (!c.src) return false;
      const d = evaluate(model, {
        from: seg.zone,
        to: w.wan.zone,
        proto: c.proto as "tcp" | "udp",
        port: c.port,
        src: c.src,
        dst: c.dst,
      });
      return d.verdict === "accept" && d.answeredBy === undefined;
    });
    const specs = ["tcp4", "udp4", "tcp6"].flatMap((k) => allowed.filter((c) => c.id.startsWith(k)).slice(0, 1));
    if (!specs.length) continue;
    const r = await probe(app, h.ns, specs);
    for (const s of specs)
      rows.push({
        got: { segment: seg.name, probe: s.id, seenFrom: r.get(s.id)!.peer ?? r.get(s.id)!.raw },
        want: {
          segment: seg.name,
          probe: s.id,
          seenFrom: !s.id.startsWith("tcp6") ? w.addr4 : w.wan.nat.ipv6 === "masquerade" ? w.addr6 : own6,
        },
      });
  }
  return rows;
}

/** Each source-restricted forward, on every WAN: an allowed source gets in where the forward listens, no other. */
async function restrictedRows(app: Appliance): Promise<{ got: unknown; want: unknown }[]> {
  const rows: { got: unknown; want: unknown }[] = [];
  for (const pf of app.site.portForwards.filter((x) => x.sources)) {
    const prefix = pf.sources!.find((c) => familyOf(c.split("/")[0]) === 4);
    if (!prefix) continue;
    const allowed = memberOf(prefix);
    const denied = internetSource(4, 45);
    app.topology.addInternetAddress(allowed);
    const proto = protocols(pf)[0];
    for (const w of app.wans) {
      const specs: ProbeSpec[] = [
        { id: "allowed", proto, dst: w.addr4!, port: firstPort(pf), src: allowed },
        { id: "denied", proto, dst: w.addr4!, port: firstPort(pf), src: denied },
      ];
      const r = await probe(app, app.inet, specs);
      // A forward on a WAN it does not name would be answered through the wrong uplink and time out anyway; the
      // router's connection table tells whether it was forwarded at all.
      const dnat = conntrack(app, 4).filter((l) => l.includes(`dst=${w.addr4} `) && l.includes(`src=${pf.to} `));
      const forwarded = (src: string) => dnat.some((l) => l.includes(`src=${src} `));
      const named = onWan(app, pf, w);
      const primary = w === app.wans[0];
      rows.push({
        got: {
          forward: pf.name,
          wan: w.wan.name,
          allowed: primary ? (r.get("allowed")!.answerer ?? r.get("allowed")!.raw) : forwarded(allowed),
          denied: forwarded(denied) || r.get("denied")!.observed !== "dropped",
        },
        want: {
          forward: pf.name,
          wan: w.wan.name,
          allowed: primary ? (named ? forwardTarget(app, pf)?.name : "timeout") : named,
          denied: false,
        },
      });
    }
  }
  return rows;
}
