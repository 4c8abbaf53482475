/**
 * The virtual appliance: a router built from network namespaces that runs a site's rendered configuration with
 * the real daemons.
 *
 *   internet host ── isp1 ── wan0 ┐
 *   (1.1.1.1, 9.9.9.9,  isp2 ── wan1 ┤ router ── lan0.10 … lan0.N ── switch (a bridge per VLAN) ── clients
 *    servers, sources)                │ (loader: XDP guard + nftables; Kea, radvd, chrony, Avahi as pods)
 *
 * - The router's links carry the names they have on the appliance. This kernel has no 802.1Q devices, so each
 *   segment is a veth named like its VLAN link (`lan0.10`) into a per-segment bridge of the switch namespace;
 *   VLAN links get their trunk's MAC and WAN links their NIC's MAC, as on the box.
 * - Boot order follows a real node: the physical NICs (WAN links) exist before Talos applies the SysctlConfig,
 *   VLAN links are created after it, then the per-link keys are written.
 * - Each network-service DaemonSet runs like its pod: its container command and environment in the router's
 *   network namespace, in a mount namespace of its own holding the pod's volumes (ConfigMap files, hostPath
 *   state that survives restarts, emptyDirs). The data-plane loader runs like its Talos extension service: the
 *   ExtensionServiceConfig files at their mount paths, a bpffs of its own at /sys/fs/bpf, its state directory.
 * - The router's WAN DHCP clients act like Talos': address plus a default route with the DHCPv4Config metric.
 * - ISPs hand out the WAN addresses (DHCP with a static lease for the WAN's MAC, RA for SLAAC), filter spoofed
 *   sources from their customer (BCP 38), and route to the internet host. ISP 1 routes the site's prefixes to the
 *   router: its global IPv6 prefixes as a real ISP would, and its private ones too, standing for a hostile
 *   neighbour on the WAN segment, so that WAN→LAN policy is tested rather than assumed from missing routes.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { CONFIG_PATH, EXTENSION_NAME, STATE_DIR } from "../../../components/dataplane/loader-config";
import { contains, familyOf, nthAddress, parsePrefix, toBigInt } from "../../../components/site/ip";
import type { ReservationPlan, SegmentPlan, WanPlan } from "../../../components/site/plan";
import { MANAGEMENT_TCP_PORTS } from "../../../components/site/policy";
import { Daemon, Daemons, inNs, run, sh, waitFor, type RunResult } from "./exec";
import { INTERNET, ISPS, internetSource, type IspSpec } from "./internet";
import { hostConfig, servicePods, type HostConfig, type PodSpec, type RenderedSite } from "./rendered";

export const ROOT = join(__dirname, "../../..");
export const LOADER = join(ROOT, "ebpf/build/router-dataplane");
const EXTENSION_SPEC = join(ROOT, "ebpf/extension/rootfs/usr/local/etc/containers/router-dataplane.yaml");
const NETPROBE_SRC = join(__dirname, "../tools/netprobe.c");

/**
 * Files of a Talos node that services mount. resolv.conf: with host DNS on (the rendered ResolverConfig),
 * Talos points the node's resolver at its host DNS on 127.0.0.53; nothing answers DNS there in the appliance.
 */
const NODE_FILES: Record<string, string> = {
  "/etc/resolv.conf": "nameserver 127.0.0.53\n",
};

/** Every command the appliance calls (the test tiers check they are installed). */
export const APPLIANCE_COMMANDS = [
  "ip",
  "nft",
  "sysctl",
  "make",
  "cc",
  "busybox",
  "dhclient",
  "rdisc6",
  "kea-dhcp4",
  "kea-dhcp6",
  "radvd",
  "chronyd",
  "avahi-daemon",
  "conntrack",
  "curl",
  "ss",
  "unshare",
  "mount",
  "sh",
  "cat",
  "stat",
];

/**
 * Builds the data-plane loader (make is incremental: a no-op when the binary is current) when this machine can
 * (root, make). The test tier then checks that the binary exists, so a failed build is reported as a missing
 * prerequisite, with make's output printed.
 */
export function ensureLoader(): void {
  if (process.getuid?.() !== 0) return;
  if (sh(["sh", "-c", "command -v make"], { allowFail: true }).status !== 0) return;
  const r = sh(["make", "-C", join(ROOT, "ebpf"), "loader"], { timeoutMs: 300_000, allowFail: true });
  if (r.status !== 0) console.warn(`building the data-plane loader failed:\n${r.stdout}\n${r.stderr}`);
}

/** Compiles the probe tool into the work directory; returns its path. */
export function buildTools(workDir: string): string {
  const out = join(workDir, "netprobe");
  sh(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, NETPROBE_SRC], { timeoutMs: 60_000 });
  return out;
}

/** A client machine on a segment (its own network namespace). */
export interface Host {
  ns: string;
  /** Label in its servers' answers: the segment, or segment-reservation. */
  name: string;
  segment: SegmentPlan;
  mac: string;
  reservation?: ReservationPlan;
  /** Addresses configured by hand (hosts named by firewall rules, a reservation's fixed IPv6). */
  static4: string[];
  static6: string[];
  /** Probe-source addresses (the segment's main client only). */
  sources4: string[];
  sources6: string[];
  /** Learnt once the appliance runs. */
  addr4?: string;
  slaac6?: string;
  dhcp6?: string;
}

export interface WanSide {
  wan: WanPlan;
  isp: IspSpec;
  ns: string;
  /** The router's IPv4 address on this WAN (leased or static) once known. */
  addr4?: string;
  addr6?: string;
  /** The ISP's gateway address on the customer link. */
  gateway4?: string;
  customer4?: string;
}

export interface ApplianceOptions {
  /** Prefix of every namespace name: unique per test file, so test files never share anything. */
  prefix: string;
  rendered: RenderedSite;
  /** Ports every client and the internet host answer on. */
  ports: { tcp: number[]; udp: number[] };
  /** Addresses some host must hold (e.g. firewall address-group members no reservation covers). */
  extraAddresses?: string[];
  /** Probe-source addresses per segment and family on each segment's main client. */
  probeSources?: number;
}

interface SysctlOutcome {
  applied: string[];
  /** Keys this network namespace does not have (host-global parameters). */
  absent: string[];
  failed: string[];
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A MAC for a host the site does not name: locally administered, derived from the VLAN and an index. */
function hostMac(vlan: number, i: number): string {
  const h = (n: number) => n.toString(16).padStart(2, "0");
  return `02:e2:${h(vlan >> 8)}:${h(vlan & 0xff)}:00:${h(i)}`;
}

function sanitize(s: string): string {
  return s.replace(/[^a-z0-9-]/gi, "-");
}

export class Appliance {
  readonly work: string;
  readonly host: HostConfig;
  readonly daemons = new Daemons();
  readonly router: string;
  readonly sw: string;
  readonly inet: string;
  readonly wans: WanSide[];
  readonly hosts: Host[] = [];
  netprobe = "";
  /** Kernel parameters as the rendered SysctlConfig left them, before any harness workaround. */
  sysctls: SysctlOutcome = { applied: [], absent: [], failed: [] };
  /** accept_ra and forwarding of each WAN link with only the rendered parameters applied. */
  /** accept_ra and forwarding of each WAN link once the rendered kernel parameters are written (before the loader). */
  wanRaState = new Map<string, { acceptRa: number; forwarding: number }>();

  /** accept_ra and forwarding of a WAN link now. */
  wanRaNow(link: string): { acceptRa: number; forwarding: number } {
    return {
      acceptRa: this.readSysctl(this.router, `net/ipv6/conf/${link}/accept_ra`),
      forwarding: this.readSysctl(this.router, `net/ipv6/conf/${link}/forwarding`),
    };
  }
  /** What the harness had to do beyond the rendered configuration, and why. Empty on a correct render. */
  readonly workarounds: string[] = [];
  loader?: Daemon;
  readonly pods = new Map<string, Daemon>();
  private readonly podSpecs: PodSpec[];
  private readonly configMap: Map<string, string>;
  private readonly exitHook = () => this.killSync();
  private readonly probeSourceCount: number;

  constructor(readonly opts: ApplianceOptions) {
    const r = opts.rendered;
    this.work = mkdtempSync(join(tmpdir(), `${opts.prefix}-`));
    this.host = hostConfig(r);
    const pods = servicePods(r);
    this.podSpecs = pods.pods;
    this.configMap = pods.configMap;
    this.router = `${opts.prefix}-router`;
    this.sw = `${opts.prefix}-switch`;
    this.inet = `${opts.prefix}-internet`;
    this.probeSourceCount = opts.probeSources ?? 40;
    if (r.plan.wans.length > ISPS.length) throw new Error(`the appliance has ${ISPS.length} ISPs`);
    this.wans = r.plan.wans.map((wan, i) => ({ wan, isp: ISPS[i], ns: `${opts.prefix}-${ISPS[i].name}` }));
    this.planHosts();
  }

  get site() {
    return this.opts.rendered.site;
  }

  get plan() {
    return this.opts.rendered.plan;
  }

  /** Every namespace of this appliance. */
  namespaces(): string[] {
    return [this.router, this.sw, this.inet, ...this.wans.map((w) => w.ns), ...this.hosts.map((h) => h.ns)];
  }

  // ------------------------------------------------------------------------------------------------ hosts

  private planHosts(): void {
    const extra = this.opts.extraAddresses ?? [];
    for (const seg of this.plan.segments) {
      const main: Host = {
        ns: `${this.opts.prefix}-${seg.name}`,
        name: seg.name,
        segment: seg,
        mac: hostMac(seg.vlan, 1),
        static4: [],
        static6: [],
        sources4: this.segmentSources(seg, 4),
        sources6: this.segmentSources(seg, 6),
      };
      this.hosts.push(main);
      seg.dhcp.reservations.forEach((res) => {
        const h: Host = {
          ns: `${this.opts.prefix}-${seg.name}-${sanitize(res.name)}`,
          name: `${seg.name}-${res.name}`,
          segment: seg,
          mac: res.mac,
          reservation: res,
          static4: [],
          static6: [],
          sources4: [],
          sources6: [],
        };
        // A reservation's IPv6 address is handed out only where DHCPv6 runs; elsewhere the operator configures
        // it on the device, as here.
        const site = this.site.segments.find((s) => s.name === seg.name)!;
        if (res.ipv6 && !site.dhcpv6.enabled) h.static6.push(res.ipv6);
        this.hosts.push(h);
      });
      for (const a of extra) {
        const fam = familyOf(a);
        const inSeg = fam === 4 ? contains(seg.ipv4!.cidr, a) : !!seg.ipv6 && contains(seg.ipv6.prefix, a);
        if (!inSeg) continue;
        const held = this.hosts.some(
          (h) => h.segment === seg && (h.reservation?.ipv4 === a || h.reservation?.ipv6 === a || h.static6.includes(a)),
        );
        if (!held) (fam === 4 ? main.static4 : main.static6).push(a);
      }
    }
  }

  /** Probe-source addresses of a segment: outside the DHCP pool, the reservations and the gateway. */
  segmentSources(seg: SegmentPlan, family: 4 | 6): string[] {
    if (family === 6) {
      if (!seg.ipv6) return [];
      return Array.from({ length: this.probeSourceCount }, (_, i) => nthAddress(seg.ipv6!.prefix, 0xe2e00 + i));
    }
    const taken = new Set<string>([
      seg.ipv4!.gateway,
      ...seg.dhcp.reservations.flatMap((r) => (r.ipv4 ? [r.ipv4] : [])),
      ...(this.opts.extraAddresses ?? []),
    ]);
    const pool = seg.dhcp.pool;
    const out: string[] = [];
    for (let i = 2n; i < BigInt(seg.ipv4!.hosts) && out.length < this.probeSourceCount; i++) {
      const a = nthAddress(seg.ipv4!.cidr, i);
      const v = toBigInt(a);
      if (taken.has(a)) continue;
      if (pool && v >= toBigInt(pool.start) && v <= toBigInt(pool.end)) continue;
      out.push(a);
    }
    return out;
  }

  /** The main client of a segment. */
  client(segment: string): Host {
    const h = this.hosts.find((x) => x.segment.name === segment && !x.reservation);
    if (!h) throw new Error(`no client on segment ${segment}`);
    return h;
  }

  /** The host holding a reservation. */
  reserved(segment: string, name: string): Host {
    const h = this.hosts.find((x) => x.segment.name === segment && x.reservation?.name === name);
    if (!h) throw new Error(`no host for reservation ${segment}/${name}`);
    return h;
  }

  // ------------------------------------------------------------------------------------------------ lifecycle

  /** Builds every namespace and starts every daemon; throws (after tearing down) when something does not come up. */
  async start(): Promise<void> {
    process.once("exit", this.exitHook);
    try {
      Appliance.cleanupLeftovers(this.opts.prefix);
      this.netprobe = buildTools(this.work);
      this.createNamespaces();
      this.buildRouterLinks();
      this.buildSwitchAndHosts();
      this.buildIsps();
      this.buildInternet();
      await this.waitRouterAddresses();
      this.startLoader();
      await waitFor(
        "the loader to apply the nftables ruleset",
        () =>
          this.loader!.exited
            ? this.fail("loader exited", this.loader!)
            : /nft_applied/.test(this.loader!.log()) || undefined,
        20_000,
      );
      for (const w of this.wans) this.ispRoutes(w);
      await this.startWanClients();
      this.startStandIns();
      this.ispRoutes(this.wans[0]);
      for (const pod of this.podSpecs) this.startPod(pod);
      await this.startClients();
    } catch (e) {
      const logs = this.daemons
        .list()
        .filter((d) => d.exited || /error|fail/i.test(d.log()))
        .map((d) => `--- ${d.name} (pid ${d.pid}${d.exited ? `, exited ${d.exitCode}` : ""})\n${d.log().slice(-3000)}`)
        .join("\n");
      await this.stop();
      throw new Error(`${(e as Error).message}\n${logs}`);
    }
  }

  private fail(what: string, d: Daemon): never {
    throw new Error(`${what} (status ${d.exitCode}):\n${d.log().slice(-4000)}`);
  }

  /** Stops every daemon by pid, deletes every namespace and the work directory. */
  async stop(): Promise<void> {
    await this.daemons.stopAll();
    this.deleteNamespaces();
    process.removeListener("exit", this.exitHook);
    if (process.env.E2E_KEEP_WORK !== "1") rmSync(this.work, { recursive: true, force: true });
  }

  private killSync(): void {
    this.daemons.killAllSync();
    this.deleteNamespaces();
  }

  private deleteNamespaces(): void {
    for (const ns of this.namespaces()) Appliance.deleteNamespace(ns);
  }

  private static deleteNamespace(ns: string): void {
    if (!existsSync(`/run/netns/${ns}`)) return;
    // Only processes this harness started live in its namespaces (a previous run's, after a crash).
    const pids = sh(["ip", "netns", "pids", ns], { allowFail: true }).stdout.split(/\s+/).filter(Boolean);
    for (const pid of pids)
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone already
      }
    sh(["ip", "netns", "del", ns], { allowFail: true });
  }

  /** Removes namespaces a crashed earlier run of the same test file left behind. */
  static cleanupLeftovers(prefix: string): void {
    const list = sh(["ip", "netns", "list"])
      .stdout.split("\n")
      .map((l) => l.split(" ")[0]);
    for (const ns of list) if (ns.startsWith(`${prefix}-`)) Appliance.deleteNamespace(ns);
  }

  // ------------------------------------------------------------------------------------------------ commands

  /** Runs a command in a namespace (synchronously). */
  exec(ns: string, argv: string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}): RunResult {
    return sh(inNs(ns, argv), opts);
  }

  /** Runs a command in a namespace (asynchronously). */
  run(ns: string, argv: string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}) {
    return run(inNs(ns, argv), opts);
  }

  private ip(ns: string, args: string): void {
    sh(["ip", "-n", ns, ...args.split(" ")]);
  }

  private batch(ns: string, commands: string[]): void {
    if (commands.length) sh(["ip", "-n", ns, "-batch", "-"], { input: `${commands.join("\n")}\n` });
  }

  /** A fresh log file for a daemon (a restarted daemon gets a new one). */
  private log(name: string): string {
    let path = join(this.work, `${sanitize(name)}.log`);
    for (let i = 2; existsSync(path); i++) path = join(this.work, `${sanitize(name)}-${i}.log`);
    return path;
  }

  // ------------------------------------------------------------------------------------------------ building

  private createNamespaces(): void {
    for (const ns of this.namespaces()) {
      sh(["ip", "netns", "add", ns]);
      this.ip(ns, "link set lo up");
      // ping sockets for the prober (everywhere but the router, which runs only the site's configuration)
      if (ns !== this.router) this.exec(ns, ["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]);
    }
  }

  /** Writes kernel parameters in the router namespace; records which ones it does not have. */
  private writeSysctls(entries: [string, string][]): SysctlOutcome {
    const script = entries
      .map(([k, v]) => {
        const path = `/proc/sys/${k.includes("/") ? k : k.replace(/\./g, "/")}`;
        return `if [ -e ${q(path)} ]; then if echo ${q(v)} > ${q(path)} 2>/dev/null; then echo "ok ${k}"; else echo "failed ${k}"; fi; else echo "absent ${k}"; fi`;
      })
      .join("\n");
    const out = this.exec(this.router, ["sh", "-c", script]).stdout;
    const res: SysctlOutcome = { applied: [], absent: [], failed: [] };
    for (const line of out.split("\n").filter(Boolean)) {
      const [state, key] = line.split(" ");
      (state === "ok" ? res.applied : state === "absent" ? res.absent : res.failed).push(key);
    }
    return res;
  }

  private readSysctl(ns: string, key: string): number {
    return Number(this.exec(ns, ["cat", `/proc/sys/${key}`]).stdout.trim());
  }

  private buildRouterLinks(): void {
    const R = this.router;
    // The NICs exist when Talos applies its configuration.
    for (const w of this.wans) {
      const doc = this.host.links.get(w.wan.name);
      const mac = this.host.macs.get(w.wan.name);
      this.batch(R, [
        `link add ${w.wan.name} ${mac ? `address ${mac} ` : ""}type veth peer name cust netns ${w.ns}`,
        ...(doc?.mtu ? [`link set ${w.wan.name} mtu ${doc.mtu}`] : []),
      ]);
    }
    const dotted = this.host.sysctls.filter(([k]) => !k.includes("/"));
    const perLink = this.host.sysctls.filter(([k]) => k.includes("/"));
    const first = this.writeSysctls(dotted);
    // VLAN links appear once Talos has the configuration.
    const vlanCmds: string[] = [];
    const swCmds: string[] = [];
    for (const l of this.host.links.values()) {
      if (l.kind !== "VLANConfig") continue;
      const mac = l.parent ? this.host.macs.get(l.parent) : undefined;
      vlanCmds.push(
        `link add ${l.name} ${mac ? `address ${mac} ` : ""}type veth peer name r${l.vlanID} netns ${this.sw}`,
      );
      if (l.mtu) vlanCmds.push(`link set ${l.name} mtu ${l.mtu}`);
      swCmds.push(
        `link add br${l.vlanID} type bridge stp_state 0 mcast_snooping 0 forward_delay 0`,
        `link set br${l.vlanID} up`,
        `link set r${l.vlanID} master br${l.vlanID} up`,
      );
    }
    this.batch(R, vlanCmds);
    this.batch(this.sw, swCmds);
    const second = this.writeSysctls(perLink);
    this.sysctls = {
      applied: [...first.applied, ...second.applied],
      absent: [...first.absent, ...second.absent],
      failed: [...first.failed, ...second.failed],
    };
    for (const w of this.wans) {
      const l = w.wan.name;
      this.wanRaState.set(l, {
        acceptRa: this.readSysctl(R, `net/ipv6/conf/${l}/accept_ra`),
        forwarding: this.readSysctl(R, `net/ipv6/conf/${l}/forwarding`),
      });
    }
    // Addresses and routes of the links' documents; links up.
    const cmds: string[] = [];
    for (const l of this.host.links.values()) {
      if (!this.linkExists(l.name)) continue;
      for (const a of l.addresses) cmds.push(`address add ${a} dev ${l.name}`);
      cmds.push(`link set ${l.name} up`);
    }
    for (const w of this.wans) cmds.push(`link set ${w.wan.name} up`);
    this.batch(R, cmds);
    const routes: string[] = [];
    for (const l of this.host.links.values())
      for (const r of l.routes) {
        const fam = "";
        const dst = r.destination ?? (familyOf(r.gateway) === 6 ? "::/0" : "0.0.0.0/0");
        routes.push(`${fam}route add ${dst} via ${r.gateway} dev ${l.name}${r.metric ? ` metric ${r.metric}` : ""}`);
      }
    this.routerRoutes = routes;
  }

  private routerRoutes: string[] = [];

  private linkExists(name: string): boolean {
    return sh(["ip", "-n", this.router, "link", "show", name], { allowFail: true }).status === 0;
  }

  private buildSwitchAndHosts(): void {
    const counters = new Map<number, number>();
    for (const h of this.hosts) {
      const vlan = h.segment.vlan;
      const i = (counters.get(vlan) ?? 0) + 1;
      counters.set(vlan, i);
      const port = `h${vlan}-${i}`;
      this.batch(this.sw, [
        `link add ${port} type veth peer name eth0 netns ${h.ns}`,
        `link set ${port} master br${vlan} up`,
      ]);
      this.exec(h.ns, [
        "sh",
        "-c",
        [
          // no DAD delay and no temporary addresses on the test hosts
          "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad",
          "echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad",
          "echo 0 > /proc/sys/net/ipv6/conf/eth0/use_tempaddr",
          // SLAAC stops once a link has max_addresses addresses, the probe sources included
          "echo 0 > /proc/sys/net/ipv6/conf/eth0/max_addresses",
        ].join("\n"),
      ]);
      const mtu = h.segment.mtu ? [`link set eth0 mtu ${h.segment.mtu}`] : [];
      this.batch(h.ns, [
        `link set eth0 address ${h.mac}`,
        ...mtu,
        "link set eth0 up",
        ...[...h.static4, ...h.sources4].map((a) => `address add ${a}/${h.segment.ipv4!.prefixLength} dev eth0`),
        ...[...h.static6, ...h.sources6].map((a) => `address add ${a}/64 dev eth0 nodad`),
      ]);
    }
  }

  private buildIsps(): void {
    this.wans.forEach((w) => {
      const isp = w.isp;
      const wanNet = this.wanNetwork(w);
      w.gateway4 = wanNet.gateway;
      w.customer4 = wanNet.cidr;
      const up = "uplink";
      const down = `${isp.name}`;
      this.batch(w.ns, [`link add ${up} type veth peer name ${down} netns ${this.inet}`]);
      this.exec(w.ns, [
        "sh",
        "-c",
        // forward; keep IPv6 addresses on links a test takes down and up again
        "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding; " +
          "echo 1 > /proc/sys/net/ipv6/conf/all/keep_addr_on_down",
      ]);
      const len = parsePrefix(wanNet.cidr).length;
      const v6 = w.wan.ipv6.mode === "slaac";
      this.batch(w.ns, [
        `address add ${wanNet.gateway}/${len} dev cust`,
        ...(v6 ? [`address add ${isp.gateway6}/64 dev cust nodad`] : []),
        `address add ${isp.transit4[0]}/30 dev ${up}`,
        `address add ${isp.transit6[0]}/64 dev ${up} nodad`,
        "link set cust up",
        `link set ${up} up`,
      ]);
      // BCP 38: only the customer's own addresses may leave the customer link: its WAN subnets and, at the
      // primary ISP, the site's global IPv6 prefixes it routes to the customer.
      const own6 = [...(v6 ? [isp.customer6] : []), ...(w === this.wans[0] ? this.routedPrefixes6() : [])];
      const nft = [
        "table inet bcp38 {",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        `\t\tiifname "cust" ip saddr != ${wanNet.cidr} drop`,
        own6.length
          ? `\t\tiifname "cust" ip6 saddr != { ${own6.join(", ")} } drop`
          : '\t\tiifname "cust" meta nfproto ipv6 drop',
        "\t}",
        "}",
      ].join("\n");
      this.exec(w.ns, ["nft", "-f", "-"], { input: `${nft}\n` });
      if (w.wan.ipv4.mode === "dhcp") {
        const mac = this.host.macs.get(w.wan.name);
        if (!mac) throw new Error(`WAN ${w.wan.name} has no NIC MAC in the machine configuration`);
        const conf = join(this.work, `${isp.name}-udhcpd.conf`);
        writeFileSync(
          conf,
          [
            `start ${isp.lease4}`,
            `end ${isp.lease4}`,
            "interface cust",
            `lease_file ${join(this.work, `${isp.name}-udhcpd.leases`)}`,
            `pidfile ${join(this.work, `${isp.name}-udhcpd.pid`)}`,
            `option subnet ${this.mask4(len)}`,
            `option router ${wanNet.gateway}`,
            "option dns 1.1.1.1",
            "option lease 600",
            `static_lease ${mac} ${isp.lease4}`,
            "",
          ].join("\n"),
        );
        this.daemons.start(
          `${isp.name}-udhcpd`,
          inNs(w.ns, ["busybox", "udhcpd", "-f", conf]),
          this.log(`${isp.name}-udhcpd`),
        );
      }
      if (v6) {
        const conf = join(this.work, `${isp.name}-radvd.conf`);
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
        this.daemons.start(
          `${isp.name}-radvd`,
          inNs(w.ns, [
            "radvd",
            "--nodaemon",
            "--config",
            conf,
            "--logmethod",
            "stderr",
            "--pidfile",
            join(this.work, `${isp.name}-radvd.pid`),
          ]),
          this.log(`${isp.name}-radvd`),
        );
      }
      this.daemons.start(
        `${isp.name}-serve`,
        inNs(w.ns, [
          this.netprobe,
          "serve",
          isp.name,
          "--tcp",
          this.opts.ports.tcp.join(","),
          "--udp",
          this.opts.ports.udp.join(","),
        ]),
        this.log(`${isp.name}-serve`),
      );
    });
  }

  /** The site's segment prefixes an ISP may route (global unicast; ULA never leaves a site). */
  routedPrefixes6(): string[] {
    return this.plan.segments.flatMap((s) => (s.ipv6 && !/^f[cd]/i.test(s.ipv6.prefix) ? [s.ipv6.prefix] : []));
  }

  private mask4(len: number): string {
    const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    return [24, 16, 8, 0].map((s) => (m >>> s) & 0xff).join(".");
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

  /** Addresses of the internet host (on its loopback). */
  internetAddresses(): { v4: string[]; v6: string[] } {
    const targets = [...new Set(this.plan.wans.flatMap((w) => w.probe.targets))];
    const upstreams = this.site.dns.upstreams.map((u) => u.address);
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
    const I = this.inet;
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
    this.batch(I, cmds);
    this.daemons.start(
      "internet-serve",
      inNs(I, [
        this.netprobe,
        "serve",
        "internet",
        "--tcp",
        this.opts.ports.tcp.join(","),
        "--udp",
        this.opts.ports.udp.join(","),
      ]),
      this.log("internet-serve"),
    );
  }

  /** Adds an address to the internet host (a test's special source). */
  addInternetAddress(addr: string): void {
    this.ip(this.inet, `address add ${addr}/${familyOf(addr) === 4 ? 32 : 128} dev lo`);
  }

  private async waitRouterAddresses(): Promise<void> {
    this.batch(this.router, this.routerRoutes);
    // IPv6 gateway addresses must finish DAD before daemons bind them.
    await waitFor(
      "the router's IPv6 addresses to leave DAD",
      () => (/tentative/.test(sh(["ip", "-n", this.router, "-6", "addr"]).stdout) ? undefined : true),
      10_000,
    );
  }

  // ------------------------------------------------------------------------------------------------ router daemons

  /** Runs `argv` in the router's network namespace and a mount namespace prepared by `mounts`. */
  private startInRouter(name: string, mounts: string[], argv: string[], env: Record<string, string> = {}): Daemon {
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    const script = ["set -e", ...mounts, `exec env ${[...envArgs, ...argv].map(q).join(" ")}`].join("\n");
    // `ip netns exec` gives every process a mount namespace of its own with the namespace's /sys.
    return this.daemons.start(name, inNs(this.router, ["sh", "-c", script]), this.log(name));
  }

  /** Shell lines that make `path` usable as a mount point without touching the host's filesystem. */
  private mountPoint(path: string, scratch: string, overlaid: Set<string>): string[] {
    if (existsSync(path)) return [];
    let anc = dirname(path);
    while (!existsSync(anc)) anc = dirname(anc);
    const lines: string[] = [];
    if (!overlaid.has(anc)) {
      overlaid.add(anc);
      const up = join(scratch, "overlay", sanitize(anc), "upper");
      const wk = join(scratch, "overlay", sanitize(anc), "work");
      mkdirSync(up, { recursive: true });
      mkdirSync(wk, { recursive: true });
      lines.push(`mount -t overlay overlay -o lowerdir=${anc},upperdir=${up},workdir=${wk} ${anc}`);
    }
    lines.push(`mkdir -p ${q(path)}`);
    return lines;
  }

  /** A file of the node (see NODE_FILES), written on first use. */
  nodeFile(path: string): string {
    const p = join(this.work, "node", path);
    if (!existsSync(p)) {
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, NODE_FILES[path]);
    }
    return p;
  }

  /** Host paths of the node (hostPath volumes, the extension's state) live here. */
  hostPath(path: string): string {
    const p = join(this.work, "node", path);
    mkdirSync(p, { recursive: true });
    return p;
  }

  /**
   * The data-plane loader as the Talos extension service runs it, with the ExtensionServiceConfig files (or
   * `replace`'s content for some of them: another render of the same site's files).
   */
  startLoader(replace: Map<string, string> = new Map()): Daemon {
    const rendered = this.host.extensionFiles.get(EXTENSION_NAME);
    if (!rendered) throw new Error(`no ExtensionServiceConfig ${EXTENSION_NAME} in the machine configuration`);
    const files = new Map([...rendered].map(([p, c]) => [p, replace.get(p) ?? c]));
    const scratch = join(this.work, "ext");
    const root = join(scratch, "files");
    for (const [path, content] of files) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), content);
    }
    const spec = existsSync(EXTENSION_SPEC)
      ? (parse(readFileSync(EXTENSION_SPEC, "utf8")) as {
          container: {
            entrypoint: string;
            args: string[];
            mounts: { source: string; destination: string; options?: string[] }[];
          };
        })
      : {
          container: {
            entrypoint: "/usr/bin/router-dataplane",
            args: ["--config", CONFIG_PATH],
            mounts: [
              { source: "/sys/fs/bpf", destination: "/sys/fs/bpf" },
              { source: STATE_DIR, destination: STATE_DIR },
            ],
          },
        };
    const overlaid = new Set<string>();
    const mounts: string[] = [];
    for (const m of spec.container.mounts) {
      const ro = (m.options ?? []).includes("ro") ? "-o ro " : "";
      if (m.destination === "/sys/fs/bpf") mounts.push("mount -t bpf bpf /sys/fs/bpf");
      else if (NODE_FILES[m.source] !== undefined) {
        mounts.push(`mount --bind ${ro}${q(this.nodeFile(m.source))} ${q(m.destination)}`);
      } else {
        mounts.push(...this.mountPoint(m.destination, scratch, overlaid));
        mounts.push(`mount --bind ${ro}${q(this.hostPath(m.source))} ${q(m.destination)}`);
      }
    }
    // Talos mounts each configuration file read-only at its path.
    for (const path of files.keys()) {
      mounts.push(...this.mountPoint(dirname(path), scratch, overlaid));
      mounts.push(`touch ${q(path)}`, `mount --bind -o ro ${q(join(root, path))} ${q(path)}`);
    }
    this.loader = this.startInRouter("router-dataplane", mounts, [LOADER, ...spec.container.args]);
    return this.loader;
  }

  /** Starts (or restarts) one network-service pod. */
  startPod(pod: PodSpec): Daemon {
    const scratch = join(this.work, "pods", pod.name);
    const overlaid = new Set<string>();
    const mounts: string[] = [];
    pod.volumes.forEach((v, i) => {
      let src: string;
      if (v.source.kind === "configMap") {
        src = join(scratch, `config-${i}`);
        mkdirSync(src, { recursive: true });
        for (const item of v.source.items) {
          const content = this.configMap.get(item.key);
          if (content === undefined) throw new Error(`pod ${pod.name}: ConfigMap has no key ${item.key}`);
          writeFileSync(join(src, item.path), content);
        }
      } else if (v.source.kind === "hostPath") src = this.hostPath(v.source.path);
      else {
        src = join(scratch, `empty-${i}`);
        rmSync(src, { recursive: true, force: true });
        mkdirSync(src, { recursive: true });
      }
      mounts.push(...this.mountPoint(v.mountPath, scratch, overlaid));
      mounts.push(`mount --bind ${v.readOnly ? "-o ro " : ""}${q(src)} ${q(v.mountPath)}`);
    });
    const d = this.startInRouter(pod.name, mounts, pod.command, {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      ...pod.env,
    });
    this.pods.set(pod.name, d);
    return d;
  }

  pod(name: string): PodSpec {
    const p = this.podSpecs.find((x) => x.name === name);
    if (!p) throw new Error(`no pod ${name} in the render`);
    return p;
  }

  /** Router services that are not part of this layer answer on their ports, so that "allowed" is observable. */
  private startStandIns(): void {
    const tcp = [53, ...MANAGEMENT_TCP_PORTS];
    this.daemons.start(
      "router-stand-ins",
      inNs(this.router, [this.netprobe, "serve", "router", "--tcp", tcp.join(","), "--udp", "53"]),
      this.log("router-stand-ins"),
    );
  }

  private dhcpScript(): string {
    const path = join(this.work, "udhcpc.script");
    if (existsSync(path)) return path;
    writeFileSync(
      path,
      [
        "#!/bin/sh",
        "# udhcpc event script: configure the lease like a DHCP client of the host, and record what was received",
        '[ -n "$E2E_STATE" ] || exit 1',
        'out="$E2E_STATE"',
        'echo "$(date +%s.%N) $1 ${ip:-}" >> "$out.events"',
        'case "$1" in',
        "deconfig|leasefail|nak)",
        '  [ "$1" = deconfig ] && [ -s "$out.addr" ] && ip addr del "$(cat "$out.addr")" dev "$interface" 2>/dev/null && : > "$out.addr"',
        "  ;;",
        "bound|renew)",
        '  old="$(cat "$out.addr" 2>/dev/null)"',
        '  if [ "$old" != "$ip/$mask" ]; then',
        '    [ -n "$old" ] && ip addr del "$old" dev "$interface" 2>/dev/null',
        '    ip addr add "$ip/$mask" dev "$interface"',
        '    echo "$ip/$mask" > "$out.addr"',
        "  fi",
        '  if [ -n "$router" ]; then set -- $router; ip route replace default via "$1" dev "$interface" ${E2E_METRIC:+metric $E2E_METRIC}; fi',
        '  env | grep -E "^(interface|ip|mask|subnet|router|dns|domain|search|ntpsrv|lease|serverid|hostname)=" > "$out.tmp"',
        '  mv "$out.tmp" "$out"',
        "  ;;",
        "esac",
        "exit 0",
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    return path;
  }

  /** File the DHCPv4 client on a link of a namespace records its lease in. */
  dhcpState(ns: string, link = "eth0"): string {
    return join(this.work, `${ns}.${link}.dhcp4`);
  }

  /** Starts a DHCPv4 client on a link of a namespace. */
  startDhcp4(ns: string, link: string, metric?: number, extra: string[] = []): Daemon {
    const script = this.dhcpScript();
    const env: NodeJS.ProcessEnv = { ...process.env, E2E_STATE: this.dhcpState(ns, link) };
    if (metric !== undefined) env.E2E_METRIC = String(metric);
    return this.daemons.start(
      `${ns}-udhcpc`,
      inNs(ns, [
        "busybox",
        "udhcpc",
        "-f",
        "-i",
        link,
        "-s",
        script,
        "-t",
        "20",
        "-T",
        "1",
        "-A",
        "1",
        "-O",
        "search",
        "-O",
        "ntpsrv",
        ...extra,
      ]),
      this.log(`${ns}-udhcpc`),
      env,
    );
  }

  /** The last lease a DHCPv4 client recorded (udhcpc's variables). */
  lease4(ns: string, link = "eth0"): Record<string, string> | undefined {
    const f = this.dhcpState(ns, link);
    if (!existsSync(f)) return undefined;
    return Object.fromEntries(
      readFileSync(f, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  }

  private async startWanClients(): Promise<void> {
    for (const w of this.wans) {
      if (w.wan.ipv4.mode === "static") w.addr4 = w.wan.ipv4.address.split("/")[0];
      const dhcp = this.host.dhcp4.get(w.wan.name);
      if (dhcp) this.startDhcp4(this.router, w.wan.name, dhcp.routeMetric);
    }
    for (const w of this.wans) {
      if (this.host.dhcp4.has(w.wan.name)) {
        const lease = await waitFor(
          `a DHCP lease on ${w.wan.name}`,
          () => this.lease4(this.router, w.wan.name) && this.wanLease(w),
          20_000,
        );
        w.addr4 = lease;
      }
      if (w.wan.ipv6.mode === "slaac")
        w.addr6 = await waitFor(
          `a SLAAC address on ${w.wan.name}`,
          () => this.globalAddress6(this.router, w.wan.name, w.isp.customer6),
          20_000,
        );
    }
  }

  private wanLease(w: WanSide): string | undefined {
    const out = sh(["ip", "-n", this.router, "-4", "-o", "addr", "show", "dev", w.wan.name]).stdout;
    const m = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out);
    return m?.[1];
  }

  /** A global IPv6 address of a link inside a prefix, once it is usable. */
  globalAddress6(ns: string, link: string, prefix: string): string | undefined {
    const out = sh(["ip", "-n", ns, "-6", "-o", "addr", "show", "dev", link, "scope", "global"]).stdout;
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
          sh(["ip", "-n", this.router, "-6", "-o", "addr", "show", "dev", w.wan.name, "scope", "link"]).stdout,
        )?.[1];
        if (!ll) throw new Error(`${w.wan.name} has no link-local address`);
        for (const s of this.plan.segments) if (s.ipv6) cmds.push(`route replace ${s.ipv6.prefix} via ${ll} dev cust`);
        cmds.push(`route replace ${INTERNET.transit6} via ${ll} dev cust`);
      }
    }
    this.batch(w.ns, cmds);
  }

  // ------------------------------------------------------------------------------------------------ clients

  /** dhclient passes its script only its own variables: the state file is written into the script. */
  private dhcp6Script(ns: string): string {
    const path = join(this.work, `${ns}.dhclient6.script`);
    writeFileSync(
      path,
      [
        "#!/bin/sh",
        "# dhclient -6 script: configure the leased address and record what was received",
        `out=${q(this.dhcp6State(ns))}`,
        'echo "$(date +%s.%N) $reason ${new_ip6_address:-}" >> "$out.events"',
        'case "$reason" in',
        "BOUND6|RENEW6|REBIND6|REBOOT6)",
        '  [ -n "$new_ip6_address" ] && ip -6 addr replace "$new_ip6_address/${new_ip6_prefixlen:-128}" dev "$interface" nodad',
        '  set | grep -E "^(reason|interface|new_ip6_address|new_ip6_prefixlen|new_dhcp6_name_servers|new_dhcp6_domain_search|new_dhcp6_server_id)=" | tr -d "\'" > "$out.tmp"',
        '  mv "$out.tmp" "$out"',
        "  ;;",
        "esac",
        "exit 0",
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    return path;
  }

  dhcp6State(ns: string): string {
    return join(this.work, `${ns}.dhcp6`);
  }

  lease6(ns: string): Record<string, string> | undefined {
    const f = this.dhcp6State(ns);
    if (!existsSync(f)) return undefined;
    return Object.fromEntries(
      readFileSync(f, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  }

  startDhcp6(h: Host): Daemon {
    const script = this.dhcp6Script(h.ns);
    return this.daemons.start(
      `${h.ns}-dhclient6`,
      inNs(h.ns, [
        "dhclient",
        "-6",
        "-d",
        "-D",
        "LL",
        "-sf",
        script,
        "-lf",
        join(this.work, `${h.ns}.dhclient6.leases`),
        "-pf",
        join(this.work, `${h.ns}.dhclient6.pid`),
        "eth0",
      ]),
      this.log(`${h.ns}-dhclient6`),
    );
  }

  /** Adds a client to a running appliance (no DHCP client started). */
  addHost(segment: string, label: string, index: number): Host {
    const seg = this.plan.segments.find((s) => s.name === segment);
    if (!seg) throw new Error(`no segment ${segment}`);
    const h: Host = {
      ns: `${this.opts.prefix}-${segment}-${label}`,
      name: `${segment}-${label}`,
      segment: seg,
      mac: hostMac(seg.vlan, index),
      static4: [],
      static6: [],
      sources4: [],
      sources6: [],
    };
    Appliance.deleteNamespace(h.ns);
    sh(["ip", "netns", "add", h.ns]);
    this.hosts.push(h);
    this.ip(h.ns, "link set lo up");
    this.batch(this.sw, [
      `link add x${seg.vlan}-${index} type veth peer name eth0 netns ${h.ns}`,
      `link set x${seg.vlan}-${index} master br${seg.vlan} up`,
    ]);
    this.batch(h.ns, [`link set eth0 address ${h.mac}`, "link set eth0 up"]);
    return h;
  }

  private async startClients(): Promise<void> {
    for (const h of this.hosts) {
      this.daemons.start(
        `${h.ns}-serve`,
        inNs(h.ns, [
          this.netprobe,
          "serve",
          h.name,
          "--tcp",
          this.opts.ports.tcp.join(","),
          "--udp",
          this.opts.ports.udp.join(","),
        ]),
        this.log(`${h.ns}-serve`),
      );
      this.startDhcp4(h.ns, "eth0");
    }
    await Promise.all(
      this.hosts.map(async (h) => {
        const seg = this.site.segments.find((s) => s.name === h.segment.name)!;
        h.addr4 = await waitFor(`a DHCPv4 lease for ${h.ns}`, () => this.lease4(h.ns)?.ip, 30_000);
        if (h.segment.ipv6 && seg.ra.enabled && seg.ra.slaac)
          h.slaac6 = await waitFor(`a SLAAC address for ${h.ns}`, () => this.slaacAddress(h), 30_000);
        if (h.segment.ipv6 && seg.dhcpv6.enabled) {
          this.startDhcp6(h);
          h.dhcp6 = await waitFor(`a DHCPv6 lease for ${h.ns}`, () => this.lease6(h.ns)?.new_ip6_address, 30_000);
        }
      }),
    );
  }

  /** The host's autoconfigured address (EUI-64 from its MAC) in its segment's prefix. */
  private slaacAddress(h: Host): string | undefined {
    const out = sh(["ip", "-n", h.ns, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"]).stdout;
    for (const line of out.split("\n")) {
      const m = /inet6 ([0-9a-f:]+)\/64 .*dynamic/.exec(line);
      if (m && contains(h.segment.ipv6!.prefix, m[1])) return m[1];
    }
    return undefined;
  }
}
