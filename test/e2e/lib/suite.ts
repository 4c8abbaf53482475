/**
 * The end-to-end suite of one site: builds the virtual appliance from the site's render, then proves the network
 * layer on it. Every expectation is derived from the site (its plan, the policy oracle, its port forwards), so
 * the same tests run for the dev site and for the sites the tests generate.
 */
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StackConfig } from "../../../cli/stack-config";
import { EXTENSION_NAME } from "../../../components/dataplane/loader-config";
import { durationSeconds } from "../../../components/site/duration";
import { contains, familyOf, nthAddress, toBigInt } from "../../../components/site/ip";
import { rawSiteConfig } from "../../../components/site/load";
import { parseSite } from "../../../components/site/parse";
import { planSite, type WanPlan } from "../../../components/site/plan";
import { compilePolicy, evaluate } from "../../../components/site/policy";
import type { Site } from "../../../components/site/schema";
import { devStack } from "../../helpers/stacks";
import { tier } from "../../helpers/tier";
import { APPLIANCE_COMMANDS, Appliance, LOADER, ensureLoader, type Host, type WanSide } from "./appliance";
import { conntrack, keaLeases, listening, metrics, probe, type ProbeSpec } from "./checks";
import { sleep, waitFor } from "./exec";
import { INTERNET, internetSource } from "./internet";
import {
  agrees,
  buildCells,
  formatMatrix,
  installObserver,
  observedKeys,
  probeCells,
  probePorts,
  ruleAddresses,
} from "./matrix";
import { renderSite } from "./rendered";

export interface SuiteOptions {
  /** "the dev site" */
  title: string;
  /** Namespace prefix, unique per test file. */
  prefix: string;
  /** The stack to render (the dev stack when undefined). */
  config?: StackConfig;
  /** Least number of matrix cells the site must produce. */
  minCells: number;
}

/** The address `offset` places into a prefix (a plain address stands for itself). */
function hostIn(cidr: string, offset = 1): string {
  return cidr.includes("/") ? nthAddress(cidr, offset) : cidr;
}

function readProc(app: Appliance, key: string): string {
  const path = key.includes("/") ? key : key.replace(/\./g, "/");
  return app.exec(app.router, ["cat", `/proc/sys/${path}`]).stdout.trim();
}

/** The first segment whose zone may open connections to the WAN, and its main client. */
function internetClient(app: Appliance): Host {
  const model = compilePolicy(app.site, app.plan);
  const wanZone = app.plan.wans[0].zone;
  for (const seg of app.plan.segments) {
    const h = app.client(seg.name);
    const d = evaluate(model, {
      from: seg.zone,
      to: wanZone,
      proto: "tcp",
      port: 80,
      src: h.addr4!,
      dst: INTERNET.server4,
    });
    if (d.verdict === "accept") return h;
  }
  throw new Error("no segment may reach the internet");
}

/** Interval × failed rounds + 2 s: the longest a WAN failure may stay unnoticed, plus the route change. */
function failoverBudgetMs(w: WanPlan): number {
  return (durationSeconds(w.probe.interval) * w.probe.failures + 2) * 1000;
}

/** A WAN whose link loses its carrier is down as soon as the loader sees the link change. */
const LINK_LOSS_BUDGET_MS = 2000;

function recoveryBudgetMs(w: WanPlan): number {
  return (durationSeconds(w.probe.interval) * w.probe.successes + 2) * 1000;
}

export function describeAppliance(opts: SuiteOptions): void {
  ensureLoader();
  const t = tier("e2e", { root: true, commands: APPLIANCE_COMMANDS, files: [LOADER] });
  // The site decides which tests apply; parsing and planning are synchronous and need nothing but Node.
  const parsed = parseSite(rawSiteConfig((opts.config ?? devStack()).values));
  if (!parsed.ok) throw new Error(`${opts.title}: the site does not parse`);
  const site: Site = parsed.site;
  const plan = planSite(site);
  const slaacWans = plan.wans.filter((w) => w.ipv6.mode === "slaac");
  const dhcp6Segments = site.segments.filter((s) => s.dhcpv6.enabled && s.ipv6);
  const reservations = plan.segments.flatMap((s) => s.dhcp.reservations.filter((r) => r.ipv4));

  describe.skipIf(!t.ok)(`${opts.title} on the virtual appliance`, () => {
    let app: Appliance;

    beforeAll(async () => {
      const rendered = await renderSite(opts.config);
      app = new Appliance({
        // ROUTER_E2E_TAG keeps two checkouts' runs on one machine out of each other's namespaces.
        prefix: process.env.ROUTER_E2E_TAG ? `${opts.prefix}-${process.env.ROUTER_E2E_TAG}` : opts.prefix,
        rendered,
        ports: probePorts(rendered.site),
        extraAddresses: ruleAddresses(rendered.site, rendered.plan),
      });
      await app.start();
    }, 240_000);

    afterAll(async () => {
      await app?.stop();
    }, 60_000);

    /** True when a port forward listens on a WAN. */
    const onWan = (pf: Site["portForwards"][number], w: WanSide) =>
      (pf.wans ?? app.plan.wans.map((x) => x.name)).includes(w.wan.name);
    /** The host a port forward leads to. */
    const target = (pf: Site["portForwards"][number]) =>
      app.hosts.find((h) => h.addr4 === pf.to || h.static4.includes(pf.to));

    describe("boot", () => {
      it("applies every rendered kernel parameter a network namespace holds, and each other one is a host-wide parameter of this kernel", () => {
        const { applied, absent, failed } = app.sysctls;
        expect(applied.length + absent.length + failed.length).toBe(app.host.sysctls.length);
        const wrong = app.host.sysctls
          .filter(([k]) => applied.includes(k))
          .filter(([k, v]) => readProc(app, k) !== v)
          .map(([k, v]) => `${k}: rendered ${v}, kernel has ${readProc(app, k)}`);
        expect(wrong).toEqual([]);
        // Not in the namespace (or read-only there): it must still be a parameter of this kernel, set host-wide.
        const unknown = [...absent, ...failed].filter(
          (k) => !existsSync(`/proc/sys/${k.includes("/") ? k : k.replace(/\./g, "/")}`),
        );
        expect(unknown, "rendered kernel parameters this kernel does not have").toEqual([]);
        for (const k of failed) {
          const mode = app.exec(app.router, ["stat", "-c", "%a", `/proc/sys/${k.replace(/\./g, "/")}`]).stdout.trim();
          expect(mode, `${k} exists in the namespace but could not be written`).toBe("444");
        }
      });

      if (slaacWans.length)
        it("makes every SLAAC uplink accept router advertisements while forwarding (the loader sets it; the kernel parameters cannot)", () => {
          // Dangerous when wrong: the uplink gets no IPv6 address and no IPv6 default route. The NICs exist before
          // Talos writes its parameters, so `default.accept_ra` does not reach them (siderolabs/talos#5632); the
          // data-plane loader, which knows the uplink's kernel name, sets accept_ra 2.
          expect(slaacWans.map((w) => ({ link: w.name, ...app.wanRaState.get(w.name) }))).toEqual(
            slaacWans.map((w) => ({ link: w.name, forwarding: 1, acceptRa: 1 })),
          );
          expect(slaacWans.map((w) => ({ link: w.name, ...app.wanRaNow(w.name) }))).toEqual(
            slaacWans.map((w) => ({ link: w.name, forwarding: 1, acceptRa: 2 })),
          );
          expect(app.loader!.log()).toMatch(/"event":"wan_accept_ra"/);
          expect(app.workarounds).toEqual([]);
        });

      it("loads the rendered ruleset through the data-plane loader and attaches the XDP guard to every WAN link", () => {
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
    });

    describe("addresses for the clients", () => {
      it("leases every segment's client an address from its own pool, with the segment's router, DNS servers, domain, search list and NTP servers; the NTP server named answers", async () => {
        const model = compilePolicy(app.site, app.plan);
        const ntpProbes: { h: Host; spec: ProbeSpec }[] = [];
        for (const seg of app.plan.segments.filter((s) => s.dhcp.enabled)) {
          const s = app.site.segments.find((x) => x.name === seg.name)!;
          const h = app.client(seg.name);
          const lease = app.lease4(h.ns)!;
          const pool = seg.dhcp.pool!;
          const v = toBigInt(lease.ip);
          expect(
            v >= toBigInt(pool.start) && v <= toBigInt(pool.end),
            `${seg.name}: ${lease.ip} outside ${pool.start}-${pool.end}`,
          ).toBe(true);
          const ntp =
            s.dhcp.ntpServers ??
            ((model.services.get(seg.zone) ?? []).includes("ntp") ? [seg.ipv4!.gateway] : undefined);
          expect({
            segment: seg.name,
            router: lease.router,
            subnet: lease.subnet,
            dns: lease.dns,
            domain: lease.domain,
            search: lease.search,
            ntp: lease.ntpsrv,
            lease: Number(lease.lease),
          }).toEqual({
            segment: seg.name,
            router: seg.ipv4!.gateway,
            subnet: seg.ipv4!.netmask,
            dns: (s.dhcp.dnsServers ?? [seg.ipv4!.gateway]).join(" "),
            domain: seg.domain,
            search: (s.dhcp.searchDomains ?? [seg.domain]).join(" "),
            ntp: ntp?.join(" "),
            lease: seg.dhcp.leaseTime,
          });
          if (ntp) ntpProbes.push({ h, spec: { id: seg.name, proto: "ntp", dst: ntp[0], port: 123, src: h.addr4 } });
        }
        const answers = await Promise.all(ntpProbes.map(({ h, spec }) => probe(app, h.ns, [spec])));
        expect(answers.map((m, i) => [ntpProbes[i].spec.id, m.get(ntpProbes[i].spec.id)!.raw])).toEqual(
          ntpProbes.map(({ spec }) => [spec.id, expect.stringMatching(/^reached ntp stratum=\d+$/)]),
        );
      });

      if (reservations.length)
        it("leases each reserved MAC its reserved address", () => {
          const got = app.hosts
            .filter((h) => h.reservation?.ipv4)
            .map((h) => ({ mac: h.mac, address: app.lease4(h.ns)?.ip }));
          expect(got).toEqual(reservations.map((r) => ({ mac: r.mac, address: r.ipv4 })));
        });

      it("autoconfigures every client by SLAAC in its segment's prefix, with the router as default gateway and the DNS servers and search list of the segment in the router advertisements", async () => {
        const segs = app.plan.segments.filter((seg) => {
          const s = app.site.segments.find((x) => x.name === seg.name)!;
          return seg.ipv6 && s.ra.enabled && s.ra.slaac;
        });
        expect(segs.length).toBeGreaterThan(0);
        const results = await Promise.all(
          segs.map(async (seg) => {
            const s = app.site.segments.find((x) => x.name === seg.name)!;
            const h = app.client(seg.name);
            const ra = (await app.run(h.ns, ["rdisc6", "-1", "-w", "2000", "eth0"])).stdout;
            const route = app.exec(h.ns, ["ip", "-6", "route", "show", "default"]).stdout;
            const routerLl = /inet6 (fe80::[0-9a-f:]+)\//.exec(
              app.exec(app.router, ["ip", "-6", "addr", "show", "dev", seg.link, "scope", "link"]).stdout,
            )?.[1];
            return {
              got: {
                segment: seg.name,
                inPrefix: !!h.slaac6 && contains(seg.ipv6!.prefix, h.slaac6),
                gateway: /default via (\S+) dev eth0/.exec(route)?.[1],
                prefix: /Prefix\s+:\s+(\S+)/.exec(ra)?.[1],
                managed: /Stateful address conf\.\s+:\s+(\w+)/.exec(ra)?.[1],
                rdnss: [...ra.matchAll(/Recursive DNS server\s+:\s+(\S+)/g)].map((m) => m[1]),
                dnssl: /DNS search list\s+:\s+(.+?)\s*$/m.exec(ra)?.[1].split(/\s+/),
              },
              want: {
                segment: seg.name,
                inPrefix: true,
                gateway: routerLl,
                prefix: seg.ipv6!.prefix,
                managed: s.dhcpv6.enabled ? "Yes" : "No",
                rdnss: s.ra.dnsServers ?? [seg.ipv6!.gateway],
                dnssl: s.dhcp.searchDomains ?? [seg.domain],
              },
            };
          }),
        );
        expect(results.map((r) => r.got)).toEqual(results.map((r) => r.want));
      });

      if (dhcp6Segments.length)
        it("leases stateful DHCPv6 addresses from the segment's pool with its DNS servers and search list where DHCPv6 is on, and reserved IPv6 addresses to reserved MACs", () => {
          const rows: { got: unknown; want: unknown }[] = [];
          for (const s of dhcp6Segments) {
            const seg = app.plan.segments.find((x) => x.name === s.name)!;
            for (const h of app.hosts.filter((x) => x.segment.name === s.name)) {
              const l = app.lease6(h.ns);
              const addr = l?.new_ip6_address;
              const res = h.reservation?.ipv6;
              const start = s.dhcpv6.range?.start ?? hostIn(seg.ipv6!.prefix, 0x1000);
              const end = s.dhcpv6.range?.end ?? hostIn(seg.ipv6!.prefix, 0x1fff);
              rows.push({
                got: {
                  host: h.name,
                  address: res ? addr : !!addr && toBigInt(addr) >= toBigInt(start) && toBigInt(addr) <= toBigInt(end),
                  dns: l?.new_dhcp6_name_servers,
                  search: l?.new_dhcp6_domain_search?.replace(/\.$/, ""),
                },
                want: {
                  host: h.name,
                  address: res ?? true,
                  dns: (s.ra.dnsServers ?? [seg.ipv6!.gateway]).join(" "),
                  search: (s.dhcp.searchDomains ?? [seg.domain]).join(" "),
                },
              });
            }
          }
          expect(rows.map((r) => r.got)).toEqual(rows.map((r) => r.want));
        });

      if (site.mdns.reflect.length)
        it("reflects mDNS announcements among the segments of each reflection group and into no other segment", async () => {
          const rows: { got: unknown; want: unknown }[] = [];
          for (const g of app.site.mdns.reflect) {
            const members = app.plan.segments.filter((s) => g.zones.includes(s.zone));
            for (const announcer of members) {
              const tag = `e2e-${g.name}-${announcer.vlan}`;
              const listeners = app.plan.segments.filter((s) => s !== announcer);
              const heard = listeners.map((s) =>
                app.run(app.client(s.name).ns, [app.netprobe, "mdns-listen", "3", tag]),
              );
              await sleep(700);
              await app.run(app.client(announcer.name).ns, [app.netprobe, "mdns-announce", tag]);
              const outs = await Promise.all(heard);
              listeners.forEach((s, i) => {
                const from = [...new Set([...outs[i].stdout.matchAll(/^heard (\S+)$/gm)].map((m) => m[1]))];
                rows.push({
                  got: { from: announcer.name, to: s.name, heardFrom: from },
                  want: { from: announcer.name, to: s.name, heardFrom: members.includes(s) ? [s.ipv4!.gateway] : [] },
                });
              });
            }
          }
          expect(rows.map((r) => r.got)).toEqual(rows.map((r) => r.want));
        });
    });

    describe("zone policy", () => {
      it(`forwards, drops and rejects new connections exactly as the policy oracle decides: every zone pair and the router, TCP, UDP and ICMP, allowed and denied ports, IPv4 and IPv6 (at least ${opts.minCells} cells)`, async () => {
        const cells = buildCells(app);
        expect(cells.length).toBeGreaterThanOrEqual(opts.minCells);
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
            `${opts.title}: ${retried.length} cells needed a second attempt:\n${retried.map((c) => `  ${c.from}→${c.to} ${c.proto}/${c.port ?? "-"} ${c.src} → ${c.dst}: ${c.observed}; ${c.detail}`).join("\n")}`,
          );
        expect(cells.filter((c) => !agrees(c)).length, formatMatrix(cells)).toBe(0);
        expect(took, "the matrix must run well under a minute").toBeLessThan(60_000);
        console.log(
          `${opts.title}: ${cells.length} cells agree with the policy oracle (probed in ${(took / 1000).toFixed(1)} s)`,
        );
      });
    });

    describe("NAT and port forwards", () => {
      it("masquerades LAN traffic to the internet behind the primary WAN's address (NAT44), and IPv6 behind its IPv6 address where the WAN does NAT66 (global prefixes pass untranslated)", async () => {
        const w = app.wans[0];
        const rows: { got: unknown; want: unknown }[] = [];
        const model = compilePolicy(app.site, app.plan);
        for (const seg of app.plan.segments) {
          const h = app.client(seg.name);
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
            ...(h.slaac6 && w.addr6
              ? [{ id: "tcp6", proto: "tcp" as const, dst: INTERNET.server6, port: 80, src: h.slaac6 }]
              : []),
          ];
          // what the policy lets this segment open to the internet (the first allowed port of each kind)
          const allowed = candidates.filter(
            (c) =>
              evaluate(model, {
                from: seg.zone,
                to: w.wan.zone,
                proto: c.proto as "tcp" | "udp",
                port: c.port,
                src: c.src!,
                dst: c.dst,
              }).verdict === "accept",
          );
          const specs = ["tcp4", "udp4", "tcp6"].flatMap((k) => allowed.filter((c) => c.id.startsWith(k)).slice(0, 1));
          if (!specs.length) continue;
          const r = await probe(app, h.ns, specs);
          for (const s of specs)
            rows.push({
              got: { segment: seg.name, probe: s.id, seenFrom: r.get(s.id)!.peer ?? r.get(s.id)!.raw },
              want: {
                segment: seg.name,
                probe: s.id,
                seenFrom: !s.id.startsWith("tcp6") ? w.addr4 : w.wan.nat.ipv6 === "masquerade" ? w.addr6 : h.slaac6,
              },
            });
        }
        expect(rows.filter((r) => (r.want as { probe: string }).probe.startsWith("tcp4")).length).toBeGreaterThan(0);
        expect(rows.map((r) => r.got)).toEqual(rows.map((r) => r.want));
      });

      if (site.portForwards.some((pf) => !pf.sources && (pf.wans ?? [plan.wans[0].name]).includes(plan.wans[0].name)))
        it("forwards each unrestricted port forward of the primary WAN to its inside host, keeping the client's address", async () => {
          const w = app.wans[0];
          const rows: { got: unknown; want: unknown }[] = [];
          const pfs = app.site.portForwards.filter((pf) => !pf.sources && onWan(pf, w));
          const specs: ProbeSpec[] = [];
          const want = new Map<string, unknown>();
          pfs.forEach((pf, i) => {
            const src4 = internetSource(4, 40 + i);
            const port = Number(String(pf.port).split("-")[0]);
            for (const proto of pf.protocol === "tcp+udp" ? (["tcp", "udp"] as const) : [pf.protocol]) {
              specs.push({ id: `${pf.name}-${proto}`, proto, dst: w.addr4!, port, src: src4 });
              want.set(`${pf.name}-${proto}`, {
                answerer: target(pf)?.name,
                port: String(pf.toPort ?? port),
                peer: src4,
              });
            }
          });
          const r = await probe(app, app.inet, specs);
          for (const s of specs) {
            const res = r.get(s.id)!;
            rows.push({
              got: { forward: s.id, answerer: res.answerer ?? res.raw, port: res.raw.split(" ")[3], peer: res.peer },
              want: { forward: s.id, ...(want.get(s.id) as object) },
            });
          }
          expect(rows.map((x) => x.got)).toEqual(rows.map((x) => x.want));
        });

      if (
        site.portForwards.some(
          (pf) => pf.ipv6 && !pf.sources && (pf.wans ?? [plan.wans[0].name]).includes(plan.wans[0].name),
        )
      )
        it("forwards each port forward's IPv6 target to the internet: a global host answers at its own address, a ULA host through the WAN's address (NAT66)", async () => {
          // A global target is a firewall opening (pinhole): the host answers at its own address. A unique local
          // target cannot be routed on the internet, so the router forwards from its own WAN address (NAT66).
          const w = app.wans[0];
          const pfs = app.site.portForwards.filter((pf) => pf.ipv6 && !pf.sources && onWan(pf, w));
          const specs: ProbeSpec[] = [];
          const want: unknown[] = [];
          pfs.forEach((pf, i) => {
            const src6 = internetSource(6, 40 + i);
            const port = Number(String(pf.port).split("-")[0]);
            for (const proto of pf.protocol === "tcp+udp" ? (["tcp", "udp"] as const) : [pf.protocol]) {
              const ula = familyOf(pf.ipv6!) === 6 && /^f[cd]/i.test(pf.ipv6!);
              const dst = ula ? w.addr6! : pf.ipv6!;
              specs.push({ id: `${pf.name}-${proto}`, proto, dst, port, src: src6 });
              const host = app.hosts.find((h) => h.static6.includes(pf.ipv6!) || h.dhcp6 === pf.ipv6);
              want.push({
                pinhole: `${pf.name}-${proto}`,
                to: dst,
                answer: `${host?.name} ${proto} ${port} ${src6}`,
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

      if (site.portForwards.some((pf) => pf.sources))
        it("lets a source-restricted port forward in from its allowed sources only, and on no WAN it does not name", async () => {
          // Dangerous when wrong: a forward meant for one partner's network would be open to the whole internet.
          const rows: { got: unknown; want: unknown }[] = [];
          const before = await metrics(app);
          for (const pf of app.site.portForwards.filter((x) => x.sources)) {
            const prefix = pf.sources!.find((c) => familyOf(c.split("/")[0]) === 4);
            if (!prefix) continue;
            const allowed = hostIn(prefix, 7);
            const denied = internetSource(4, 45);
            if (!app.internetAddresses().v4.includes(allowed)) app.addInternetAddress(allowed);
            const port = Number(String(pf.port).split("-")[0]);
            const proto = pf.protocol === "udp" ? "udp" : "tcp";
            for (const w of app.wans) {
              const specs: ProbeSpec[] = [
                { id: "allowed", proto, dst: w.addr4!, port, src: allowed },
                { id: "denied", proto, dst: w.addr4!, port, src: denied },
              ];
              const r = await probe(app, app.inet, specs);
              // A forward on a WAN it does not name would be answered through the wrong uplink and time out
              // anyway; the router's connection table tells whether it was forwarded at all.
              const dnat = conntrack(app, 4).filter(
                (l) => l.includes(`dst=${w.addr4} `) && l.includes(`src=${pf.to} `),
              );
              const forwarded = (src: string) => dnat.some((l) => l.includes(`src=${src} `));
              const named = onWan(pf, w);
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
                  allowed: primary ? (named ? target(pf)?.name : "timeout") : named,
                  denied: false,
                },
              });
            }
          }
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
        it("hairpins: an inside client reaches each hairpin port forward at the WAN address and the inside host sees the router as the source; a forward without hairpin stays closed from inside", async () => {
          const w = app.wans[0];
          const rows: { got: unknown; want: unknown }[] = [];
          for (const pf of app.site.portForwards) {
            const t = target(pf);
            const inside = app.plan.segments.find((s) => s.name !== t?.segment.name)!;
            const h = app.client(inside.name);
            const port = Number(String(pf.port).split("-")[0]);
            const proto = pf.protocol === "udp" ? "udp" : "tcp";
            const r = (await probe(app, h.ns, [{ id: "x", proto, dst: w.addr4!, port, src: h.addr4 }])).get("x")!;
            rows.push({
              got: { forward: pf.name, from: inside.name, observed: r.observed, answerer: r.answerer, peer: r.peer },
              want: pf.hairpin
                ? {
                    forward: pf.name,
                    from: inside.name,
                    observed: "reached",
                    answerer: t?.name,
                    peer: t?.segment.ipv4!.gateway,
                  }
                : { forward: pf.name, from: inside.name, observed: "dropped", answerer: undefined, peer: undefined },
            });
          }
          expect(rows.map((x) => x.got)).toEqual(rows.map((x) => x.want));
        });

      it("exposes nothing of the router to the WAN: every TCP and UDP socket listening in the router is unreachable from the internet on every WAN address", async () => {
        // Dangerous when wrong: the Talos and Kubernetes APIs, DNS, DHCP or the metrics open to the internet.
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
          `${opts.title}: ${sockets.length} listening sockets, ${specs.length} probes from the internet, none reached the router`,
        );
      });
    });

    describe("XDP guard", () => {
      it("drops blocklisted WAN sources in the XDP guard before nftables and connection tracking see them, counts them under reason blocklist, and passes clean sources", async () => {
        const w = app.wans[0];
        const blocked4 = app.site.dataplane.blocklist.find((c) => familyOf(c.split("/")[0]) === 4);
        expect(blocked4, "the site has an IPv4 blocklist entry").toBeDefined();
        const bad4 = hostIn(blocked4!, 7);
        const blocked6 = app.site.dataplane.blocklist.find((c) => familyOf(c.split("/")[0]) === 6);
        const bad6 = blocked6 ? hostIn(blocked6, 7) : undefined;
        app.addInternetAddress(bad4);
        if (bad6) app.addInternetAddress(bad6);
        const clean4 = internetSource(4, 12);
        const client = internetClient(app);
        const before = await metrics(app);
        // Inbound: new connections from the blocked source to the router's WAN address (a forward where there is
        // one, so that a clean source demonstrably gets through the same path).
        const fwd = app.site.portForwards.find(
          (pf) => pf.protocol !== "udp" && (pf.wans ?? [w.wan.name]).includes(w.wan.name),
        );
        const fwdSrc = fwd?.sources
          ? hostIn(
              fwd.sources.find((c) => familyOf(c.split("/")[0]) === 4)!,
              3,
            )
          : clean4;
        const port = fwd ? Number(String(fwd.port).split("-")[0]) : 22;
        const inbound = await probe(app, app.inet, [
          ...[0, 1, 2, 3, 4].map((i) => ({
            id: `bad${i}`,
            proto: "tcp" as const,
            dst: w.addr4!,
            port,
            src: bad4,
            timeoutMs: 1200,
          })),
          { id: "badping", proto: "icmp", dst: w.addr4!, src: bad4, timeoutMs: 1200 },
          ...(fwd ? [{ id: "clean", proto: "tcp" as const, dst: w.addr4!, port, src: fwdSrc }] : []),
        ]);
        // Replies: a LAN client's connection to the blocked address never hears back; to a clean address it does.
        const outSpecs: ProbeSpec[] = [
          { id: "bad4", proto: "tcp", dst: bad4, port: 80, src: client.addr4, timeoutMs: 1200 },
          { id: "clean4", proto: "tcp", dst: INTERNET.server4, port: 80, src: client.addr4 },
        ];
        if (bad6 && client.slaac6 && w.addr6)
          outSpecs.push(
            { id: "bad6", proto: "tcp", dst: bad6, port: 80, src: client.slaac6, timeoutMs: 1200 },
            { id: "clean6", proto: "tcp", dst: INTERNET.server6, port: 80, src: client.slaac6 },
          );
        const outbound = await probe(app, client.ns, outSpecs);
        const after = await metrics(app);
        const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
        const ct = conntrack(app, 4);
        expect({
          inbound: [0, 1, 2, 3, 4].map((i) => inbound.get(`bad${i}`)!.observed),
          ping: inbound.get("badping")!.observed,
          clean: fwd ? inbound.get("clean")!.observed : "reached",
          conntrackFromBlocked: ct.filter((l) => /src=(\S+)/.exec(l)?.[1] === bad4).length,
          // the client's own attempt is tracked, but no answer ever reached connection tracking
          outboundState: ct
            .filter((l) => / dst=(\S+)/.exec(l)?.[1] === bad4)
            .map((l) => /^tcp\s+\d+\s+\d+\s+(\S+)/.exec(l)?.[1]),
          outboundBlocked: outSpecs.filter((s) => s.id.startsWith("bad")).map((s) => outbound.get(s.id)!.observed),
          outboundClean: outSpecs.filter((s) => s.id.startsWith("clean")).map((s) => outbound.get(s.id)!.observed),
        }).toEqual({
          inbound: ["dropped", "dropped", "dropped", "dropped", "dropped"],
          ping: "dropped",
          clean: "reached",
          conntrackFromBlocked: 0,
          outboundState: ["SYN_SENT"],
          outboundBlocked: outSpecs.filter((s) => s.id.startsWith("bad")).map(() => "dropped"),
          outboundClean: outSpecs.filter((s) => s.id.startsWith("clean")).map(() => "reached"),
        });
        // 5 SYNs and a ping inbound at least, and a SYN-ACK per outbound attempt
        const blockedMin = 6 + outSpecs.filter((s) => s.id.startsWith("bad")).length;
        expect(delta('router_dataplane_drop_packets_total{reason="blocklist"}')).toBeGreaterThanOrEqual(blockedMin);
        expect(delta('router_dataplane_xdp_passed_packets_total{reason="clean"}')).toBeGreaterThan(0);
      });
    });

    describe("DHCP server restarts", () => {
      it("keeps every DHCPv4 lease granted before Kea is killed (SIGKILL) mid-run: all are in the lease file, renewals keep their addresses after the restart, and new clients get free addresses", async () => {
        const seg = [...app.plan.segments]
          .filter((s) => s.dhcp.enabled && s.dhcp.pool)
          .sort((a, b) => b.dhcp.pool!.size - a.dhcp.pool!.size)[0];
        const newcomers = Array.from({ length: 6 }, (_, i) => app.addHost(seg.name, `k${i}`, 0x40 + i));
        // clients keep arriving, one every 300 ms; Kea is killed as soon as half of them are bound, while the
        // others are mid-exchange or yet to ask
        const arrivals = (async () => {
          for (const h of newcomers) {
            app.startDhcp4(h.ns, "eth0");
            await sleep(300);
          }
        })();
        await waitFor(
          "three new leases",
          () => (newcomers.filter((h) => app.lease4(h.ns)?.ip).length >= 3 ? true : undefined),
          20_000,
          20,
        );
        const kea = app.pods.get("kea-dhcp4")!;
        kea.signal("SIGKILL");
        await waitFor("kea-dhcp4 to die", () => (kea.exited ? true : undefined), 5000, 20);
        await arrivals;
        const granted = app.hosts
          .filter((h) => app.lease4(h.ns)?.ip)
          .map((h) => ({ ns: h.ns, mac: h.mac, address: app.lease4(h.ns)!.ip }));
        const file = keaLeases(app, 4);
        const missing = granted.filter(
          (g) => !file.some((r) => r.address === g.address && r.hwaddr === g.mac && r.state === 0),
        );
        expect(missing, "leases granted before the kill but missing from the lease file").toEqual([]);
        app.startPod(app.pod("kea-dhcp4"));
        await waitFor(
          "kea-dhcp4 to start again",
          () => (/DHCP4_STARTED/.test(app.pods.get("kea-dhcp4")!.log()) ? true : undefined),
          20_000,
        );
        // Before any client renews (a renewal would re-create a forgotten lease): a new client asking for a taken
        // address, and the clients that were mid-exchange, must all get free addresses.
        const taken = granted.find((g) => newcomers.some((h) => h.ns === g.ns))!;
        const late = app.addHost(seg.name, "late", 0x4f);
        app.startDhcp4(late.ns, "eth0", undefined, ["-r", taken.address]);
        const lateIp = await waitFor("a lease for the late client", () => app.lease4(late.ns)?.ip, 20_000);
        expect(granted.map((g) => g.address)).not.toContain(lateIp);
        await waitFor(
          "every newcomer to be bound",
          () => (newcomers.every((h) => app.lease4(h.ns)?.ip) ? true : undefined),
          30_000,
        );
        const all = app.hosts.filter((h) => h.segment === seg).map((h) => app.lease4(h.ns)?.ip);
        expect(new Set(all).size, `duplicate leases: ${all.join(", ")}`).toBe(all.length);
        // every granted lease renews to the same address (udhcpc renews on SIGUSR1)
        const renewingAt = Date.now();
        for (const g of granted)
          app.daemons
            .list()
            .find((d) => d.name === `${g.ns}-udhcpc`)!
            .signal("SIGUSR1");
        const events = (ns: string) =>
          readFileSync(`${app.dhcpState(ns)}.events`, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((l) => l.split(" "))
            .filter(([t]) => Number(t) * 1000 >= renewingAt - 50);
        const renewed = await waitFor(
          "every client to renew",
          () => {
            const r = granted.map((g) => ({
              address: g.address,
              after: events(g.ns).map(([, ev, ip]) => `${ev} ${ip ?? ""}`.trim()),
            }));
            return r.every((x) => x.after.some((e) => /^(renew|bound|nak|deconfig)/.test(e))) ? r : undefined;
          },
          20_000,
          100,
        );
        expect(renewed.map((r) => r.after.find((e) => /^(renew|bound|nak|deconfig)/.test(e)))).toEqual(
          granted.map((g) => `renew ${g.address}`),
        );
      });

      if (dhcp6Segments.length)
        it("keeps every DHCPv6 lease granted before Kea is killed (SIGKILL): all are in the lease file and a restarted client gets its address back", async () => {
          const holders = app.hosts.filter((h) => app.lease6(h.ns)?.new_ip6_address);
          expect(holders.length).toBeGreaterThan(0);
          const kea = app.pods.get("kea-dhcp6")!;
          kea.signal("SIGKILL");
          await waitFor("kea-dhcp6 to die", () => (kea.exited ? true : undefined), 5000, 20);
          const file = keaLeases(app, 6);
          const missing = holders.filter(
            (h) => !file.some((r) => r.address === app.lease6(h.ns)!.new_ip6_address && r.state === 0),
          );
          expect(missing.map((h) => h.name)).toEqual([]);
          app.startPod(app.pod("kea-dhcp6"));
          await waitFor(
            "kea-dhcp6 to start again",
            () => (/DHCP6_STARTED/.test(app.pods.get("kea-dhcp6")!.log()) ? true : undefined),
            20_000,
          );
          const before = holders.map((h) => app.lease6(h.ns)!.new_ip6_address);
          const restartedAt = Date.now();
          for (const h of holders) {
            await app.daemons
              .list()
              .find((d) => d.name === `${h.ns}-dhclient6` && !d.exited)!
              .stop("SIGTERM");
            app.exec(h.ns, ["ip", "-6", "addr", "flush", "dev", "eth0", "scope", "global", "dynamic"], {
              allowFail: true,
            });
            app.startDhcp6(h);
          }
          const after = await waitFor(
            "the restarted DHCPv6 clients to bind",
            () => {
              const a = holders.map((h) => app.lease6(h.ns)?.new_ip6_address);
              // a binding event of the restarted client, not one from before the kill
              const fresh = holders.every((h) =>
                readFileSync(`${app.dhcp6State(h.ns)}.events`, "utf8")
                  .split("\n")
                  .filter(Boolean)
                  .some(
                    (l) => Number(l.split(" ")[0]) * 1000 >= restartedAt && /^(REBOOT6|BOUND6)$/.test(l.split(" ")[1]),
                  ),
              );
              return fresh ? a : undefined;
            },
            30_000,
          );
          expect(after).toEqual(before);
        });
    });

    describe("multi-WAN", () => {
      it("routes each WAN's marked connections through that WAN's own table, which holds that WAN's default route", () => {
        const rules = app.exec(app.router, ["ip", "rule", "show"]).stdout;
        const rows = app.plan.wans.map((w) => {
          const side = app.wans.find((x) => x.wan.name === w.name)!;
          const table = app.exec(app.router, ["ip", "route", "show", "table", String(w.table)], {
            allowFail: true,
          }).stdout;
          return {
            wan: w.name,
            rule: new RegExp(`fwmark 0x${w.mark.toString(16)}/0xf0 lookup ${w.table}\\b`).test(rules),
            defaultRoute: /default via (\S+) dev (\S+)/.exec(table)?.slice(1, 3),
            wanGateway: [side.gateway4, w.name],
          };
        });
        expect(rows.map((r) => ({ wan: r.wan, rule: r.rule, defaultRoute: r.defaultRoute }))).toEqual(
          rows.map((r) => ({ wan: r.wan, rule: true, defaultRoute: r.wanGateway })),
        );
      });

      it("sends replies to connections that came in on the backup WAN back out through the backup WAN", async () => {
        // Dangerous when wrong: the reply leaves through the primary uplink with the backup's address and the
        // primary ISP drops it as spoofed (BCP 38): everything published on the backup WAN is unreachable.
        const backup = app.wans[1];
        const pf = app.site.portForwards.find((x) => onWan(x, backup) && !x.sources);
        // Without a forward there, a connection to an inside host cannot come in: ICMP to the router is not
        // answered on a WAN either, so the forward is what the site publishes.
        expect(pf, "the site publishes a port forward on its backup WAN").toBeDefined();
        const port = Number(String(pf!.port).split("-")[0]);
        const proto = pf!.protocol === "udp" ? "udp" : "tcp";
        const r = await probe(app, app.inet, [
          { id: "in", proto, dst: backup.addr4!, port, src: internetSource(4, 33) },
        ]);
        expect({ observed: r.get("in")!.observed, answerer: r.get("in")!.answerer }).toEqual({
          observed: "reached",
          answerer: target(pf!)?.name,
        });
      });

      // Upstream breakage shows only in the probes; a lost carrier shows at once in the link's routes. Each
      // failure is an interface of the primary ISP's namespace going down: its upstream, or its end of the WAN link.
      for (const { how, within, iface, budgetMs } of [
        {
          how: "breaks upstream (its link stays up)",
          within: "within the probe budget",
          iface: "uplink",
          budgetMs: failoverBudgetMs,
        },
        {
          how: "loses its link",
          within: `within ${LINK_LOSS_BUDGET_MS / 1000} s (no probe rounds)`,
          iface: "cust",
          budgetMs: () => LINK_LOSS_BUDGET_MS,
        },
      ])
        it(`moves new LAN connections to the backup WAN ${within} when the primary WAN ${how}, and back when it recovers`, async () => {
          const primary = app.wans[0];
          const backup = app.wans[1];
          const budget = budgetMs(primary.wan);
          const back = recoveryBudgetMs(primary.wan);
          const client = internetClient(app);
          const gapMs = 100;
          const warmup = 2000;
          const down = budget + 4000;
          const total = warmup + down + back + 4000;
          const count = Math.ceil(total / gapMs);
          const loop = probe(
            app,
            client.ns,
            Array.from({ length: count }, (_, i) => ({
              id: `p${i}`,
              proto: "tcp" as const,
              dst: INTERNET.server4,
              port: 80,
              src: client.addr4,
              timeoutMs: 700,
            })),
            { gapUs: gapMs * 1000, clock: true, parallel: 64 },
          );
          const breakCmd = ["ip", "link", "set", iface, "down"];
          const fixCmd = ["ip", "link", "set", iface, "up"];
          // The failure happens while the break command runs: after `breaking`, before `brokeAt`. Likewise the
          // recovery, between `fixing` and `fixedAt`.
          let breaking = 0;
          let brokeAt = 0;
          let fixing = 0;
          let fixedAt = 0;
          try {
            await sleep(warmup);
            breaking = Date.now();
            app.exec(primary.ns, breakCmd);
            brokeAt = Date.now();
            await sleep(down);
          } finally {
            fixing = Date.now();
            app.exec(primary.ns, fixCmd);
            // an interface going down takes its routes with it
            app.ispRoutes(primary);
            fixedAt = Date.now();
            // the probe loop always finishes before the test does
            await loop.catch(() => undefined);
          }
          const results = [...(await loop).values()].sort((a, b) => a.at! - b.at!);
          const via = (r: (typeof results)[number]) =>
            r.observed !== "reached"
              ? r.observed
              : r.peer === primary.addr4
                ? "primary"
                : r.peer === backup.addr4
                  ? "backup"
                  : `other ${r.peer}`;
          const timeline = results
            .map(
              (r) =>
                `${((r.at! - brokeAt) / 1000).toFixed(1)}s ${via(r)}${r.observed === "other" ? ` (${r.detail})` : ""}`,
            )
            .join(", ");
          // A connection still being set up when the primary fails (or comes back) may fail with it: only those
          // made wholly before the failure, wholly within the outage after the budget, or after the recovery
          // budget are held to a path.
          const before = results.filter((r) => r.end! < breaking);
          const during = results.filter((r) => r.at! >= brokeAt + budget && r.end! < fixing);
          const afterFix = results.filter((r) => r.at! >= fixedAt + back);
          const firstBackup = results.find((r) => r.at! >= brokeAt && via(r) === "backup");
          const lastNotPrimary = [...results].reverse().find((r) => r.at! >= fixedAt && via(r) !== "primary");
          console.log(
            `${opts.title}: primary WAN ${how}: first connection through the backup ${firstBackup ? ((firstBackup.at! - brokeAt) / 1000).toFixed(1) : "never"} s after the failure (budget ${budget / 1000} s); back on the primary ${lastNotPrimary ? ((lastNotPrimary.at! - fixedAt) / 1000 + gapMs / 1000).toFixed(1) : "0.0"} s after recovery (budget ${back / 1000} s)`,
          );
          expect(before.length).toBeGreaterThan(10);
          expect(
            before.map(via),
            `every connection made before the failure goes through the primary WAN: ${timeline}`,
          ).toEqual(before.map(() => "primary"));
          expect(during.length).toBeGreaterThan(10);
          expect(
            during.map(via),
            `every new connection from ${budget / 1000} s after the failure goes through the backup WAN: ${timeline}`,
          ).toEqual(during.map(() => "backup"));
          expect(afterFix.length).toBeGreaterThan(5);
          expect(
            afterFix.map(via),
            `every new connection from ${back / 1000} s after recovery goes through the primary WAN: ${timeline}`,
          ).toEqual(afterFix.map(() => "primary"));
        }, 120_000);
    });
  });
}
