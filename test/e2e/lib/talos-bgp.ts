/**
 * The node's BGP as Talos runs it from a BGPInstanceConfig document. Talos embeds GoBGP in machined, and its
 * BGPController (siderolabs/talos internal/app/machined/pkg/controllers/network/bgp.go, internal/bgp/*.go):
 *   - starts one GoBGP server per document with its local ASN and router id, listening on TCP 179
 *     (instance.go EnsureServer);
 *   - adds each numbered neighbour with its peer ASN, the IPv4 and IPv6 unicast families, and BFD when the
 *     neighbour has a `bfd` block, an empty one meaning GoBGP's defaults (bgp.go BuildPeer);
 *   - originates, origin IGP and next hop self, the prefix (address masked to its length) of every address of the
 *     advertised links that is neither loopback nor link-local (runtime.go advertisedAddresses, connectedPrefixes;
 *     bgp.go BuildOriginatedPath);
 *   - installs every best path learned from a neighbour, unless installRoutes is false, as a kernel route in the
 *     main table with protocol bgp and the path's next hop as gateway (routes.go learnedRoutes, bgp.go RouteSpec).
 * Here the same GoBGP (tools/gobgp, the version Talos pins) runs as gobgpd in the router's namespace with that
 * configuration, and this class does the controller's part through gobgp's API: it originates the prefixes and
 * mirrors the learned best paths into the kernel, once a second. One deviation: every neighbour is passive (Talos'
 * GoBGP also connects out), so that a session can only come from the neighbour's connection through the router's
 * input chain — which is what the tests prove.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parsePrefix } from "../../../components/site/ip";
import { toolBinary } from "../../../tools/go-tools";
import { sleep, waitFor } from "../../helpers/wait";
import type { Daemon, Shell } from "./exec";
import type { BgpInstanceDoc } from "./rendered";

export const GOBGPD = toolBinary("gobgp", "gobgpd");
export const GOBGP = toolBinary("gobgp", "gobgp");
/** gobgpd's gRPC API, on the router's loopback only (not one of the node's ports). */
const API_PORT = 50151;

/** GoBGP's session states (api/gobgp.proto PeerState.SessionState). */
const ESTABLISHED = 6;

interface GobgpPath {
  best?: boolean;
  "peer-address"?: string;
  attrs?: { type: number; nexthop?: string }[];
}

/** gobgpd's configuration file for a BGPInstanceConfig document (GoBGP's TOML: pkg/config/oc/bgp_configs.go). */
export function gobgpConfig(doc: BgpInstanceDoc): string {
  const lines = ["[global.config]", `  as = ${doc.localASN}`];
  if (doc.routerID) lines.push(`  router-id = "${doc.routerID}"`);
  for (const n of doc.neighbors) {
    lines.push(
      "",
      "[[neighbors]]",
      "  [neighbors.config]",
      `    neighbor-address = "${n.address}"`,
      `    peer-as = ${n.peerASN}`,
      "  [neighbors.transport.config]",
      "    passive-mode = true",
    );
    if (n.bfd) lines.push("  [neighbors.bfd.config]", "    enabled = true");
    for (const family of ["ipv4-unicast", "ipv6-unicast"])
      lines.push("  [[neighbors.afi-safis]]", "    [neighbors.afi-safis.config]", `      afi-safi-name = "${family}"`);
  }
  return `${lines.join("\n")}\n`;
}

export class TalosBgp {
  private daemon?: Daemon;
  private running = false;
  private loop?: Promise<void>;
  private readonly originated = new Set<string>();
  /** Kernel routes installed from learned paths: prefix → gateway. */
  private readonly installed = new Map<string, string>();

  constructor(
    private readonly shell: Shell,
    private readonly router: string,
    readonly doc: BgpInstanceDoc,
  ) {}

  private gobgp(args: string[], allowFail = false) {
    return this.shell.exec(this.router, [GOBGP, "-p", String(API_PORT), ...args], { allowFail });
  }

  /** Starts gobgpd and the controller's loop; resolves once its API answers. */
  async start(): Promise<void> {
    const conf = join(this.shell.work, `gobgpd-${this.doc.name}.toml`);
    writeFileSync(conf, gobgpConfig(this.doc));
    this.daemon = this.shell.daemon(`gobgpd-${this.doc.name}`, this.router, [
      GOBGPD,
      "-f",
      conf,
      "-p",
      "--pprof-disable",
      `--api-hosts=127.0.0.1:${API_PORT}`,
    ]);
    await waitFor("gobgpd's API", () => this.gobgp(["global"], true).status === 0, 15_000, 200);
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        this.reconcile();
        await sleep(1000);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.daemon?.stop();
    for (const p of this.installed.keys())
      this.shell.exec(this.router, ["ip", "route", "del", p, "proto", "bgp"], { allowFail: true });
    this.installed.clear();
  }

  /** gobgpd's output so far. */
  log(): string {
    return this.daemon?.log() ?? "";
  }

  /** Whether the session with a neighbour is Established, as GoBGP sees it. */
  established(address: string): boolean {
    const r = this.gobgp(["neighbor", address, "-j"], true);
    try {
      return (JSON.parse(r.stdout) as { state?: { session_state?: number } }).state?.session_state === ESTABLISHED;
    } catch {
      return false;
    }
  }

  /** The prefixes the advertised links hold now (not loopback, not link-local), masked. */
  private advertised(): string[] {
    const out = new Set<string>();
    for (const link of this.doc.advertise ?? []) {
      const r = this.shell.exec(this.router, ["ip", "-j", "addr", "show", "dev", link], { allowFail: true });
      const links = JSON.parse(r.stdout || "[]") as {
        addr_info?: { local: string; prefixlen: number; scope: string }[];
      }[];
      for (const a of links.flatMap((l) => l.addr_info ?? []))
        if (a.scope !== "link" && a.scope !== "host") out.add(parsePrefix(`${a.local}/${a.prefixlen}`).cidr);
    }
    return [...out].sort();
  }

  /** One pass of the controller: originate what the links hold, install what the neighbours taught. */
  private reconcile(): void {
    const want = this.advertised();
    const family = (p: string) => (p.includes(":") ? "ipv6" : "ipv4");
    for (const p of want.filter((x) => !this.originated.has(x)))
      if (this.gobgp(["global", "rib", "add", "-a", family(p), p, "origin", "igp"], true).status === 0)
        this.originated.add(p);
    for (const p of [...this.originated].filter((x) => !want.includes(x))) {
      this.gobgp(["global", "rib", "del", "-a", family(p), p], true);
      this.originated.delete(p);
    }
    if (this.doc.installRoutes === false) return;
    const learned = new Map<string, string>();
    for (const f of ["ipv4", "ipv6"]) {
      const r = this.gobgp(["global", "rib", "-a", f, "-j"], true);
      let rib: Record<string, GobgpPath[]> = {};
      try {
        rib = JSON.parse(r.stdout || "{}") as Record<string, GobgpPath[]>;
      } catch {
        continue;
      }
      for (const [prefix, paths] of Object.entries(rib)) {
        if (this.originated.has(prefix)) continue;
        const best = paths.find((p) => p.best && p["peer-address"]);
        const nh = best?.attrs?.find((a) => a.type === 3 || a.type === 14)?.nexthop;
        if (nh && nh !== "0.0.0.0" && nh !== "::") learned.set(prefix, nh);
      }
    }
    for (const [p, gw] of learned)
      if (this.installed.get(p) !== gw) {
        const r = this.shell.exec(this.router, ["ip", "route", "replace", p, "via", gw, "proto", "bgp"], {
          allowFail: true,
        });
        if (r.status === 0) this.installed.set(p, gw);
      }
    for (const p of [...this.installed.keys()].filter((x) => !learned.has(x))) {
      this.shell.exec(this.router, ["ip", "route", "del", p, "proto", "bgp"], { allowFail: true });
      this.installed.delete(p);
    }
  }
}
