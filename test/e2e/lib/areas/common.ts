/**
 * Facts several areas derive from the site and the running appliance: which host a port forward leads to, which
 * WANs it listens on, which client may open connections to the internet.
 */
import { nthAddress } from "../../../../components/site/ip";
import { compilePolicy, evaluate } from "../../../../components/site/policy";
import type { PortForward } from "../../../../components/site/schema";
import type { Appliance, Host, WanSide } from "../appliance";
import { hostAddress, routes } from "../clients";
import { INTERNET } from "../internet";

/** The address `offset` places into a prefix (a plain address stands for itself). */
export function hostIn(cidr: string, offset = 1): string {
  return cidr.includes("/") ? nthAddress(cidr, offset) : cidr;
}

/** True when a port forward listens on a WAN. */
export function onWan(app: Appliance, pf: PortForward, w: WanSide): boolean {
  return (pf.wans ?? app.plan.wans.map((x) => x.name)).includes(w.wan.name);
}

/** The host a port forward leads to (IPv4). */
export function forwardTarget(app: Appliance, pf: PortForward): Host | undefined {
  return app.hosts.find((h) => h.addr4 === pf.to || h.static4.includes(pf.to));
}

/** The host holding a port forward's IPv6 target. */
export function forwardTarget6(app: Appliance, pf: PortForward): Host | undefined {
  return pf.ipv6 ? app.hosts.find((h) => h.static6.includes(pf.ipv6!) || h.dhcp6 === pf.ipv6) : undefined;
}

/** The first port of a forward's public port or range. */
export function firstPort(pf: PortForward): number {
  return Number(String(pf.port).split("-")[0]);
}

/** The first segment's main client whose zone may open TCP connections to the internet through the primary WAN. */
export function internetClient(app: Appliance): Host {
  const model = compilePolicy(app.site, app.plan);
  const wanZone = app.plan.wans[0].zone;
  for (const seg of app.plan.segments) {
    const h = app.client(seg.name);
    if (!h.addr4) continue;
    const d = evaluate(model, {
      from: seg.zone,
      to: wanZone,
      proto: "tcp",
      port: 80,
      src: h.addr4,
      dst: INTERNET.server4,
    });
    if (d.verdict === "accept") return h;
  }
  throw new Error("no segment may reach the internet");
}

/** An address inside a prefix to stand for it: a single address is itself, else the prefix's first host. */
export function memberOf(prefix: string): string {
  const [addr, len] = prefix.split("/");
  if (!len || len === "32" || len === "128") return addr;
  return nthAddress(prefix, 1);
}

/**
 * The address a host reaches the IPv6 internet from through the primary WAN, if it can: it needs a default
 * route, and the WAN must translate (NAT66) or the address be global (the ISP routes the site's prefixes back).
 */
export function internet6(app: Appliance, h: Host): string | undefined {
  const w = app.wans[0];
  const own = hostAddress(h, 6);
  if (!own || !routes(h, 6) || !w.addr6) return undefined;
  if (w.wan.nat.ipv6 === "masquerade") return own;
  return w.wan.nat.ipv6 === "none" && !/^f[cd]/i.test(own) ? own : undefined;
}
