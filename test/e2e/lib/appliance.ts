/**
 * The virtual appliance: a router built from network namespaces that runs a site's rendered configuration with
 * the real daemons. Composed of its wiring (topology.ts: router links, switch, ISPs, internet), the router's own
 * daemons (pods.ts: the data-plane loader as its extension service, the DaemonSets as their pods) and the
 * machines on the segments (clients.ts), all derived from the site and its render.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../../helpers/wait";
import { Clients, planHosts, type Host } from "./clients";
import { DhcpClients } from "./dhcp-clients";
import { Shell, sh, type Daemon, type RunOptions, type RunResult } from "./exec";
import { cleanupLeftovers, deleteNamespace } from "./namespaces";
import { LOADER, ROOT, RouterPods, networkServicePod, standInPorts } from "./pods";
import { Kubelet, cleanupLeftoverCgroups } from "./kubelet";
import { hostConfig, servicePods, type HostConfig, type RenderedSite } from "./rendered";
import { TalosBoot } from "./talos";
import { Topology, type WanSide } from "./topology";

export { LOADER, ROOT };
export type { Host, WanSide };

const NETPROBE_SRC = join(__dirname, "../tools/netprobe.c");

/** Every command the appliance calls (the test tiers check they are installed). */
export const APPLIANCE_COMMANDS = [
  "ip",
  "setpriv",
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
  "ulogd",
  "syslog-ng",
  "curl",
  "ss",
  "unshare",
  "mount",
  "sh",
  "cat",
  "stat",
  // the DNS stack's pods and the test internet's DNS (lib/areas/dns.ts)
  "dnsdist",
  "unbound",
  "knotd",
  "kea-dhcp-ddns",
  "cdb",
  "dig",
  "dnssec-keygen",
  "dnssec-signzone",
  "openssl",
  "tcpdump",
  "dnsperf",
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

/** The probe tool's server arguments for a set of ports. */
function serveArgs(ports: { tcp: number[]; udp: number[] }): string[] {
  return [
    ...(ports.tcp.length ? ["--tcp", ports.tcp.join(",")] : []),
    ...(ports.udp.length ? ["--udp", ports.udp.join(",")] : []),
  ];
}

export interface ApplianceOptions {
  /** Prefix of every namespace name: unique per test file, so test files never share anything. */
  prefix: string;
  rendered: RenderedSite;
  /** Ports every client and the internet host answer on. */
  ports: { tcp: number[]; udp: number[] };
  /** Probe-source addresses per segment and family on each segment's main client. */
  probeSources?: number;
  /**
   * Steps run once the node is up as Talos brings it up (links, routing rules, its firewall, its services, its
   * WAN leases) and every host exists with its static addresses and servers, before the data-plane loader.
   */
  beforeLoader?: ((app: Appliance) => void | Promise<void>)[];
  /** Which of the render's pods run (default: the network services'). */
  pods?: (name: string) => boolean;
}

export class Appliance {
  readonly shell: Shell;
  readonly host: HostConfig;
  readonly dhcp: DhcpClients;
  readonly topology: Topology;
  readonly pods: RouterPods;
  /** The node's kubelet: the pods' cgroups and service-account tokens, its port 10250. */
  readonly kubelet: Kubelet;
  readonly clients: Clients;
  readonly talos: TalosBoot;
  readonly router: string;
  readonly sw: string;
  readonly inet: string;
  netprobe = "";
  /** What the harness had to do beyond the rendered configuration, and why. Empty on a correct render. */
  readonly workarounds: string[] = [];
  private readonly exitHook = () => this.killSync();

  constructor(readonly opts: ApplianceOptions) {
    const r = opts.rendered;
    this.shell = new Shell(mkdtempSync(join(tmpdir(), `${opts.prefix}-`)));
    this.host = hostConfig(r);
    this.dhcp = new DhcpClients(this.shell);
    this.router = `${opts.prefix}-router`;
    this.sw = `${opts.prefix}-switch`;
    this.inet = `${opts.prefix}-internet`;
    const names = { prefix: opts.prefix, router: this.router, sw: this.sw, inet: this.inet };
    const serve = (ns: string, label: string) => this.serve(ns, label);
    this.topology = new Topology(this.shell, names, r, this.host, this.dhcp, serve);
    const { pods, configMaps } = servicePods(r);
    this.kubelet = new Kubelet(this.shell, opts.prefix, this.router, r.files);
    this.pods = new RouterPods(this.shell, this.router, this.host, pods, configMaps, this.kubelet);
    this.talos = new TalosBoot(this.shell, this.router, this.host);
    const hosts = planHosts(r.site, r.plan, opts.prefix, opts.probeSources);
    this.clients = new Clients(this.shell, this.dhcp, r.site, hosts, this.sw, (h) => this.serve(h.ns, h.name));
  }

  get site() {
    return this.opts.rendered.site;
  }

  get plan() {
    return this.opts.rendered.plan;
  }

  get work(): string {
    return this.shell.work;
  }

  /** Run at stop, after the daemons: an area removes what it made outside the work directory. */
  readonly onStop: (() => void)[] = [];

  get daemons() {
    return this.shell.daemons;
  }

  get wans(): WanSide[] {
    return this.topology.wans;
  }

  get hosts(): Host[] {
    return this.clients.hosts;
  }

  get loader(): Daemon | undefined {
    return this.pods.loader;
  }

  /** The main client of a segment. */
  client(segment: string): Host {
    return this.clients.client(segment);
  }

  /** Every namespace of this appliance. */
  namespaces(): string[] {
    return [...this.topology.namespaces(), ...this.hosts.map((h) => h.ns)];
  }

  exec(ns: string, argv: string[], opts: RunOptions = {}): RunResult {
    return this.shell.exec(ns, argv, opts);
  }

  run(ns: string, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return this.shell.run(ns, argv, opts);
  }

  /** The probe tool's servers in a namespace, answering as `label` on every port of the site's probes. */
  serve(ns: string, label: string): Daemon {
    return this.shell.daemon(`${ns}-serve`, ns, [this.netprobe, "serve", label, ...serveArgs(this.opts.ports)]);
  }

  // ------------------------------------------------------------------------------------------------ lifecycle

  /** Builds every namespace and starts every daemon; throws (after tearing down) when something does not come up. */
  async start(): Promise<void> {
    process.once("exit", this.exitHook);
    try {
      cleanupLeftovers(this.opts.prefix);
      cleanupLeftoverCgroups(this.opts.prefix);
      this.netprobe = buildTools(this.work);
      this.topology.build();
      this.clients.build();
      await this.topology.routerAddresses();
      // What the node does by itself from its configuration: routing rules, its ingress firewall, its own
      // services and DHCP client; the data-plane extension comes later.
      this.talos.routingRules();
      this.talos.firewall();
      this.startStandIns();
      await this.topology.startWan4();
      for (const w of this.wans) this.topology.ispRoutes(w);
      this.talos.firewall();
      for (const step of this.opts.beforeLoader ?? []) await step(this);
      await this.startLoader();
      await this.topology.waitWan6();
      this.talos.firewall();
      this.topology.ispRoutes(this.wans[0]);
      this.pods.startAll(this.opts.pods ?? networkServicePod);
      await this.clients.start();
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

  /**
   * Starts the loader and waits until it has applied the ruleset and then finished its start (programs attached
   * and tables loaded, or degraded: its "started" line). The ruleset comes first, so on a loaded machine a test
   * that began after the ruleset alone could meet a guard without its tables yet.
   */
  async startLoader(replace?: Map<string, string>): Promise<Daemon> {
    const loader = this.pods.startLoader(replace);
    await waitFor(
      "the loader to apply the nftables ruleset and finish its start",
      () => {
        if (loader.exited) throw new Error(`loader exited (status ${loader.exitCode}):\n${loader.log().slice(-4000)}`);
        const log = loader.log();
        return /"event":"nft_applied"/.test(log) && /"event":"started"/.test(log);
      },
      20_000,
    );
    return loader;
  }

  /** Stops every daemon by pid, deletes every namespace and the work directory. */
  async stop(): Promise<void> {
    await this.daemons.stopAll();
    this.deleteNamespaces();
    this.kubelet.stop();
    for (const f of this.onStop) f();
    process.removeListener("exit", this.exitHook);
    if (process.env.E2E_KEEP_WORK !== "1") rmSync(this.work, { recursive: true, force: true });
  }

  private killSync(): void {
    this.daemons.killAllSync();
    this.deleteNamespaces();
    this.kubelet.stop();
  }

  private deleteNamespaces(): void {
    for (const ns of this.namespaces()) deleteNamespace(ns);
  }

  /**
   * The node's own services that are not part of the network layer (Talos API, trustd, Kubernetes API, kubelet,
   * etcd, DNS) answer on their ports from boot, so that "allowed" is observable; the kubelet's port serves its
   * cAdvisor metrics of the pods the appliance runs (kubelet.ts).
   */
  private startStandIns(): void {
    this.kubelet.start(this.router, join(ROOT, "test/e2e/tools/kubelet-stand-in.mjs"));
    const dnsStack = this.pods.specs.some(
      (p) => p.name === "dns-front" && (this.opts.pods ?? networkServicePod)(p.name),
    );
    this.shell.daemon("router-stand-ins", this.router, [
      this.netprobe,
      "serve",
      "router",
      ...serveArgs(standInPorts(!dnsStack)),
    ]);
  }

  /** Adds a client to a running appliance (no DHCP client started); `dad`: with duplicate address detection. */
  addHost(segment: string, label: string, index: number, dad = false): Host {
    return this.clients.addHost(segment, label, index, this.opts.prefix, dad);
  }
}
