/**
 * Many clients at once: a crowd arriving together on one segment — each doing duplicate address detection,
 * soliciting routers, asking for a DHCP lease and then pinging its gateway — is served in full. This is what
 * Talos' ingress firewall in accept mode allows (components/talos-node/firewall.ts): block mode accepts ICMP
 * and ICMPv6 at 5 packets/s in total, which neighbour discovery and pings of a busy segment exceed; the test
 * shows that too, with the same crowd under a block-mode table built from the same documents.
 */
import { expect, it } from "vitest";
import type { SegmentPlan } from "../../../../components/site/plan";
import { talosFirewall } from "../../../helpers/talos-network";
import { waitFor } from "../../../helpers/wait";
import type { Appliance, Host } from "../appliance";
import { probe, type ProbeResult } from "../checks";
import { siteSegment } from "../clients";
import { PolicyOracle } from "../oracle";
import type { Area } from "../suite";

/** How many clients arrive at once. */
export const CROWD = 50;
/** Leases the segment's pool must have left beyond the crowd (earlier areas add clients of their own). */
const SPARE = 12;

/**
 * The segment to crowd: DHCP with room for the crowd, in a zone whose clients the router answers ping, IPv6 with
 * SLAAC preferred, the largest pool first.
 */
function crowdSegment(ctx: { site: Appliance["site"]; plan: Appliance["plan"] }): SegmentPlan | undefined {
  const oracle = new PolicyOracle(ctx.site);
  const slaac = (s: SegmentPlan) => {
    const x = siteSegment(ctx.site, s.name);
    return !!s.ipv6 && x.ra.enabled && x.ra.slaac;
  };
  return ctx.plan.segments
    .filter((s) => s.dhcp.enabled && (s.dhcp.pool?.size ?? 0) >= CROWD + SPARE)
    .filter((s) => oracle.services(s.zone).includes("ping"))
    .sort((a, b) => Number(slaac(b)) - Number(slaac(a)) || b.dhcp.pool!.size - a.dhcp.pool!.size)[0];
}

/**
 * A crowd of `CROWD` clients arriving at once on a segment (labels `label`0…, MAC indexes from `index`): each does
 * duplicate address detection and router solicitation and asks for a DHCP lease; resolves once each has its
 * lease (all distinct) and, where the segment offers SLAAC, its SLAAC address.
 */
export async function arrive(app: Appliance, seg: SegmentPlan, label: string, index: number): Promise<Host[]> {
  const hosts = Array.from({ length: CROWD }, (_, i) => app.addHost(seg.name, `${label}${i}`, index + i, true));
  for (const h of hosts) app.dhcp.start4(h.ns, "eth0");
  await waitFor(`${CROWD} leases`, () => hosts.every((h) => app.dhcp.lease4(h.ns)?.ip), 90_000, 250);
  for (const h of hosts) h.addr4 = app.dhcp.lease4(h.ns)!.ip;
  if (hosts[0].mode.slaac)
    await waitFor(
      `${CROWD} SLAAC addresses`,
      () => {
        for (const h of hosts) h.slaac6 ??= app.clients.slaacAddress(h);
        return hosts.every((h) => h.slaac6);
      },
      60_000,
      250,
    );
  const leases = hosts.map((h) => h.addr4);
  expect(new Set(leases).size, `duplicate leases: ${leases.join(", ")}`).toBe(CROWD);
  return hosts;
}

/** Every host pings the gateway in each family it has, all at once; results by host. */
export async function pingAll(app: Appliance, hosts: Host[], seg: SegmentPlan): Promise<Map<string, ProbeResult[]>> {
  const out = await Promise.all(
    hosts.map(async (h) => {
      const specs = [
        { id: "v4", proto: "icmp" as const, dst: seg.ipv4!.gateway, src: h.addr4, timeoutMs: 3000 },
        ...(h.slaac6
          ? [{ id: "v6", proto: "icmp" as const, dst: seg.ipv6!.gateway, src: h.slaac6, timeoutMs: 3000 }]
          : []),
      ];
      const r = await probe(app, h.ns, specs);
      return [h.name, specs.map((s) => r.get(s.id)!)] as const;
    }),
  );
  return new Map(out);
}

export const crowd: Area = {
  title: "many clients",
  appliesTo: (site, plan) => !!crowdSegment({ site, plan }),
  tests(ctx) {
    it(`serves ${CROWD} clients arriving at once on one segment: every one does duplicate address detection and router solicitation, gets its DHCP lease (and its SLAAC address where the segment offers it) and pings its gateway; under Talos' block mode the same pings are cut to its ICMP limit`, async () => {
      const app = ctx.app;
      const seg = crowdSegment(ctx)!;
      const hosts = await arrive(app, seg, "c", 0x100);
      const pings = await pingAll(app, hosts, seg);
      const failed = [...pings].filter(([, rs]) => rs.some((r) => r.observed !== "reached"));
      expect(failed.map(([name, rs]) => `${name}: ${rs.map((r) => r.raw).join(", ")}`)).toEqual([]);

      // The same crowd under block mode: the router answers only as many pings as the 5/s ICMP limit lets in.
      const block = talosFirewall({ ...app.host.firewall, defaultAction: "block" }, app.talos.nodeAddresses());
      app.exec(app.router, ["nft", "-f", "-"], { input: block });
      try {
        const limited = await pingAll(app, hosts, seg);
        const answered = [...limited.values()].flat().filter((r) => r.observed === "reached").length;
        const sent = [...limited.values()].flat().length;
        console.log(
          `${ctx.title}: ${CROWD} clients on ${seg.name}: all served in accept mode; under block mode ${answered} of ${sent} pings answered`,
        );
        expect(answered).toBeLessThan(sent / 2);
      } finally {
        app.talos.reload();
      }
    }, 240_000);
  },
};
