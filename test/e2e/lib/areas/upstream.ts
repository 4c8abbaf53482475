/**
 * A WAN behind an ISP box on a private subnet, the most common homelab uplink: the primary WAN's ISP becomes a
 * box serving DHCP on 192.168.1.0/24 (gateway 192.168.1.1) and masquerading its customers to the internet. The
 * router's DHCP client takes the new lease at run time (the box swapped in while the router runs), the XDP guard
 * learns the WAN's connected subnet and gateway from it (its bogon check drops 192.168.1.0/24 sources otherwise),
 * and inside clients reach the internet and the box itself through it. Runs last: the ISP stays a box.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { contains } from "../../../../components/site/ip";
import { compilePolicy, evaluate } from "../../../../components/site/policy";
import { sleep, waitFor } from "../../../helpers/wait";
import type { Appliance } from "../appliance";
import { metrics, probe, type ProbeResult, type ProbeSpec } from "../checks";
import { INTERNET } from "../internet";
import type { Area } from "../suite";

const BOX_SUBNET = "192.168.1.0/24";
const BOX = "192.168.1.1";

/** Turns the primary WAN's ISP into an ISP box: private subnet, DHCP from it, masquerade to its uplink. */
async function becomeBox(app: Appliance): Promise<void> {
  const w = app.wans[0];
  const isp = w.isp.name;
  await app.daemons
    .list()
    .find((d) => d.name === `${isp}-udhcpd`)
    ?.stop();
  app.shell.batch(w.ns, [`address flush dev cust scope global`, `address add ${BOX}/24 dev cust`]);
  // the box's customers leave masqueraded; its BCP 38 filter lets its own subnet out
  const nft = [
    "table ip ispbox {",
    "\tchain postrouting {",
    "\t\ttype nat hook postrouting priority srcnat; policy accept;",
    `\t\toifname "uplink" ip saddr ${BOX_SUBNET} masquerade`,
    "\t}",
    "}",
    `insert rule inet bcp38 forward iifname "cust" ip saddr ${BOX_SUBNET} accept`,
    "",
  ].join("\n");
  app.shell.exec(w.ns, ["nft", "-f", "-"], { input: nft });
  const conf = join(app.shell.work, `${isp}-box-udhcpd.conf`);
  writeFileSync(
    conf,
    [
      "start 192.168.1.100",
      "end 192.168.1.120",
      "interface cust",
      `lease_file ${join(app.shell.work, `${isp}-box-udhcpd.leases`)}`,
      `pidfile ${join(app.shell.work, `${isp}-box-udhcpd.pid`)}`,
      "option subnet 255.255.255.0",
      `option router ${BOX}`,
      `option dns ${BOX}`,
      "option lease 600",
      "",
    ].join("\n"),
  );
  writeFileSync(join(app.shell.work, `${isp}-box-udhcpd.leases`), "");
  app.shell.daemon(`${isp}-box-udhcpd`, w.ns, ["busybox", "udhcpd", "-f", conf]);
}

export const upstream: Area = {
  title: "a WAN behind an ISP box on a private subnet",
  appliesTo: (site, plan) => plan.wans[0].ipv4.mode === "dhcp" && site.dataplane.bogons.ipv4,
  tests(ctx) {
    it("takes the box's DHCP lease at run time, lets the box's subnet and gateway past the XDP guard, and inside clients reach the internet and the box through it", async () => {
      const app = ctx.app;
      const w = app.wans[0];
      const link = w.wan.name;
      const model = compilePolicy(app.site, app.plan);
      // an inside client whose zone may open TCP 80 to the internet and to the box's address (its web UI); a site
      // whose policy lets no zone do so is checked from the router alone
      const allowed = (src: string, zone: string, dst: string) =>
        evaluate(model, { from: zone, to: w.wan.zone, proto: "tcp", port: 80, src, dst }).verdict === "accept";
      const seg = app.plan.segments.find((s) => {
        const h = app.client(s.name);
        return h.addr4 && allowed(h.addr4, s.zone, INTERNET.server4) && allowed(h.addr4, s.zone, BOX);
      });
      const h = seg && app.client(seg.name);
      if (!h)
        console.log(
          `${app.site.node.hostname}: no zone may open TCP 80 on the internet; the box is checked from the router`,
        );

      await becomeBox(app);
      // the router's DHCP client releases and asks again: the box answers (a box swapped in at run time)
      const client = app.daemons
        .list()
        .find((d) => d.name === `${app.router}-udhcpc` && !d.exited && d.child.spawnargs.includes(link));
      expect(client, `the router's DHCP client on ${link}`).toBeDefined();
      client!.signal("SIGUSR2");
      await sleep(500);
      client!.signal("SIGUSR1");
      const lease = await waitFor(
        `a lease from the box on ${link}`,
        () => {
          const ip = app.dhcp.lease4(app.router, link)?.ip;
          return ip && contains(BOX_SUBNET, ip) ? ip : undefined;
        },
        30_000,
      );
      expect(app.dhcp.lease4(app.router, link)?.router).toBe(BOX);
      w.addr4 = lease;
      app.talos.firewall();
      // the guard stays on the WAN
      expect(app.shell.exec(app.router, ["ip", "link", "show", "dev", link]).stdout).toMatch(/prog\/xdp id \d+/);
      const specs: ProbeSpec[] = h
        ? [
            { id: "internet", proto: "tcp", dst: INTERNET.server4, port: 80, src: h.addr4, timeoutMs: 2000 },
            { id: "box", proto: "tcp", dst: BOX, port: 80, src: h.addr4, timeoutMs: 2000 },
          ]
        : [];
      const observe = async () => {
        const ping = await app.run(app.router, ["busybox", "ping", "-c", "1", "-W", "2", BOX], { allowFail: true });
        const r: Map<string, ProbeResult> = h ? await probe(app, h.ns, specs) : new Map();
        const seen = (id: string) => ({ answerer: r.get(id)?.answerer, peer: r.get(id)?.peer });
        return { routerPingsBox: ping.status === 0, ...(h ? { internet: seen("internet"), box: seen("box") } : {}) };
      };
      // the router reaches its gateway; the internet sees the box's uplink (double NAT); the box sees the lease
      const want = {
        routerPingsBox: true,
        ...(h
          ? {
              internet: { answerer: "internet", peer: w.isp.transit4[0] },
              box: { answerer: w.isp.name, peer: lease },
            }
          : {}),
      };
      // the loader follows the WAN's new address from netlink: a few rounds for it to catch up
      let got = await observe();
      for (let i = 0; i < 5 && JSON.stringify(got) !== JSON.stringify(want); i++) {
        await sleep(1000);
        got = await observe();
      }
      expect(got).toEqual(want);
      // what let the box's replies in: the guard's upstream entries for the WAN, learned from the lease
      // (its log line may follow the table update by a moment)
      await waitFor(
        "the loader's log of the box's subnet and gateway",
        () =>
          /bogon sources let through from its upstream: 192\.168\.1\.0\/24, 192\.168\.1\.1\/32/.test(
            app.pods.loader!.log(),
          ),
        10_000,
      );
      const m = await metrics(app);
      expect(m.get(`router_dataplane_upstream_prefixes{interface="${link}",family="ipv4"}`)).toBe(2);
    });
  },
};
