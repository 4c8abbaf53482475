/**
 * The appliance's wiring: the router namespace with its links as the node has them, the switch with a bridge per
 * segment, the ISPs and the internet host.
 *
 *   internet host ── isp1 ── wan0 ┐
 *   (1.1.1.1, 9.9.9.9,  isp2 ── wan1 ┤ router ── lan0.10 … lan0.N ── switch (a bridge per VLAN) ── clients
 *    servers, sources)                │
 *
 * - The router's links carry the names they have on the appliance. This kernel has no 802.1Q devices, so each
 *   segment is a veth named like its VLAN link (`lan0.10`) into a per-segment bridge of the switch namespace;
 *   VLAN links get their trunk's MAC and WAN links their NIC's MAC, as on the box.
 * - Boot order follows a real node: the physical NICs (WAN links) exist before Talos applies the SysctlConfig,
 *   VLAN links are created after it, then the per-link keys are written.
 * - ISPs hand out the WAN addresses (DHCP with a static lease for the WAN's MAC, RA for SLAAC), filter spoofed
 *   sources from their customer (BCP 38), and route to the internet host. ISP 1 routes the site's prefixes to the
 *   router: its global IPv6 prefixes as a real ISP would, and its private ones too, standing for a hostile
 *   neighbour on the WAN segment, so that WAN→LAN policy is tested rather than assumed from missing routes.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { q } from "../../../components/images";
import { contains, familyOf, nthAddress, parsePrefix } from "../../../components/site/ip";
import type { WanPlan } from "../../../components/site/plan";
import { waitFor } from "../../helpers/wait";
import type { DhcpClients } from "./dhcp-clients";
import type { Daemon, Shell } from "./exec";
import { INTERNET, ISPS, internetSource, type IspSpec } from "./internet";
import { addNamespace } from "./namespaces";
import type { HostConfig, RenderedSite } from "./rendered";

export interface WanSide {
  wan: WanPlan;
  isp: IspSpec;
  ns: string;
  /** The router's IPv4 address on this WAN (leased or static) once known. */
  addr4?: string;
  addr6?: string;
  /** The ISP's gateway address on the customer link, and the customer subnet. */
  gateway4?: string;
  customer4?: string;
}

export interface SysctlOutcome {
  applied: string[];
  /** Keys this network namespace does not have (host-global parameters). */
  absent: string[];
  failed: string[];
}

/** Names of the appliance's fixed namespaces. */
export interface Names {
  prefix: string;
  router: string;
  sw: string;
  inet: string;
}

/** Starts the probe tool's servers in a namespace, answering as `label`. */
export type Serve = (ns: string, label: string) => Daemon;

function mask4(len: number): string {
  const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 0xff).join(".");
}

export class Topology {
  readonly wans: WanSide[];
  /** Kernel parameters as the rendered SysctlConfig left them, before any harness workaround. */
  sysctls: SysctlOutcome = { applied: [], absent: [], failed: [] };
  /** accept_ra and forwarding of each WAN link once the rendered kernel parameters are written (before the loader). */
  readonly wanRaState = new Map<string, { acceptRa: number; forwarding: number }>();
  private routerRoutes: string[] = [];
  private readonly internetExtra = new Set<string>();

  constructor(
    private readonly shell: Shell,
    private readonly names: Names,
    private readonly rendered: RenderedSite,
    private readonly host: HostConfig,
    private readonly dhcp: DhcpClients,
    private readonly serve: Serve,
  ) {
    const plan = rendered.plan;
    if (plan.wans.length > ISPS.length) throw new Error(`the appliance has ${ISPS.length} ISPs`);
    this.wans = plan.wans.map((wan, i) => ({ wan, isp: ISPS[i], ns: `${names.prefix}-${ISPS[i].name}` }));
  }

  private get plan() {
    return this.rendered.plan;
  }

  /** The fixed namespaces: router, switch, internet, ISPs. */
  namespaces(): string[] {
    return [this.names.router, this.names.sw, this.names.inet, ...this.wans.map((w) => w.ns)];
  }

  /** Creates the namespaces and every link but the clients'; starts the ISPs' and the internet's daemons. */
  build(): void {
    for (const ns of this.namespaces()) addNamespace(this.shell, ns, ns !== this.names.router);
    this.buildRouterLinks();
    this.buildIsps();
    this.buildInternet();
  }

  // ------------------------------------------------------------------------------------------------ router

  /** Writes kernel parameters in the router namespace; records which ones it does not have. */
  private writeSysctls(entries: [string, string][]): SysctlOutcome {
    const script = entries
      .map(([k, v]) => {
        const path = `/proc/sys/${k.includes("/") ? k : k.replace(/\./g, "/")}`;
        return `if [ -e ${q(path)} ]; then if echo ${q(v)} > ${q(path)} 2>/dev/null; then echo "ok ${k}"; else echo "failed ${k}"; fi; else echo "absent ${k}"; fi`;
      })
      .join("\n");
    const out = this.shell.exec(this.names.router, ["sh", "-c", script]).stdout;
    const res: SysctlOutcome = { applied: [], absent: [], failed: [] };
    for (const line of out.split("\n").filter(Boolean)) {
      const [state, key] = line.split(" ");
      (state === "ok" ? res.applied : state === "absent" ? res.absent : res.failed).push(key);
    }
    return res;
  }

  readSysctl(ns: string, key: string): number {
    return Number(this.shell.exec(ns, ["cat", `/proc/sys/${key}`]).stdout.trim());
  }

  /** accept_ra and forwarding of a WAN link now. */
  wanRaNow(link: string): { acceptRa: number; forwarding: number } {
    return {
      acceptRa: this.readSysctl(this.names.router, `net/ipv6/conf/${link}/accept_ra`),
      forwarding: this.readSysctl(this.names.router, `net/ipv6/conf/${link}/forwarding`),
    };
  }

  private buildRouterLinks(): void {
    const R = this.names.router;
    // The NICs exist when Talos applies its configuration.
    for (const w of this.wans) {
      const doc = this.host.links.get(w.wan.name);
      const mac = this.host.macs.get(w.wan.name);
      this.shell.batch(R, [
        `link add ${w.wan.name} ${mac ? `address ${mac} ` : ""}type veth peer name cust netns ${w.ns}`,
        ...(doc?.mtu ? [`link set ${w.wan.name} mtu ${doc.mtu}`] : []),
      ]);
    }
    const first = this.writeSysctls(this.host.sysctls.filter(([k]) => !k.includes("/")));
    this.buildVlanLinks();
    const second = this.writeSysctls(this.host.sysctls.filter(([k]) => k.includes("/")));
    this.sysctls = {
      applied: [...first.applied, ...second.applied],
      absent: [...first.absent, ...second.absent],
      failed: [...first.failed, ...second.failed],
    };
    for (const w of this.wans) this.wanRaState.set(w.wan.name, this.wanRaNow(w.wan.name));
    // Addresses and routes of the links' documents; links up.
    const cmds: string[] = [];
    for (const l of this.host.links.values()) {
      if (!this.linkExists(l.name)) continue;
      for (const a of l.addresses) cmds.push(`address add ${a} dev ${l.name}`);
      cmds.push(`link set ${l.name} up`);
    }
    for (const w of this.wans) cmds.push(`link set ${w.wan.name} up`);
    this.shell.batch(R, cmds);
    this.routerRoutes = [...this.host.links.values()].flatMap((l) =>
      l.routes.map((r) => {
        const dst = r.destination ?? (familyOf(r.gateway) === 6 ? "::/0" : "0.0.0.0/0");
        return `route add ${dst} via ${r.gateway} dev ${l.name}${r.metric ? ` metric ${r.metric}` : ""}`;
      }),
    );
  }

  /** VLAN links appear once Talos has the configuration: a veth per VLAN into the switch's bridge for it. */
  private buildVlanLinks(): void {
    const vlanCmds: string[] = [];
    const swCmds: string[] = [];
    for (const l of this.host.links.values()) {
      if (l.kind !== "VLANConfig") continue;
      const mac = l.parent ? this.host.macs.get(l.parent) : undefined;
      vlanCmds.push(
        `link add ${l.name} ${mac ? `address ${mac} ` : ""}type veth peer name r${l.vlanID} netns ${this.names.sw}`,
      );
      if (l.mtu) vlanCmds.push(`link set ${l.name} mtu ${l.mtu}`);
      swCmds.push(
        `link add br${l.vlanID} type bridge stp_state 0 mcast_snooping 0 forward_delay 0`,
        `link set br${l.vlanID} up`,
        `link set r${l.vlanID} master br${l.vlanID} up`,
      );
    }
    this.shell.batch(this.names.router, vlanCmds);
    this.shell.batch(this.names.sw, swCmds);
  }

  private linkExists(name: string): boolean {
    return this.shell.exec(this.names.router, ["ip", "link", "show", name], { allowFail: true }).status === 0;
  }

  /** The links' static routes, then waits until the router's IPv6 addresses have left DAD. */
  async routerAddresses(): Promise<void> {
    this.shell.batch(this.names.router, this.routerRoutes);
    // IPv6 gateway addresses must finish DAD before daemons bind them.
    await waitFor(
      "the router's IPv6 addresses to leave DAD",
      () => !/tentative/.test(this.shell.exec(this.names.router, ["ip", "-6", "addr"]).stdout),
      10_000,
    );
  }

  // ------------------------------------------------------------------------------------------------ ISPs

  private buildIsps(): void {
    for (const w of this.wans) {
      const wanNet = this.wanNetwork(w);
      w.gateway4 = wanNet.gateway;
      w.customer4 = wanNet.cidr;
      this.shell.batch(w.ns, [`link add uplink type veth peer name ${w.isp.name} netns ${this.names.inet}`]);
      this.shell.exec(w.ns, [
        "sh",
        "-c",
        // forward; keep IPv6 addresses on links a test takes down and up again
        "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding; " +
          "echo 1 > /proc/sys/net/ipv6/conf/all/keep_addr_on_down",
      ]);
      const len = parsePrefix(wanNet.cidr).length;
      const v6 = w.wan.ipv6.mode === "slaac";
      this.shell.batch(w.ns, [
        `address add ${wanNet.gateway}/${len} dev cust`,
        ...(v6 ? [`address add ${w.isp.gateway6}/64 dev cust nodad`] : []),
        `address add ${w.isp.transit4[0]}/30 dev uplink`,
        `address add ${w.isp.transit6[0]}/64 dev uplink nodad`,
        "link set cust up",
        "link set uplink up",
      ]);
      this.bcp38(w, wanNet.cidr, v6);
      if (w.wan.ipv4.mode === "dhcp") this.ispDhcp(w, wanNet.gateway, len);
      if (v6) this.ispRadvd(w);
      this.serve(w.ns, w.isp.name);
    }
  }

  /**
   * BCP 38: only the customer's own addresses may leave the customer link: its WAN subnets and, at the primary
   * ISP, the site's global IPv6 prefixes it routes to the customer.
   */
  private bcp38(w: WanSide, cidr4: string, v6: boolean): void {
    const own6 = [...(v6 ? [w.isp.customer6] : []), ...(w === this.wans[0] ? this.routedPrefixes6() : [])];
    const nft = [
      "table inet bcp38 {",
      "\tchain forward {",
      "\t\ttype filter hook forward priority filter; policy accept;",
      `\t\tiifname "cust" ip saddr != ${cidr4} drop`,
      own6.length
        ? `\t\tiifname "cust" ip6 saddr != { ${own6.join(", ")} } drop`
        : '\t\tiifname "cust" meta nfproto ipv6 drop',
      "\t}",
      "}",
    ].join("\n");
    this.shell.exec(w.ns, ["nft", "-f", "-"], { input: `${nft}\n` });
  }

  private ispDhcp(w: WanSide, gateway: string, len: number): void {
    const mac = this.host.macs.get(w.wan.name);
    if (!mac) throw new Error(`WAN ${w.wan.name} has no NIC MAC in the machine configuration`);
    const isp = w.isp;
    const conf = join(this.shell.work, `${isp.name}-udhcpd.conf`);
    writeFileSync(
      conf,
      [
        `start ${isp.lease4}`,
        `end ${isp.lease4}`,
        "interface cust",
        `lease_file ${join(this.shell.work, `${isp.name}-udhcpd.leases`)}`,
        `pidfile ${join(this.shell.work, `${isp.name}-udhcpd.pid`)}`,
        `option subnet ${mask4(len)}`,
        `option router ${gateway}`,
        "option dns 1.1.1.1",
        "option lease 600",
        `static_lease ${mac} ${isp.lease4}`,
        "",
      ].join("\n"),
    );
    this.shell.daemon(`${isp.name}-udhcpd`, w.ns, ["busybox", "udhcpd", "-f", conf]);
  }

  private ispRadvd(w: WanSide): void {
    const isp = w.isp;
    const conf = join(this.shell.work, `${isp.name}-radvd.conf`);
    writeFileSync(
      conf,
      [
        "interface cust {",
        "\tAdvSendAdvert on;",
        "\tMinRtrAdvInterval 3;",
        "\tMaxRtrAdvInterval 10;",
        `\tprefix ${isp.customer6} { AdvOnLink on; AdvAutonomous on; };`,
        "};",
        "",
      ].join("\n"),
    );
    const pid = join(this.shell.work, `${isp.name}-radvd.pid`);
    const argv = ["radvd", "--nodaemon", "--config", conf, "--logmethod", "stderr", "--pidfile", pid];
    this.shell.daemon(`${isp.name}-radvd`, w.ns, argv);
  }

  /** The site's segment prefixes an ISP may route (global unicast; ULA never leaves a site). */
  routedPrefixes6(): string[] {
    return this.plan.segments.flatMap((s) => (s.ipv6 && !/^f[cd]/i.test(s.ipv6.prefix) ? [s.ipv6.prefix] : []));
  }

  /** The WAN's subnet and the ISP's gateway on it: the site's static address, else the ISP's DHCP network. */
  private wanNetwork(w: WanSide): { cidr: string; gateway: string } {
    if (w.wan.ipv4.mode === "static") {
      const { length } = parsePrefix(w.wan.ipv4.address);
      const addr = w.wan.ipv4.address.split("/")[0];
      return { cidr: `${nthAddress(`${addr}/${length}`, 0)}/${length}`, gateway: w.wan.ipv4.gateway };
    }
    return { cidr: w.isp.customer4, gateway: w.isp.gateway4 };
  }

  // ------------------------------------------------------------------------------------------------ internet

  /** Addresses of the internet host (on its loopback). */
  internetAddresses(): { v4: string[]; v6: string[] } {
    const targets = [...new Set(this.plan.wans.flatMap((w) => w.probe.targets))];
    const upstreams = this.rendered.site.dns.upstreams.map((u) => u.address);
    const all = [...new Set([...targets, ...upstreams])];
    const v4 = [...all.filter((a) => familyOf(a) === 4), INTERNET.server4];
    const v6 = [...all.filter((a) => familyOf(a) === 6), INTERNET.server6];
    for (let i = 0; i < INTERNET.sourceCount; i++) {
      v4.push(internetSource(4, i));
      v6.push(internetSource(6, i));
    }
    return { v4, v6 };
  }

  private buildInternet(): void {
    const { v4, v6 } = this.internetAddresses();
    const cmds = [...v4.map((a) => `address add ${a}/32 dev lo`), ...v6.map((a) => `address add ${a}/128 dev lo`)];
    for (const w of this.wans) {
      const isp = w.isp;
      cmds.push(
        `address add ${isp.transit4[1]}/30 dev ${isp.name}`,
        `address add ${isp.transit6[1]}/64 dev ${isp.name} nodad`,
        `link set ${isp.name} up`,
        `route add ${w.customer4} via ${isp.transit4[0]}`,
      );
      if (w.wan.ipv6.mode === "slaac") cmds.push(`route add ${isp.customer6} via ${isp.transit6[0]}`);
    }
    // The hostile neighbour: the site's private prefixes, and an internet address only the router could carry
    // further (transit), lead to the primary WAN.
    const first = this.wans[0];
    cmds.push(`route add ${INTERNET.transit4} via ${first.isp.transit4[0]}`);
    cmds.push(`route add ${INTERNET.transit6} via ${first.isp.transit6[0]}`);
    for (const s of this.plan.segments) {
      cmds.push(`route add ${s.ipv4!.cidr} via ${first.isp.transit4[0]}`);
      if (s.ipv6) cmds.push(`route add ${s.ipv6.prefix} via ${first.isp.transit6[0]}`);
    }
    this.shell.batch(this.names.inet, cmds);
    this.serve(this.names.inet, "internet");
  }

  /** Makes the internet host answer on an address too (a test's special source); once is enough. */
  addInternetAddress(addr: string): void {
    const { v4, v6 } = this.internetAddresses();
    if (v4.includes(addr) || v6.includes(addr) || this.internetExtra.has(addr)) return;
    this.internetExtra.add(addr);
    this.shell.ip(this.names.inet, `address add ${addr}/${familyOf(addr) === 4 ? 32 : 128} dev lo`);
  }

  // ------------------------------------------------------------------------------------------------ WAN clients

  /**
   * The router's IPv4 WAN addresses: the static ones and DHCP leases (the router's client acting like Talos',
   * which runs from boot whether or not the data-plane extension does).
   */
  async startWan4(): Promise<void> {
    for (const w of this.wans) {
      if (w.wan.ipv4.mode === "static") w.addr4 = w.wan.ipv4.address.split("/")[0];
      const dhcp = this.host.dhcp4.get(w.wan.name);
      if (dhcp) this.dhcp.start4(this.names.router, w.wan.name, dhcp.routeMetric);
    }
    for (const w of this.wans)
      if (this.host.dhcp4.has(w.wan.name))
        w.addr4 = await waitFor(
          `a DHCP lease on ${w.wan.name}`,
          () => this.dhcp.lease4(this.names.router, w.wan.name) && this.wanLease(w),
          20_000,
        );
  }

  /** The router's SLAAC WAN addresses (the uplink accepts advertisements once the loader has set accept_ra). */
  async waitWan6(): Promise<void> {
    for (const w of this.wans)
      if (w.wan.ipv6.mode === "slaac")
        w.addr6 = await waitFor(
          `a SLAAC address on ${w.wan.name}`,
          () => this.globalAddress6(this.names.router, w.wan.name, w.isp.customer6),
          20_000,
        );
  }

  private wanLease(w: WanSide): string | undefined {
    const out = this.shell.exec(this.names.router, ["ip", "-4", "-o", "addr", "show", "dev", w.wan.name]).stdout;
    return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1];
  }

  /** A global IPv6 address of a link inside a prefix, once it is usable. */
  globalAddress6(ns: string, link: string, prefix: string): string | undefined {
    const out = this.shell.exec(ns, ["ip", "-6", "-o", "addr", "show", "dev", link, "scope", "global"]).stdout;
    for (const line of out.split("\n")) {
      const m = /inet6 ([0-9a-f:]+)\/(\d+)/.exec(line);
      if (m && !/tentative/.test(line) && contains(prefix, m[1])) return m[1];
    }
    return undefined;
  }

  /**
   * (Re)installs an ISP's routes: its default route to the internet host and, for the primary WAN's ISP, the
   * hostile neighbour's routes of the site's private prefixes and the transit address to the router. Links going
   * down take their routes with them, so tests that break a link call this when they repair it.
   */
  ispRoutes(w: WanSide): void {
    const isp = w.isp;
    const cmds = [`route replace default via ${isp.transit4[1]}`, `route replace ::/0 via ${isp.transit6[1]}`];
    if (w === this.wans[0] && w.addr4) {
      cmds.push(
        ...this.plan.segments.map((s) => `route replace ${s.ipv4!.cidr} via ${w.addr4} dev cust`),
        `route replace ${INTERNET.transit4} via ${w.addr4} dev cust`,
      );
      if (w.wan.ipv6.mode === "slaac") {
        const ll = /inet6 (fe80::[0-9a-f:]+)\//.exec(
          this.shell.exec(this.names.router, ["ip", "-6", "-o", "addr", "show", "dev", w.wan.name, "scope", "link"])
            .stdout,
        )?.[1];
        if (!ll) throw new Error(`${w.wan.name} has no link-local address`);
        for (const s of this.plan.segments) if (s.ipv6) cmds.push(`route replace ${s.ipv6.prefix} via ${ll} dev cust`);
        cmds.push(`route replace ${INTERNET.transit6} via ${ll} dev cust`);
      }
    }
    this.shell.batch(w.ns, cmds);
  }
}
