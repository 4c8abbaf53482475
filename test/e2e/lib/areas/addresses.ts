/**
 * Addresses for the clients: DHCPv4 leases with the segment's options, reservations, router advertisements and
 * SLAAC, stateful DHCPv6, and mDNS reflection — each only where the site turns it on.
 */
import { expect, it } from "vitest";
import { contains, toBigInt } from "../../../../components/site/ip";
import { compilePolicy } from "../../../../components/site/policy";
import { siteSegment, type Host } from "../clients";
import { probe, type ProbeSpec } from "../checks";
import { sleep } from "../../../helpers/wait";
import type { Area } from "../suite";
import type { Appliance } from "../appliance";

/** Whether the router answers DNS in a zone (its dns service): only there is it handed out as the resolver. */
function servesDns(app: Appliance, zone: string): boolean {
  return (compilePolicy(app.site, app.plan).services.get(zone) ?? []).includes("dns");
}
import { hostIn } from "./common";

export const addresses: Area = {
  title: "addresses for the clients",
  appliesTo: (site) => site.segments.some((s) => s.dhcp.enabled || (s.ipv6 && (s.ra.enabled || s.dhcpv6.enabled))),
  tests(ctx) {
    const { site, plan } = ctx;
    const dhcpSegments = plan.segments.filter((s) => s.dhcp.enabled);
    const reservations = plan.segments
      .filter((s) => s.dhcp.enabled)
      .flatMap((s) => s.dhcp.reservations.filter((r) => r.ipv4));
    const raSegments = plan.segments.filter((s) => s.ipv6 && siteSegment(site, s.name).ra.enabled);
    const dhcp6Segments = site.segments.filter((s) => s.dhcpv6.enabled && s.ipv6);

    if (dhcpSegments.length)
      it("leases every DHCP segment's client an address from its own pool, with the segment's router, DNS servers, domain, search list and NTP servers; the NTP server named answers", async () => {
        const app = ctx.app;
        const model = compilePolicy(app.site, app.plan);
        const ntpProbes: { h: Host; spec: ProbeSpec }[] = [];
        const rows: { got: unknown; want: unknown }[] = [];
        for (const seg of dhcpSegments) {
          const s = siteSegment(site, seg.name);
          const h = app.client(seg.name);
          const lease = app.dhcp.lease4(h.ns)!;
          const pool = seg.dhcp.pool!;
          const v = toBigInt(lease.ip);
          const ntp =
            s.dhcp.ntpServers ??
            ((model.services.get(seg.zone) ?? []).includes("ntp") ? [seg.ipv4!.gateway] : undefined);
          rows.push({
            got: {
              segment: seg.name,
              inPool: v >= toBigInt(pool.start) && v <= toBigInt(pool.end),
              router: lease.router,
              subnet: lease.subnet,
              dns: lease.dns,
              domain: lease.domain,
              search: lease.search,
              ntp: lease.ntpsrv,
              lease: Number(lease.lease),
            },
            want: {
              segment: seg.name,
              inPool: true,
              router: seg.ipv4!.gateway,
              subnet: seg.ipv4!.netmask,
              // the router is the segment's resolver only where it answers DNS (the zone's dns service)
              dns: (s.dhcp.dnsServers ?? (servesDns(app, seg.zone) ? [seg.ipv4!.gateway] : undefined))?.join(" "),
              domain: seg.domain,
              search: (s.dhcp.searchDomains ?? [seg.domain]).join(" "),
              ntp: ntp?.join(" "),
              lease: seg.dhcp.leaseTime,
            },
          });
          if (ntp) ntpProbes.push({ h, spec: { id: seg.name, proto: "ntp", dst: ntp[0], port: 123, src: h.addr4 } });
        }
        expect(rows.map((r) => r.got)).toEqual(rows.map((r) => r.want));
        const answers = await Promise.all(ntpProbes.map(({ h, spec }) => probe(app, h.ns, [spec])));
        expect(answers.map((m, i) => [ntpProbes[i].spec.id, m.get(ntpProbes[i].spec.id)!.raw])).toEqual(
          ntpProbes.map(({ spec }) => [spec.id, expect.stringMatching(/^reached ntp stratum=\d+$/)]),
        );
      });

    if (reservations.length)
      it("leases each reserved MAC its reserved address", () => {
        const app = ctx.app;
        const got = app.hosts
          .filter((h) => h.reservation?.ipv4 && h.mode.dhcp4)
          .map((h) => ({ mac: h.mac, address: app.dhcp.lease4(h.ns)?.ip }));
        expect(got).toEqual(reservations.map((r) => ({ mac: r.mac, address: r.ipv4 })));
      });

    if (raSegments.length)
      it("advertises every IPv6 segment's prefix, flags, router lifetime, DNS servers and search list; clients autoconfigure by SLAAC where it is on and take the router as default gateway only where the lifetime is not zero", async () => {
        const app = ctx.app;
        const results = await Promise.all(
          raSegments.map(async (seg) => {
            const s = siteSegment(site, seg.name);
            const h = app.client(seg.name);
            const ra = (await app.run(h.ns, ["rdisc6", "-1", "-w", "2000", "eth0"])).stdout;
            const route = app.exec(h.ns, ["ip", "-6", "route", "show", "default"]).stdout;
            const routerLl = /inet6 (fe80::[0-9a-f:]+)\//.exec(
              app.exec(app.router, ["ip", "-6", "addr", "show", "dev", seg.link, "scope", "link"]).stdout,
            )?.[1];
            const slaac = app.clients.slaacAddress(h);
            return {
              got: {
                segment: seg.name,
                slaac: slaac ? contains(seg.ipv6!.prefix, slaac) : "none",
                gateway: /default via (\S+) dev eth0/.exec(route)?.[1] ?? "none",
                prefix: /Prefix\s+:\s+(\S+)/.exec(ra)?.[1],
                autonomous: /Autonomous address conf\.\s*:\s+(\w+)/.exec(ra)?.[1],
                managed: /Stateful address conf\.\s+:\s+(\w+)/.exec(ra)?.[1],
                lifetime: Number(/Router lifetime\s+:\s+(\d+)/.exec(ra)?.[1]),
                rdnss: [...ra.matchAll(/Recursive DNS server\s+:\s+(\S+)/g)].map((m) => m[1]),
                dnssl: /DNS search list\s+:\s+(.+?)\s*$/m.exec(ra)?.[1].split(/\s+/),
              },
              want: {
                segment: seg.name,
                slaac: s.ra.slaac ? true : "none",
                gateway: s.ra.lifetime > 0 ? routerLl : "none",
                prefix: seg.ipv6!.prefix,
                autonomous: s.ra.slaac ? "Yes" : "No",
                managed: s.dhcpv6.enabled ? "Yes" : "No",
                lifetime: s.ra.lifetime,
                rdnss: s.ra.dnsServers ?? (servesDns(app, seg.zone) ? [seg.ipv6!.gateway] : []),
                dnssl: s.dhcp.searchDomains ?? [seg.domain],
              },
            };
          }),
        );
        expect(results.map((r) => r.got)).toEqual(results.map((r) => r.want));
      });

    if (dhcp6Segments.length)
      it("leases stateful DHCPv6 addresses from the segment's pool with its DNS servers and search list where DHCPv6 is on, and reserved IPv6 addresses to reserved MACs", () => {
        const app = ctx.app;
        const rows: { got: unknown; want: unknown }[] = [];
        for (const s of dhcp6Segments) {
          const seg = plan.segments.find((x) => x.name === s.name)!;
          for (const h of app.hosts.filter((x) => x.segment.name === s.name && x.mode.dhcp6)) {
            const l = app.dhcp.lease6(h.ns);
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
                dns: (s.ra.dnsServers ?? (servesDns(app, seg.zone) ? [seg.ipv6!.gateway] : undefined))?.join(" "),
                search: (s.dhcp.searchDomains ?? [seg.domain]).join(" "),
              },
            });
          }
        }
        expect(rows.map((r) => r.got)).toEqual(rows.map((r) => r.want));
      });

    if (site.mdns.reflect.length)
      it("reflects mDNS announcements among the segments of each reflection group and into no other segment", async () => {
        const app = ctx.app;
        const rows: { got: unknown; want: unknown }[] = [];
        for (const g of site.mdns.reflect) {
          const members = plan.segments.filter((s) => g.zones.includes(s.zone));
          for (const announcer of members) {
            const tag = `e2e-${g.name}-${announcer.vlan}`;
            const listeners = plan.segments.filter((s) => s !== announcer);
            const heard = listeners.map((s) => app.run(app.client(s.name).ns, [app.netprobe, "mdns-listen", "3", tag]));
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
  },
};
