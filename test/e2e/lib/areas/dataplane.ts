/**
 * The XDP guard on the WAN: blocklisted sources dropped before nftables and connection tracking, in both
 * directions, counted by reason; clean sources pass.
 */
import { expect, it } from "vitest";
import { familyOf } from "../../../../components/site/ip";
import { conntrack, metrics, probe, type ProbeSpec } from "../checks";
import { INTERNET, internetSource } from "../internet";
import type { Area } from "../suite";
import { firstPort, internet6, internetClient, memberOf } from "./common";

export const dataplane: Area = {
  title: "XDP guard",
  ports: () => ({ tcp: [22, 80] }),
  appliesTo: (site) => site.dataplane.blocklist.some((c) => familyOf(c.split("/")[0]) === 4),
  tests(ctx) {
    it("drops blocklisted WAN sources in the XDP guard before nftables and connection tracking see them, counts them under reason blocklist, and passes clean sources", async () => {
      const app = ctx.app;
      const w = app.wans[0];
      const blocked4 = app.site.dataplane.blocklist.find((c) => familyOf(c.split("/")[0]) === 4)!;
      const bad4 = memberOf(blocked4);
      const blocked6 = app.site.dataplane.blocklist.find((c) => familyOf(c.split("/")[0]) === 6);
      const bad6 = blocked6 ? memberOf(blocked6) : undefined;
      app.topology.addInternetAddress(bad4);
      if (bad6) app.topology.addInternetAddress(bad6);
      const client = internetClient(app);
      const before = await metrics(app);
      // Inbound: new connections from the blocked source to the router's WAN address (a forward where there is
      // one, so that a clean source demonstrably gets through the same path).
      const fwd = app.site.portForwards.find(
        (pf) => pf.protocol !== "udp" && (pf.wans ?? [w.wan.name]).includes(w.wan.name),
      );
      const fwdPrefix = fwd?.sources?.find((c) => familyOf(c.split("/")[0]) === 4);
      if (fwd?.sources && !fwdPrefix) throw new Error(`forward ${fwd.name} has no IPv4 source to probe from`);
      const clean = fwdPrefix ? memberOf(fwdPrefix) : internetSource(4, 12);
      app.topology.addInternetAddress(clean);
      const port = fwd ? firstPort(fwd) : 22;
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
        ...(fwd ? [{ id: "clean", proto: "tcp" as const, dst: w.addr4!, port, src: clean }] : []),
      ]);
      // Replies: a LAN client's connection to the blocked address never hears back; to a clean address it does.
      const outSpecs: ProbeSpec[] = [
        { id: "bad4", proto: "tcp", dst: bad4, port: 80, src: client.addr4, timeoutMs: 1200 },
        { id: "clean4", proto: "tcp", dst: INTERNET.server4, port: 80, src: client.addr4 },
      ];
      const own6 = internet6(app, client);
      if (bad6 && own6)
        outSpecs.push(
          { id: "bad6", proto: "tcp", dst: bad6, port: 80, src: own6, timeoutMs: 1200 },
          { id: "clean6", proto: "tcp", dst: INTERNET.server6, port: 80, src: own6 },
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
  },
};
