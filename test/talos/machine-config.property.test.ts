/**
 * Property tests of the node's machine configuration over random valid sites: every site renders
 * deterministically, validates against the Talos 1.14 schema, and has the structure an operator relies on
 * (one VLAN link per segment with the router's addresses, kube-proxy and Flannel off, no deprecated fields).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { formatIssues } from "../../components/site/issues";
import { parseSite } from "../../components/site/parse";
import { planSite, type SitePlan } from "../../components/site/plan";
import type { Site } from "../../components/site/schema";
import { renderMachineConfig } from "../../components/talos-node/machine-config";
import { redactedSecrets, type TalosSecrets } from "../../components/talos-node/secrets";
import { renderSegmentHost } from "../../components/vlan-segment/host";
import { validRawSite } from "../helpers/arbitrary-site";
import type { RawSite } from "../helpers/site-fixtures";
import { talosSchema } from "../helpers/talos-schema";
import { fixtureSecrets } from "../helpers/talos-fixtures";

/** Sites per property: enough for every choice of the arbitrary to meet every other one many times. */
const RUNS = 500;

type Doc = Record<string, unknown>;

interface Bundle {
  /** Which bundle, for failure messages. */
  bundle: string;
  secrets: TalosSecrets;
}

const bundles: Bundle[] = [
  { bundle: "redacted", secrets: redactedSecrets() },
  { bundle: "real-format", secrets: fixtureSecrets() },
];

function parsed(raw: RawSite): { site: Site; plan: SitePlan } {
  const r = parseSite(raw);
  if (!r.ok) throw new Error(`the arbitrary made an invalid site:\n${formatIssues(r.issues)}`);
  return { site: r.site, plan: planSite(r.site) };
}

function render({ site, plan }: { site: Site; plan: SitePlan }, secrets: TalosSecrets): string {
  return renderMachineConfig({
    site,
    plan,
    secrets,
    contributions: plan.segments.map(renderSegmentHost),
    registryPassword: site.registry?.username ? "registry-password-for-tests" : undefined,
  });
}

function docsOf(text: string): Doc[] {
  return parseAllDocuments(text).map((d) => d.toJS() as Doc);
}

/** Renders twice (the second time from a deep copy) and checks the two are equal and valid; returns the text. */
function expectDeterministicAndValid(input: { site: Site; plan: SitePlan }, { bundle, secrets }: Bundle): string {
  const first = render(input, secrets);
  const second = render(structuredClone(input), secrets);
  expect(second, `${bundle} secrets`).toBe(first);
  expect(talosSchema().validateStream(first), `${bundle} secrets`).toEqual([]);
  return first;
}

/** What an operator would notice in the rendered documents. */
function expectOperatorStructure(docs: Doc[], { site, plan }: { site: Site; plan: SitePlan }): void {
  const kind = (k: string) => docs.filter((d) => d.kind === k);

  // One VLAN link per segment, on its trunk, carrying the router's gateway address(es).
  const vlans = kind("VLANConfig");
  expect(vlans).toHaveLength(plan.segments.length);
  for (const seg of plan.segments) {
    const v = vlans.filter((d) => d.name === seg.link);
    expect(v, `VLANConfig ${seg.link}`).toHaveLength(1);
    expect(v[0]).toMatchObject({ vlanID: seg.vlan, parent: seg.parent, up: true });
    expect(v[0].addresses).toEqual([
      ...(seg.ipv4 ? [{ address: seg.ipv4.gatewayCidr }] : []),
      ...(seg.ipv6 ? [{ address: seg.ipv6.gatewayCidr }] : []),
    ]);
  }

  // Cilium is the CNI and replaces kube-proxy; CoreDNS forwards to the host resolver (the upstreams' one client).
  expect(docs.filter((d) => /Flannel/.test(String(d.kind)))).toEqual([]);
  expect(kind("KubeProxyConfig")).toHaveLength(1);
  expect(kind("KubeProxyConfig")[0].enabled).toBe(false);
  expect(kind("ResolverConfig")).toHaveLength(1);
  expect((kind("ResolverConfig")[0].hostDNS as Doc).forwardKubeDNSToHost).toBe(true);

  // Every NIC gets its stable name from its permanent MAC.
  const aliases = kind("LinkAliasConfig");
  expect(aliases.map((a) => a.name).sort()).toEqual(site.node.nics.map((n) => n.alias).sort());
  for (const nic of site.node.nics)
    expect((aliases.find((a) => a.name === nic.alias)!.selector as Doc).match).toContain(nic.mac);

  // The v1alpha1 document is first and holds none of the fields Talos 1.14 moved to documents.
  const v1 = docs[0];
  expect(v1.version).toBe("v1alpha1");
  expect(v1.kind).toBeUndefined();
  expect((v1.machine as Doc).network).toBeUndefined();
  expect((v1.cluster as Doc).network).toBeUndefined();
  expect(docs.slice(1).every((d) => typeof d.kind === "string")).toBe(true);
}

describe("the machine configuration of random valid sites", () => {
  // One pass per site: parsing a site costs more than rendering it, so every check shares the parse.
  it(`renders byte-identically twice, validates against the Talos 1.14 schema with redacted and real-format secrets, and has the structure an operator relies on, for ${RUNS} sites`, () => {
    fc.assert(
      fc.property(validRawSite, (raw) => {
        const input = parsed(raw);
        const [, real] = bundles.map((b) => expectDeterministicAndValid(input, b));
        expectOperatorStructure(docsOf(real), input);
      }),
      { numRuns: RUNS },
    );
    // 500 renders and 1,000 schema checks: ~20 s on a quiet machine, more while other work shares the cores.
  }, 240_000);

  it("embeds the real bundle's keys and no placeholder, and the redacted bundle's placeholders and no key", () => {
    const real = fixtureSecrets();
    fc.assert(
      fc.property(validRawSite, (raw) => {
        const input = parsed(raw);
        const withReal = render(input, real);
        const withRedacted = render(input, redactedSecrets());
        expect(withReal).not.toContain("[secret:");
        expect(withReal).toContain(String(real.clusterSecret));
        expect(withReal).toContain(String(real.k8s.key).split("\n")[1]);
        expect(withRedacted).toContain("[secret:cluster.secret]");
        expect(withRedacted).not.toContain(String(real.clusterSecret));
        expect(withRedacted).not.toContain("PRIVATE KEY");
      }),
      { numRuns: 50 },
    );
  });
});
