/**
 * The DNS probe (components/dns-stack/probe.ts) against the real daemons: the DNS test site's router namespace
 * (test/dns/lib/bed.ts: every segment link with its gateways, the rendered ruleset loaded), dnsdist, Unbound and
 * Knot run as their DaemonSets run them with the rendered files, and the probe script run in the router's
 * namespace — the node's host network, where the rollout gate's pod runs it — with busybox's nslookup, as the DNS
 * image has it. No internet: the router's own names must answer without it.
 */
import { symlinkSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { tempDir } from "../helpers/temp";
import { waitFor } from "../helpers/wait";
import { planDns, PATHS } from "../../components/dns-stack/plan";
import { dnsConfigs, dnsDaemons } from "../../components/dns-stack/k8s";
import { dnsProbeScript, dnsProbes, QUERY_S } from "../../components/dns-stack/probe";
import { siteRuleset } from "../../components/host-layers";
import { withoutNftQueue } from "../helpers/nft-queue";
import { DnsBed } from "./lib/bed";
import { INTERNET_DNS } from "./lib/internet";
import { ADS_FEED, dnsTestSite } from "./lib/site";
import { testSecrets } from "./lib/validators";
import { writeListDb } from "./lib/fixtures";

const t = tier("DNS probe in namespaces", {
  root: true,
  commands: ["ip", "setpriv", "dnsdist", "unbound", "unbound-control", "knotd", "knotc", "busybox", "cdb", "nft"],
});

const TAG = `dnp${process.pid % 100000}`;
const { site, plan, policy } = devSite(dnsTestSite);
const dns = planDns(site, plan, policy);
const configs = dnsConfigs(site, plan, dns);
const probes = dnsProbes(plan, dns);
let bed: DnsBed;
let bin: string;

/** Runs the probe script for these segments in the router's namespace, nslookup being busybox's. */
function probe(segments: string[]): { code: number; out: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(
    "ip",
    ["netns", "exec", bed.router, "sh", "-c", dnsProbeScript(probes), "dns-probe", ...segments],
    {
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    },
  );
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, ms: Date.now() - t0 };
}

describe.skipIf(!t.ok)("the DNS probe, with the real dnsdist, Unbound and Knot", () => {
  beforeAll(async () => {
    const work = tempDir("dns-probe-");
    bin = join(work, "bin");
    mkdirSync(bin);
    const busybox = spawnSync("sh", ["-c", "command -v busybox"], { encoding: "utf8" }).stdout.trim();
    symlinkSync(busybox, join(bin, "nslookup"));
    bed = new DnsBed(TAG, work);
    bed.topology(plan, [], [INTERNET_DNS.resolver4]);
    const ruleset = withoutNftQueue(siteRuleset(site, plan, policy));
    bed.in(bed.router, ["nft", "-f", "-"], { input: ruleset });
    writeListDb(bed.hostPath(PATHS.lists), "ads", ADS_FEED);
    for (const d of dnsDaemons(dns, configs))
      if (["dns-front", "dns-resolver", "dns-auth"].includes(d.name)) bed.startDaemon(d, configs, testSecrets());
    await waitFor("the router's DNS to answer its own name", () => probe([probes[0].segment]).code === 0, 30_000).catch(
      (e: Error) => {
        throw new Error(`${e.message}\n${probe([probes[0].segment]).out}\n${bed.logs()}`);
      },
    );
  }, 120_000);

  afterAll(async () => {
    await bed?.cleanup();
  });

  it("probes each segment of a zone with DNS at every gateway address, and none of a zone without it", () => {
    expect(probes.map((p) => p.segment)).toEqual(dns.zones.flatMap((z) => z.segments).sort());
    expect(probes.map((p) => p.segment)).not.toContain("servers");
    expect(probes.some((p) => p.servers.some((s) => s.includes(":")))).toBe(true);
  });

  it("gets the router's own name back with each gateway's address on every served segment", () => {
    const r = probe(probes.map((p) => p.segment));
    expect(r.code, r.out).toBe(0);
    for (const p of probes)
      for (const s of p.servers)
        expect(r.out).toContain(
          `ok segment ${p.segment}: DNS at ${s} answers ${p.name} ${s.includes(":") ? "aaaa" : "a"} with ${s}`,
        );
    expect(r.out).not.toMatch(/^FAIL/m);
  });

  it("fails on a segment the router does not answer DNS on", () => {
    const r = probe(["servers"]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^FAIL segment servers: not a segment the router answers DNS on$/m);
  });

  it("fails naming the segment, the address and what came back when the site's zone points the name elsewhere", async () => {
    const trusted = probes.find((p) => p.segment === "trusted")!;
    const zone = `${plan.domain}.zone`;
    const wrong = new Map(configs);
    const owner = trusted.name.replace(/\./g, "\\.");
    wrong.set(
      zone,
      configs.get(zone)!.replace(new RegExp(`^(${owner}\\. \\d+ IN A) 10\\.20\\.0\\.1$`, "m"), "$1 10.20.0.9"),
    );
    expect(wrong.get(zone)).not.toBe(configs.get(zone));
    const auth = dnsDaemons(dns, configs).find((d) => d.name === "dns-auth")!;
    await bed.stop("dns-auth");
    bed.startDaemon(auth, wrong, testSecrets());
    await waitFor("Knot to serve the edited zone", () => probe(["trusted"]).out.includes("is 10.20.0.9 "), 20_000);
    const r = probe(["trusted", "iot"]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      new RegExp(
        `^FAIL segment trusted: DNS at 10\\.20\\.0\\.1: ${owner} a is 10\\.20\\.0\\.9 not 10\\.20\\.0\\.1$`,
        "m",
      ),
    );
    expect(r.out).toMatch(/^ok segment iot: DNS at 10\.30\.0\.1 /m);
    await bed.stop("dns-auth");
    bed.startDaemon(auth, configs, testSecrets());
    await waitFor("Knot to serve the rendered zone", () => probe(["trusted"]).code === 0, 20_000);
  });

  it("fails naming the segment and each address that did not answer once the front is stopped, within its bound", async () => {
    await bed.stop("dns-front");
    const two = probes.slice(0, 2);
    const r = probe(two.map((p) => p.segment));
    expect(r.code).toBe(1);
    for (const p of two)
      for (const s of p.servers)
        expect(r.out).toMatch(
          new RegExp(
            `^FAIL segment ${p.segment}: DNS at ${s.replace(/\./g, "\\.")}: no answer for ${p.name.replace(/\./g, "\\.")} a{1,4} within ${QUERY_S}s `,
            "m",
          ),
        );
    const queries = two.reduce((n, p) => n + p.servers.length, 0);
    expect(r.ms, "each query is bounded").toBeLessThan(queries * (QUERY_S * 1000 + 500));
  });
});
