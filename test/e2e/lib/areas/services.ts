/**
 * The network services under stress: Kea killed (SIGKILL) mid-run keeps every lease it granted, renewals keep
 * their addresses after the restart, and new clients get free ones.
 */
import { expect, it } from "vitest";
import { sleep, waitFor } from "../../../helpers/wait";
import { clientEvents } from "../dhcp-clients";
import { keaLeases } from "../checks";
import type { Area } from "../suite";

export const services: Area = {
  title: "DHCP server restarts",
  appliesTo: (site, plan) =>
    plan.segments.some((s) => s.dhcp.enabled) || site.segments.some((s) => s.dhcpv6.enabled && s.ipv6),
  tests(ctx) {
    const dhcpSegments = ctx.plan.segments.filter((s) => s.dhcp.enabled && s.dhcp.pool);
    const dhcp6 = ctx.site.segments.some((s) => s.dhcpv6.enabled && s.ipv6);

    if (dhcpSegments.length)
      it("keeps every DHCPv4 lease granted before Kea is killed (SIGKILL) mid-run: all are in the lease file, renewals keep their addresses after the restart, and new clients get free addresses", async () => {
        const app = ctx.app;
        const seg = [...dhcpSegments].sort((a, b) => b.dhcp.pool!.size - a.dhcp.pool!.size)[0];
        const newcomers = Array.from({ length: 6 }, (_, i) => app.addHost(seg.name, `k${i}`, 0x40 + i));
        // clients keep arriving, one every 300 ms; Kea is killed as soon as half of them are bound, while the
        // others are mid-exchange or yet to ask
        const arrivals = (async () => {
          for (const h of newcomers) {
            app.dhcp.start4(h.ns, "eth0");
            await sleep(300);
          }
        })();
        await waitFor(
          "three new leases",
          () => newcomers.filter((h) => app.dhcp.lease4(h.ns)?.ip).length >= 3,
          20_000,
          20,
        );
        const kea = app.pods.pod("kea-dhcp4");
        kea.signal("SIGKILL");
        await waitFor("kea-dhcp4 to die", () => kea.exited, 5000, 20);
        await arrivals;
        const granted = app.hosts
          .filter((h) => app.dhcp.lease4(h.ns)?.ip)
          .map((h) => ({ ns: h.ns, mac: h.mac, address: app.dhcp.lease4(h.ns)!.ip }));
        const file = keaLeases(app, 4);
        const missing = granted.filter(
          (g) => !file.some((r) => r.address === g.address && r.hwaddr === g.mac && r.state === 0),
        );
        expect(missing, "leases granted before the kill but missing from the lease file").toEqual([]);
        app.pods.start(app.pods.spec("kea-dhcp4"));
        await waitFor("kea-dhcp4 to start again", () => /DHCP4_STARTED/.test(app.pods.pod("kea-dhcp4").log()), 20_000);
        // Before any client renews (a renewal would re-create a forgotten lease): a new client asking for a taken
        // address, and the clients that were mid-exchange, must all get free addresses.
        const taken = granted.find((g) => newcomers.some((h) => h.ns === g.ns))!;
        const late = app.addHost(seg.name, "late", 0x4f);
        app.dhcp.start4(late.ns, "eth0", undefined, ["-r", taken.address]);
        const lateIp = await waitFor("a lease for the late client", () => app.dhcp.lease4(late.ns)?.ip, 20_000);
        expect(granted.map((g) => g.address)).not.toContain(lateIp);
        await waitFor("every newcomer to be bound", () => newcomers.every((h) => app.dhcp.lease4(h.ns)?.ip), 30_000);
        const all = app.hosts
          .filter((h) => h.segment === seg)
          .map((h) => app.dhcp.lease4(h.ns)?.ip)
          .filter(Boolean);
        expect(new Set(all).size, `duplicate leases: ${all.join(", ")}`).toBe(all.length);
        // every granted lease renews to the same address (udhcpc renews on SIGUSR1)
        const renewingAt = Date.now();
        for (const g of granted)
          app.daemons
            .list()
            .find((d) => d.name === `${g.ns}-udhcpc`)!
            .signal("SIGUSR1");
        const events = (ns: string) => clientEvents(app.dhcp.state4(ns)).filter(([t]) => t * 1000 >= renewingAt - 50);
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

    if (dhcp6)
      it("keeps every DHCPv6 lease granted before Kea is killed (SIGKILL): all are in the lease file and a restarted client gets its address back", async () => {
        const app = ctx.app;
        const holders = app.hosts.filter((h) => app.dhcp.lease6(h.ns)?.new_ip6_address);
        expect(holders.length).toBeGreaterThan(0);
        const kea = app.pods.pod("kea-dhcp6");
        kea.signal("SIGKILL");
        await waitFor("kea-dhcp6 to die", () => kea.exited, 5000, 20);
        const file = keaLeases(app, 6);
        const missing = holders.filter(
          (h) => !file.some((r) => r.address === app.dhcp.lease6(h.ns)!.new_ip6_address && r.state === 0),
        );
        expect(missing.map((h) => h.name)).toEqual([]);
        app.pods.start(app.pods.spec("kea-dhcp6"));
        await waitFor("kea-dhcp6 to start again", () => /DHCP6_STARTED/.test(app.pods.pod("kea-dhcp6").log()), 20_000);
        const before = holders.map((h) => app.dhcp.lease6(h.ns)!.new_ip6_address);
        const restartedAt = Date.now();
        for (const h of holders) {
          await app.daemons
            .list()
            .find((d) => d.name === `${h.ns}-dhclient6` && !d.exited)!
            .stop("SIGTERM");
          app.exec(h.ns, ["ip", "-6", "addr", "flush", "dev", "eth0", "scope", "global", "dynamic"], {
            allowFail: true,
          });
          app.dhcp.start6(h.ns);
        }
        const after = await waitFor(
          "the restarted DHCPv6 clients to bind",
          () => {
            // a binding event of the restarted client, not one from before the kill
            const fresh = holders.every((h) =>
              clientEvents(app.dhcp.state6(h.ns)).some(
                ([t, ev]) => t * 1000 >= restartedAt && /^(REBOOT6|BOUND6)$/.test(ev),
              ),
            );
            return fresh ? holders.map((h) => app.dhcp.lease6(h.ns)?.new_ip6_address) : undefined;
          },
          30_000,
        );
        expect(after).toEqual(before);
      });
  },
};
