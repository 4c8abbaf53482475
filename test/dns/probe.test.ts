/**
 * The DNS probe (components/dns-stack/probe.ts) against the real daemons: the DNS test site's router namespace
 * (test/dns/lib/bed.ts: every segment link with its gateways, the rendered ruleset loaded), dnsdist, Unbound and
 * Knot run as their DaemonSets run them with the rendered files, and the probe script run in the router's
 * namespace — the node's host network, where the rollout gate's pod runs it — with busybox's nslookup, as the DNS
 * image has it. No internet: the router's own names must answer without it. Each daemon of the chain is stopped
 * and misconfigured in turn: the probe must blame exactly that one. dnsdist's DoT and DoH listeners of the
 * encrypted zones serve a certificate made here with openssl from a test CA (the names and addresses a client of
 * each encrypted segment checks), which the probe verifies with the real kdig; a certificate for other names, or a
 * front without its DoT listener, must fail naming the protocol and dns-front.
 */
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { tempDir } from "../helpers/temp";
import { waitFor } from "../helpers/wait";
import { planDns, PATHS, PORTS } from "../../components/dns-stack/plan";
import { dnsConfigs, dnsDaemons } from "../../components/dns-stack/k8s";
import { DNS_PROBE_DAEMONS, dnsProbeScript, dnsProbes, QUERY_S, TLS_QUERIES } from "../../components/dns-stack/probe";
import { siteRuleset } from "../../components/host-layers";
import { withoutNftQueue } from "../helpers/nft-queue";
import { DnsBed } from "./lib/bed";
import { INTERNET_DNS } from "./lib/internet";
import { ADS_FEED, dnsTestSite } from "./lib/site";
import { testSecrets } from "./lib/validators";
import { writeListDb } from "./lib/fixtures";
import { NEW_EC_KEY, selfSigned } from "../helpers/tls";

const t = tier("DNS probe in namespaces", {
  root: true,
  commands: [
    ...["ip", "setpriv", "dnsdist", "unbound", "unbound-control", "knotd", "knotc", "busybox", "cdb", "nft"],
    ...["kdig", "openssl", "socat"],
  ],
});

const TAG = `dnp${process.pid % 100000}`;
const { site, plan, policy } = devSite(dnsTestSite);
const dns = planDns(site, plan, policy);
const configs = dnsConfigs(site, plan, dns);
const probes = dnsProbes(plan, dns);
let bed: DnsBed;
let bin: string;
/** The test CA's certificate (what the probe trusts) and the secrets whose DoT/DoH certificate it signed. */
let caPem: string;
let secrets: string;
/** The encrypted zones' segments, and what a client of each checks: the router's name there and the addresses. */
const encrypted = dns.zones.filter((z) => z.encrypted);
const tlsNames = plan.segments
  .filter((s) => encrypted.some((z) => z.segments.includes(s.name)))
  .map((s) => `${plan.hostname}.${s.domain}`);
const tlsAddresses = encrypted.flatMap((z) => z.listen);

/**
 * Secrets as testSecrets() has them, with a DoT/DoH certificate for these names and addresses signed by the test CA
 * in `ca` (made there first, when missing). Returns the secrets' directory.
 */
function tlsSecrets(ca: string, names: string[], addresses: string[]): string {
  const dir = tempDir("dns-probe-tls-");
  cpSync(testSecrets(), dir, { recursive: true });
  const openssl = (cwd: string, ...args: string[]) => spawnSync("openssl", args, { cwd, stdio: "ignore" }).status;
  if (openssl(ca, "x509", "-in", "ca.pem", "-noout") !== 0) selfSigned(ca, "/CN=test DNS CA");
  const san = [...names.map((n) => `DNS:${n}`), ...addresses.map((a) => `IP:${a}`)].join(",");
  writeFileSync(join(dir, "san.ext"), `subjectAltName=${san}\n`);
  openssl(dir, "req", ...NEW_EC_KEY, "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=router");
  const signed = openssl(
    dir,
    "x509",
    "-req",
    "-in",
    "tls.csr",
    "-CA",
    join(ca, "ca.pem"),
    "-CAkey",
    join(ca, "ca.key"),
    "-CAcreateserial",
    "-out",
    "srv.pem",
    "-days",
    "2",
    "-extfile",
    "san.ext",
  );
  expect(signed, "the test certificate is signed").toBe(0);
  writeFileSync(
    join(dir, "tls.crt"),
    readFileSync(join(dir, "srv.pem"), "utf8") + readFileSync(join(ca, "ca.pem"), "utf8"),
  );
  return dir;
}

/** Runs the probe script for these segments in the router's namespace, nslookup being busybox's. */
function probe(segments: string[], path = bin): { code: number; out: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(
    "ip",
    ["netns", "exec", bed.router, "sh", "-c", dnsProbeScript(probes, caPem), "dns-probe", ...segments],
    {
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, PATH: `${path}:${process.env.PATH}` },
    },
  );
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, ms: Date.now() - t0 };
}

/** The daemon each FAIL line of a probe's output blames (what follows its `→`, or "" when it names none). */
function blamed(out: string): string[] {
  return [...out.matchAll(/^FAIL .*$/gm)].map((m) => / → (\S+)$/.exec(m[0])?.[1] ?? "");
}

/** Runs a DNS daemon of the stack on these configuration files and secrets (stopping the running one first). */
async function run(name: string, files: Map<string, string>, secretsDir = secrets): Promise<void> {
  await bed.stop(name);
  bed.startDaemon(
    dnsDaemons(dns, configs).find((d) => d.name === name)!,
    files,
    secretsDir,
  );
}

/**
 * Runs these daemons on the rendered files again and waits for the router's DNS to answer. Unbound is restarted
 * after Knot: it backs off an authoritative server that timed out, and the test must not wait for that to pass.
 */
async function restore(names: string[]): Promise<void> {
  for (const name of names) await run(name, configs);
  await waitFor("the router's DNS to answer again", () => probe(["trusted"]).code === 0, 30_000).catch((e: Error) => {
    throw new Error(`${e.message}\n${probe(["trusted"]).out}\n${bed.logs()}`);
  });
}

/** The rendered files with one file's text edited (and the edit checked to have happened). */
function edited(key: string, from: RegExp, to: string): Map<string, string> {
  const files = new Map(configs);
  files.set(key, configs.get(key)!.replace(from, to));
  expect(files.get(key), `${key} edited`).not.toBe(configs.get(key));
  return files;
}

describe.skipIf(!t.ok)("the DNS probe, with the real dnsdist, Unbound and Knot", () => {
  beforeAll(async () => {
    const work = tempDir("dns-probe-");
    bin = join(work, "bin");
    mkdirSync(bin);
    const busybox = spawnSync("sh", ["-c", "command -v busybox"], { encoding: "utf8" }).stdout.trim();
    symlinkSync(busybox, join(bin, "nslookup"));
    const ca = join(work, "ca");
    mkdirSync(ca);
    secrets = tlsSecrets(ca, tlsNames, tlsAddresses);
    caPem = readFileSync(join(ca, "ca.pem"), "utf8");
    bed = new DnsBed(TAG, work);
    bed.topology(plan, [], [INTERNET_DNS.resolver4]);
    const ruleset = withoutNftQueue(siteRuleset(site, plan, policy));
    bed.in(bed.router, ["nft", "-f", "-"], { input: ruleset });
    writeListDb(bed.hostPath(PATHS.lists), "ads", ADS_FEED);
    for (const d of dnsDaemons(dns, configs))
      if (["dns-front", "dns-resolver", "dns-auth"].includes(d.name)) bed.startDaemon(d, configs, secrets);
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

  it("asks the router's name over DoT and DoH at the first gateway of each encrypted zone's segment, verified", () => {
    expect(tlsNames.length, "the test site has encrypted zones").toBeGreaterThan(0);
    const r = probe(probes.map((p) => p.segment));
    expect(r.code, r.out).toBe(0);
    for (const p of probes) {
      const s = p.servers[0];
      for (const proto of ["DoT", "DoH"]) {
        const line = `ok segment ${p.segment}: ${proto} at ${s} answers ${p.name} ${s.includes(":") ? "aaaa" : "a"} with ${s}`;
        if (encrypted.some((z) => z.segments.includes(p.segment))) expect(r.out).toContain(line);
        else expect(r.out).not.toContain(`segment ${p.segment}: ${proto}`);
      }
    }
  });

  it("fails naming DoT and DoH and blaming the front when its certificate names neither the router nor the address", async () => {
    const other = tlsSecrets(join(bin, "..", "ca"), ["router.elsewhere.example"], ["192.0.2.1"]);
    await run("dns-front", configs, other);
    await waitFor("the front with the other certificate", () => probe(["trusted"]).code === 1, 20_000);
    const r = probe(["trusted"]);
    const trusted = probes.find((p) => p.segment === "trusted")!;
    const at = trusted.servers[0].replace(/\./g, "\\.");
    for (const proto of ["DoT", "DoH"])
      expect(r.out).toMatch(new RegExp(`^FAIL segment trusted: ${proto} at ${at}: no answer for .* → dns-front$`, "m"));
    // plain DNS still answers at every gateway: only the TLS listeners are wrong
    expect(r.out).not.toMatch(/^FAIL segment trusted: DNS at /m);
    expect(blamed(r.out)).toEqual(["dns-front", "dns-front"]);
    await restore(["dns-front"]);
  }, 60_000);

  it("fails naming DoT (and not DoH) and blaming the front when its DoT listener is gone", async () => {
    await run("dns-front", edited("dnsdist.conf", /^addTLSLocal\(.*$/gm, "-- no DoT listener"));
    await waitFor("the front without DoT", () => probe(["trusted"]).code === 1, 20_000);
    const r = probe(["trusted", "mgmt"]);
    for (const seg of ["trusted", "mgmt"]) {
      const at = probes.find((p) => p.segment === seg)!.servers[0].replace(/\./g, "\\.");
      expect(r.out).toMatch(new RegExp(`^FAIL segment ${seg}: DoT at ${at}: no answer .* → dns-front$`, "m"));
      expect(r.out).toMatch(new RegExp(`^ok segment ${seg}: DoH at ${at} answers `, "m"));
    }
    expect(blamed(r.out)).toEqual(["dns-front", "dns-front"]);
    await restore(["dns-front"]);
  }, 60_000);

  it("fails on a segment the router does not answer DNS on", () => {
    const r = probe(["servers"]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^FAIL segment servers: not a segment the router answers DNS on$/m);
  });

  it("fails naming the segment, the address, what came back and Knot when the site's zone points the name elsewhere", async () => {
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
    bed.startDaemon(auth, wrong, secrets);
    await waitFor("Knot to serve the edited zone", () => probe(["trusted"]).out.includes("is 10.20.0.9 "), 20_000);
    const r = probe(["trusted", "iot"]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      new RegExp(
        `^FAIL segment trusted: DNS at 10\\.20\\.0\\.1: ${owner} a is 10\\.20\\.0\\.9 not 10\\.20\\.0\\.1; ` +
          `resolver at 127\\.0\\.0\\.1#${PORTS.resolver} answers 10\\.20\\.0\\.9 not 10\\.20\\.0\\.1, ` +
          `authoritative at 127\\.0\\.0\\.1#${PORTS.authoritative} answers 10\\.20\\.0\\.9 not 10\\.20\\.0\\.1 → dns-auth$`,
        "m",
      ),
    );
    expect(r.out).toMatch(/^ok segment iot: DNS at 10\.30\.0\.1 /m);
    await bed.stop("dns-auth");
    bed.startDaemon(auth, configs, secrets);
    await waitFor("Knot to serve the rendered zone", () => probe(["trusted"]).code === 0, 20_000);
  });

  it("blames exactly the daemon that was stopped: the front, the resolver, the authoritative server in turn", async () => {
    const trusted = probes.find((p) => p.segment === "trusted")!;
    for (const daemon of DNS_PROBE_DAEMONS) {
      await bed.stop(daemon);
      const r = probe(["trusted"]);
      expect(r.code, `${daemon} stopped:\n${r.out}`).toBe(1);
      expect(blamed(r.out), `${daemon} stopped:\n${r.out}`).toEqual(trusted.servers.map(() => daemon));
      await restore(daemon === "dns-auth" ? ["dns-auth", "dns-resolver"] : [daemon]);
    }
  }, 120_000);

  it("blames the front when it sends its queries to the wrong port, and says the resolver answers", async () => {
    const to = `127.0.0.1:${PORTS.resolver}`;
    await run(
      "dns-front",
      edited("dnsdist.conf", new RegExp(`address="${to}"`), `address="127.0.0.1:${PORTS.resolver + 1}"`),
    );
    await waitFor("the misdirected front to fail", () => probe(["trusted"]).code === 1, 20_000);
    const r = probe(["trusted"]);
    expect(r.out).toMatch(
      /^FAIL segment trusted: DNS at 10\.20\.0\.1: .*; resolver answers, front does not → dns-front$/m,
    );
    expect(blamed(r.out)).toEqual(["dns-front", "dns-front"]);
    await restore(["dns-front"]);
  }, 60_000);

  it("blames the resolver when its stub points past Knot, and says Knot answers", async () => {
    const stub = `stub-addr: 127.0.0.1@${PORTS.authoritative}`;
    await run(
      "dns-resolver",
      edited("unbound.conf", new RegExp(stub, "g"), `stub-addr: 127.0.0.1@${PORTS.authoritative + 1}`),
    );
    await waitFor("the misdirected resolver to fail", () => probe(["trusted"]).code === 1, 20_000);
    const r = probe(["trusted"]);
    expect(r.out).toMatch(
      new RegExp(
        `^FAIL segment trusted: DNS at 10\\.20\\.0\\.1: .*; authoritative answers, resolver at 127\\.0\\.0\\.1#${PORTS.resolver} gives no address \\(.+\\) → dns-resolver$`,
        "m",
      ),
    );
    expect(blamed(r.out)).toEqual(["dns-resolver", "dns-resolver"]);
    await restore(["dns-resolver"]);
  }, 60_000);

  it("fails naming DoT within its bound when the DoT port accepts but never completes a handshake", async () => {
    await run("dns-front", edited("dnsdist.conf", /^addTLSLocal\(.*$/gm, "-- no DoT listener"));
    const trusted = probes.find((p) => p.segment === "trusted")!;
    const at = trusted.servers[0];
    const stall = spawn(
      "ip",
      ["netns", "exec", bed.router, "socat", `TCP-LISTEN:853,bind=${at},reuseaddr,fork`, "SYSTEM:sleep 10"],
      {
        stdio: "ignore",
      },
    );
    try {
      await waitFor("the stalling DoT port", () => probe(["trusted"]).out.includes("took too long"), 20_000);
      const r = probe(["trusted"]);
      expect(r.out).toMatch(
        new RegExp(
          `^FAIL segment trusted: DoT at ${at.replace(/\./g, "\\.")}: no answer for \\S+ a \\(WARNING: TLS, peer took too long to respond\\), plain DNS answers → dns-front$`,
          "m",
        ),
      );
      expect(blamed(r.out)).toEqual(["dns-front"]);
      // the plain queries answer at once; the stalled handshake is bounded like any query
      const queries = trusted.servers.length + TLS_QUERIES;
      expect(r.ms, r.out).toBeLessThan(queries * (QUERY_S * 1000 + 500));
    } finally {
      stall.kill();
      await restore(["dns-front"]);
    }
  }, 60_000);

  it("asks the next hops only after a failure: one query per gateway address (and DoT, DoH) while the segment answers", () => {
    // nslookup behind a shim that records each query it is asked
    const shim = join(bin, "..", "counting");
    mkdirSync(shim, { recursive: true });
    const log = join(shim, "queries");
    writeFileSync(join(shim, "nslookup"), `#!/bin/sh\necho "$*" >> ${log}\nexec ${join(bin, "nslookup")} "$@"\n`, {
      mode: 0o755,
    });
    const kdig = spawnSync("sh", ["-c", "command -v kdig"], { encoding: "utf8" }).stdout.trim();
    writeFileSync(join(shim, "kdig"), `#!/bin/sh\necho "kdig $*" >> ${log}\nexec ${kdig} "$@"\n`, { mode: 0o755 });
    for (const seg of ["trusted", "iot"]) {
      writeFileSync(log, "");
      const r = probe([seg], shim);
      expect(r.code, r.out).toBe(0);
      const asked = readFileSync(log, "utf8").trim().split("\n");
      const plain = asked.filter((a) => !a.startsWith("kdig "));
      expect(plain).toHaveLength(probes.find((p) => p.segment === seg)!.servers.length);
      expect(plain.join("\n")).not.toMatch(/-port=/);
      // two more queries on an encrypted zone's segment (DoT and DoH), none on another
      const tls = encrypted.some((z) => z.segments.includes(seg)) ? TLS_QUERIES : 0;
      expect(
        asked.filter((a) => a.startsWith("kdig ")),
        seg,
      ).toHaveLength(tls);
    }
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
            `^FAIL segment ${p.segment}: DNS at ${s.replace(/\./g, "\\.")}: no answer for ${p.name.replace(/\./g, "\\.")} a{1,4} within ${QUERY_S}s .*; resolver answers, front does not → dns-front$`,
            "m",
          ),
        );
    // each front query is bounded; the resolver, asked after each, answers at once
    const queries = two.reduce((n, p) => n + p.servers.length, 0);
    expect(r.ms, "each query is bounded").toBeLessThan(queries * (QUERY_S * 1000 + 500));
  });
});
