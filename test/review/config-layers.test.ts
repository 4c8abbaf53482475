/**
 * A preview shows every layer of the host: the machine configuration TalosNode applies is split into one
 * `router:talos:ConfigLayer` per layer, whose inputs a reviewer reads (secrets as placeholders), and the apply
 * changes exactly when one of them does. Checked under the mocks on pairs of renders: one firewall rule changed,
 * one segment added — the resources whose inputs change are listed exactly, and the firewall layer's change is
 * shown by the real `diff` tool to name the rule.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderStack } from "../../cli/render";
import type { OutputGenerator, RecordedResource } from "../../cli/mock-runtime";
import { placeholderOutputs } from "../../cli/mock-runtime";
import { devStack } from "../helpers/stacks";
import { GENERATION_PLACEHOLDER } from "../../components/dataplane/host";
import { tempDir } from "../helpers/temp";

/** Real secret material would look like this: a marker a leak cannot hide. */
const LEAK = "LEAKMARKERx7q";
const secretOutputs: OutputGenerator = (type, name, inputs) => {
  if (type === "tls:index/privateKey:PrivateKey")
    return { privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${LEAK}${name}\n-----END PRIVATE KEY-----\n` };
  if (type === "random:index/randomPassword:RandomPassword") return { result: `${LEAK}${name}` };
  if (type === "random:index/randomBytes:RandomBytes") return { base64: `${LEAK}${name}`, hex: `${LEAK}${name}` };
  return placeholderOutputs(type, name, inputs);
};

type Raw = Record<string, unknown>;
interface Rule {
  name: string;
  ports?: number[];
}

async function render(edit?: (raw: Raw) => void): Promise<RecordedResource[]> {
  const { run } = await renderStack({ stack: "dev", config: devStack(edit), outputs: secretOutputs });
  return run.resources;
}

const byName = (rs: RecordedResource[]) => new Map(rs.map((r) => [r.name, r]));

/** Names of resources added, removed or with different inputs between two renders. */
function changed(a: RecordedResource[], b: RecordedResource[]): string[] {
  const ma = byName(a);
  const mb = byName(b);
  const names = new Set([...ma.keys(), ...mb.keys()]);
  return [...names].filter((n) => JSON.stringify(ma.get(n)?.inputs) !== JSON.stringify(mb.get(n)?.inputs)).sort();
}

const layers = (rs: RecordedResource[]) => rs.filter((r) => r.type === "router:talos:ConfigLayer");
const layerDigests = (rs: RecordedResource[]) => {
  const env = byName(rs).get("lab-node-apply")!.inputs.environment as Record<string, string>;
  return Object.fromEntries(env.ROUTER_CONFIG_LAYERS.split(" ").map((p) => p.split("=")));
};

/** Unified diff by the real `diff` tool. */
function unifiedDiff(a: string, b: string): string {
  const dir = tempDir("review-layers-");
  writeFileSync(join(dir, "a"), a);
  writeFileSync(join(dir, "b"), b);
  return spawnSync("diff", ["-U3", join(dir, "a"), join(dir, "b")], { encoding: "utf8" }).stdout;
}

let base: RecordedResource[];
let ruleChanged: RecordedResource[];
let segmentAdded: RecordedResource[];

beforeAll(async () => {
  base = await render();
  ruleChanged = await render((raw) => {
    const rules = (raw.firewall as { rules: Rule[] }).rules;
    rules.find((r) => r.name === "admins-reach-switches")!.ports = [22, 443, 8443];
  });
  segmentAdded = await render((raw) => {
    (raw.segments as Raw[]).push({
      name: "lab",
      description: "Test benches",
      vlan: 60,
      zone: "guest",
      ipv4: { cidr: "10.60.0.0/24" },
      ipv6: { prefix: "fd12:3456:789a:60::/64" },
    });
  });
}, 120_000);

describe("the machine configuration in a preview", () => {
  it("is one ConfigLayer per layer under the node, holding the layer's documents, kernel parameters and files", () => {
    const ls = layers(base);
    expect(ls.map((l) => l.name).sort()).toEqual(
      ["dataplane", "firewall", "node", "observability", "routing", "segments"]
        .map((l) => `lab-node-layer-${l}`)
        .sort(),
    );
    for (const l of ls) expect(l.parent?.endsWith("::lab-node")).toBe(true);
    const get = (n: string) => byName(base).get(`lab-node-layer-${n}`)!.inputs;
    const docs = (n: string) => Object.keys(get(n).documents as object);
    expect(docs("segments")).toEqual([
      "VLANConfig/lan0.10",
      "VLANConfig/lan0.20",
      "VLANConfig/lan0.30",
      "VLANConfig/lan0.40",
      "VLANConfig/lan0.50",
    ]);
    expect(Object.keys(get("segments").sysctls as object)).toContain("net/ipv6/conf/lan0.20/accept_ra");
    expect(docs("firewall")).toContain("NetworkRuleConfig/router-talos-api");
    expect(Object.keys(get("firewall").files as object)).toEqual([
      "router-dataplane:/usr/local/etc/router-dataplane/router.nft",
    ]);
    expect(docs("dataplane")).toContain("ExtensionServiceConfig/router-dataplane");
    expect(docs("node")).toEqual(expect.arrayContaining(["v1alpha1", "HostnameConfig/", "KubeletConfig/"]));
    // The observability layer's log destinations live in the v1alpha1 document; they show in its layer.
    expect(docs("observability")).toEqual(["KmsgLogConfig/router-logs", "v1alpha1:machine.logging"]);
    const v1 = (get("node").documents as Record<string, { machine: Record<string, unknown> }>).v1alpha1;
    expect(v1.machine.logging).toBeUndefined();
  });

  it("holds no secret: the node layer shows placeholders where the stream has keys and tokens", () => {
    const inputs = JSON.stringify(layers(base).map((l) => l.inputs));
    expect(inputs).not.toContain(LEAK);
    expect(inputs).not.toContain("PRIVATE KEY-----\\n");
    expect(inputs).not.toContain('"[secret]"');
    expect(inputs).toContain("[secret:certs.os.key]");
    expect(inputs).toContain("[secret:registryPassword]");
    // The applied stream does carry them (so the check above would see a leak): it is a secret.
    expect(byName(base).get("lab-node-apply")!.inputs.stdin).toBe("[secret]");
  });

  it("shows a changed firewall rule in the firewall layer only, the diff naming the rule, and the apply follows it", () => {
    expect(changed(base, ruleChanged)).toEqual([
      "lab-node-apply", // applies it (the stream, and the layer digests it carries)
      "lab-node-healthy", // the final gate runs after any configuration change
      "lab-node-layer-firewall", // the rule, as a line of the ruleset
      // Not lab-node-upgrade: its checks hold for any configuration, so only an installer image change runs it.
    ]);
    const file = "router-dataplane:/usr/local/etc/router-dataplane/router.nft";
    const before = (byName(base).get("lab-node-layer-firewall")!.inputs.files as Record<string, string>)[file];
    const after = (byName(ruleChanged).get("lab-node-layer-firewall")!.inputs.files as Record<string, string>)[file];
    const diff = unifiedDiff(before, after);
    expect(diff).toMatch(/^ .*# rule admins-reach-switches$/m);
    expect(diff).toMatch(/^\+.*8443/m);
    const [a, b] = [layerDigests(base), layerDigests(ruleChanged)];
    expect(Object.keys(a).filter((l) => a[l] !== b[l])).toEqual(["firewall"]);
    // The loader configuration's generation is a digest over the service's files, ruleset included: the data-plane
    // layer shows it as a placeholder (the applied stream carries the real one).
    const dp = byName(ruleChanged).get("lab-node-layer-dataplane")!.inputs.documents as Record<string, unknown>;
    const conf = JSON.stringify(dp["ExtensionServiceConfig/router-dataplane"]);
    expect(conf).toContain(GENERATION_PLACEHOLDER);
    expect(conf).not.toMatch(/generation = [0-9a-f]{64}/);
    // The try's data-plane check pins the digest of the ruleset it applies: the new one.
    const update = String(byName(ruleChanged).get("lab-node-apply")!.inputs.update);
    expect(update).toContain(createHash("sha256").update(after).digest("hex"));
    expect(update).not.toContain(createHash("sha256").update(before).digest("hex"));
  });

  it("shows an added segment as its VLAN, its firewall zone membership, its data-plane link, DHCP, RA, the IDS's home network and the fabric's device", () => {
    expect(changed(base, segmentAdded)).toEqual([
      "lab-cilium-release", // Cilium's devices list the new VLAN link
      // the DNS stack serves the new segment: its reverse zone (authoritative, DDNS), its gateway addresses (front,
      // resolver access, the feeds' per-zone lists); each DaemonSet follows its ConfigMap, then the rollout gate
      "lab-dns-configmap-dns-auth",
      "lab-dns-configmap-dns-ddns",
      "lab-dns-configmap-dns-feeds",
      "lab-dns-configmap-dns-front",
      "lab-dns-configmap-dns-resolver",
      "lab-dns-daemonset-dns-auth",
      "lab-dns-daemonset-dns-ddns",
      "lab-dns-daemonset-dns-feeds",
      "lab-dns-daemonset-dns-front",
      "lab-dns-daemonset-dns-resolver",
      "lab-dns-rollout",
      "lab-ids-check", // suricata -T runs again on the changed configuration before it ships
      "lab-ids-configmap", // Suricata's HOME_NET gains the segment's prefixes
      "lab-ids-daemonset", // follows its ConfigMap, named by content
      "lab-node-apply",
      "lab-node-healthy",
      "lab-node-layer-dataplane", // the loader attaches its accounting and QoS to the new link
      "lab-node-layer-firewall", // the zone's links and the segment's anti-spoofing prefixes
      "lab-node-layer-segments", // the VLAN link, its addresses and kernel parameters
      "lab-observability-configmap-dhcp", // the new pool's metrics
      "lab-observability-configmap-flows", // flow export from the new link
      "lab-observability-daemonset-flows",
      "lab-observability-daemonset-node-exporter", // its DHCP metrics read the pools' configuration
      "lab-segment-lab", // the new segment itself
      "lab-services-configmap-kea-dhcp4", // DHCP: the segment's subnet and pool
      "lab-services-configmap-radvd", // RA: the segment's prefix
      "lab-services-daemonset-kea-dhcp4", // each daemon follows its ConfigMap, named by content
      "lab-services-daemonset-radvd",
      "lab-services-rollout", // the rollout gate follows what it gates
    ]);
    const [a, b] = [layerDigests(base), layerDigests(segmentAdded)];
    expect(Object.keys(a).filter((l) => a[l] !== b[l])).toEqual(["segments", "firewall", "dataplane"]);
    const segs = byName(segmentAdded).get("lab-node-layer-segments")!.inputs.documents as Record<string, unknown>;
    expect(segs["VLANConfig/lan0.60"]).toMatchObject({
      vlanID: 60,
      addresses: [{ address: "10.60.0.1/24" }, { address: "fd12:3456:789a:60::1/64" }],
    });
  });
});
