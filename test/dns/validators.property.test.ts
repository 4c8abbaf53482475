/**
 * The DNS stack's artifacts of 200 random valid sites with a router:dns section (validRawSiteWithDns), checked by
 * the programs that read them (test/dns/lib/validators.ts), its Kubernetes objects by the API schemas, and the
 * router's ruleset with the stack's contribution by `nft -c`. Checks run a few at a time (they mostly wait on
 * processes). A failure prints the seed and the site; ROUTER_PROPERTY_SEED replays a run.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseSite } from "../../components/site/parse";
import { planSite } from "../../components/site/plan";
import { compilePolicy } from "../../components/site/policy";
import { formatIssues } from "../../components/site/issues";
import type { Site } from "../../components/site/schema";
import { planDns } from "../../components/dns-stack/plan";
import { dnsConfigs, renderDnsObjects } from "../../components/dns-stack/k8s";
import { siteRuleset } from "../../components/host-layers";
import { withoutNftQueue } from "../helpers/nft-queue";
import { validRawSiteWithDns } from "../helpers/arbitrary-site";
import type { RawSite } from "../helpers/site-fixtures";
import { k8sCheck } from "../helpers/validators";
import { buildStats, dnsCheck, dnsValidatorsTier } from "./lib/validators";

const RUNS = 200;
const AT_ONCE = Number(process.env.ROUTER_VALIDATOR_POOL ?? 6);
const SEED = Number(process.env.ROUTER_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const IMAGE = `registry.lab.home.arpa:5000/router/router-dns@sha256:${"cd".repeat(32)}`;

function parsed(raw: RawSite): Site {
  const r = parseSite(raw);
  if (!r.ok) throw new Error(`the arbitrary made an invalid site:\n${formatIssues(r.issues)}`);
  return r.site;
}

/** The site's ruleset (every layer's contribution), through `nft -c` in a private network namespace. */
function nftCheck(ruleset: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), "dns-nft-"));
  writeFileSync(join(dir, "router.nft"), ruleset);
  return new Promise((done) =>
    execFile("unshare", ["-n", "nft", "-c", "-f", join(dir, "router.nft")], { encoding: "utf8" }, (err, _o, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      done(err ? [`nft -c: ${stderr}`] : []);
    }),
  );
}

async function checkSite(raw: RawSite): Promise<string[]> {
  const site = parsed(raw);
  const plan = planSite(site);
  const model = compilePolicy(site, plan);
  const dns = planDns(site, plan, model);
  const problems: string[] = [];
  if (dns.zones.length) {
    const files = new Map([...dnsConfigs(site, plan, dns)].map(([f, c]) => [`dns/${f}`, c]));
    problems.push(...(await dnsCheck(files)));
    for (const o of renderDnsObjects(site, plan, dns, IMAGE))
      problems.push(...k8sCheck(stringify(o, { lineWidth: 0 })).map((p) => `k8s ${o.metadata.name}: ${p}`));
  }
  // The ruleset the data plane loads: every layer's contribution, the DNS stack's through host-layers.ts.
  // The IDS queue's bypass verdicts as accept: this kernel has no nft queue (test/helpers/nft-queue.ts).
  problems.push(...(await nftCheck(withoutNftQueue(siteRuleset(site, plan, model)))));
  return problems;
}

const t = dnsValidatorsTier();

describe.skipIf(!t.ok)("the DNS artifacts of random sites", () => {
  beforeAll(() => buildStats(), 120_000);

  it("cover what the DNS renderers branch on", () => {
    const sites = fc.sample(validRawSiteWithDns, { numRuns: 300, seed: 5 }).map(parsed);
    const share = (f: (s: Site) => boolean) => sites.filter(f).length / sites.length;
    expect(share((s) => s.dns.zones.some((z) => z.encrypted))).toBeGreaterThan(0.2);
    expect(share((s) => s.dns.zones.some((z) => z.force === "redirect"))).toBeGreaterThan(0.1);
    expect(share((s) => s.dns.zones.some((z) => z.force === "reject"))).toBeGreaterThan(0.1);
    expect(share((s) => s.dns.profiles.some((p) => p.allowOnly))).toBeGreaterThan(0.1);
    expect(share((s) => s.dns.lists.some((l) => l.url))).toBeGreaterThan(0.3);
    expect(share((s) => s.dns.records.some((r) => r.type === "SRV"))).toBeGreaterThan(0.2);
    expect(share((s) => s.dns.records.some((r) => r.type === "TXT" && r.text.length > 255))).toBeGreaterThan(0.05);
    expect(share((s) => !s.dns.forward)).toBeGreaterThan(0.2);
    expect(share((s) => !s.dns.dnssec)).toBeGreaterThan(0.2);
    expect(share((s) => s.segments.some((x) => /\/(1[7-9]|2[0-3])$/.test(x.ipv4!.cidr)))).toBeGreaterThan(0.2);
    expect(
      share((s) => {
        const plan = planSite(s);
        return planDns(s, plan, compilePolicy(s, plan)).zones.length === 0;
      }),
      "sites where no zone has DNS",
    ).toBeGreaterThan(0.02);
  });

  it(`find no problem in the DNS artifacts of ${RUNS} random sites`, async () => {
    const raws = fc.sample(validRawSiteWithDns, { numRuns: RUNS, seed: SEED });
    const failed: string[] = [];
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < raws.length; i = next++) {
        const problems = await checkSite(raws[i]).catch((e: Error) => [`threw: ${e.stack ?? e}`]);
        if (problems.length)
          failed.push(
            [
              `site ${i} of seed ${SEED} (replay: ROUTER_PROPERTY_SEED=${SEED})`,
              ...problems.map((p) => `  ${p}`),
              ...(failed.length < 3 ? [`  site: ${JSON.stringify(raws[i])}`] : []),
            ].join("\n"),
          );
      }
    };
    await Promise.all(Array.from({ length: AT_ONCE }, worker));
    expect(failed, `${failed.length} of ${RUNS} sites have problems:\n${failed.join("\n\n")}`).toEqual([]);
  }, 600_000);
});
