/**
 * DnsStack in the whole program under Pulumi's mocks: where it sits in the tree and in the order of things, the
 * secrets it makes (the TSIG key, the site's DNS CA and the DoT/DoH certificate) and that they reach the daemons
 * only through the Kubernetes Secret (the canary key is inside the Secret's data and in no rendered file, input
 * or output), its host side in the ruleset, and its SUMMARY section.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { renderStack, type RenderResult } from "../../cli/render";
import { placeholderOutputs, type OutputGenerator } from "../../cli/mock-runtime";
import { devStack } from "../helpers/stacks";
import type { Raw } from "../helpers/dev-site";

const SIG = "4dabf18193072939515e22adb298388d";
const unwrap = (v: unknown): unknown =>
  v && typeof v === "object" && (v as Record<string, unknown>)[SIG] ? (v as { value: unknown }).value : v;
const TSIG_CANARY = `CANARYtsig${Math.random().toString(36).slice(2, 10)}`;
const TLS_CANARY = `CANARYtlskey${Math.random().toString(36).slice(2, 10)}`;

let result: RenderResult;
let secretInputs: Record<string, unknown> | undefined;
const byName = (name: string) => {
  const r = result.run.resources.find((x) => x.name === name);
  if (!r) throw new Error(`no resource ${name}`);
  return r;
};
const nameOf = (urn: string | undefined) => urn?.split("::").at(-1);
const dependsOn = (a: string, b: string) => byName(a).dependencies.map(nameOf).includes(b);

beforeAll(async () => {
  const outputs: OutputGenerator = (type, name, inputs) => {
    if (name === "lab-dns-secret-dns-secrets") secretInputs = inputs;
    if (name === "lab-dns-tsig") return { base64: TSIG_CANARY, hex: "00" };
    if (name === "lab-dns-tls-key")
      return { privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${TLS_CANARY}\n-----END PRIVATE KEY-----\n` };
    return placeholderOutputs(type, name, inputs);
  };
  result = await renderStack({ stack: "dev", config: devStack(), outputs });
}, 60_000);

describe("DnsStack in the program", () => {
  it("is one component under the appliance, with its children under it", () => {
    expect(byName("lab-dns").type).toBe("router:dns:DnsStack");
    expect(nameOf(byName("lab-dns").parent)).toBe("lab");
    for (const r of result.run.resources.filter((x) => x.name.startsWith("lab-dns-")))
      expect(nameOf(r.parent), r.name).toBe("lab-dns");
  });

  it("runs its daemons after the fabric, the namespace's owner and its Secret, from the pushed DNS image", () => {
    const ds = result.run.resources
      .filter((r) => r.type === "kubernetes:apps/v1:DaemonSet" && r.name.startsWith("lab-dns-"))
      .map((r) => r.name.replace("lab-dns-daemonset-", ""))
      .sort();
    expect(ds).toEqual(["dns-auth", "dns-ddns", "dns-feeds", "dns-front", "dns-resolver", "dns-stats"]);
    for (const d of ds.map((n) => `lab-dns-daemonset-${n}`)) {
      expect(dependsOn(d, "lab-cilium-release"), d).toBe(true);
      expect(dependsOn(d, "lab-services-namespace-router-system"), d).toBe(true);
      expect(dependsOn(d, "lab-dns-secret-dns-secrets"), d).toBe(true);
      expect(dependsOn(d, "lab-dns-image"), d).toBe(true);
      expect(dependsOn("lab-node-healthy", d), `the health gate waits for ${d}`).toBe(true);
    }
    expect(String(byName("lab-dns-image").inputs.create)).toMatch(/make -C images\/dns/);
    expect(String(byName("lab-dns-image").inputs.create)).toMatch(/registry\.lab\.home\.arpa:5000\/router\/router-dns/);
  });

  it("gates its rollout with the DNS probe: a host-network pod of the DNS image asks each served segment's gateways", () => {
    const gate = byName("lab-dns-rollout");
    expect(gate.inputs.environment).toBe("[secret]");
    const create = String(gate.inputs.create);
    expect(create).toMatch(/if ! probe_segments; then/);
    expect(create).toMatch(/^PROBE_STATE='dns-probe-state'$/m);
    const pod = JSON.parse(/^PROBE_POD='(.*)'$/m.exec(create)![1].replaceAll("'\\''", "'")) as {
      spec: {
        hostNetwork: boolean;
        containers: { image: string; command: string[]; securityContext: { capabilities: { add?: string[] } } }[];
      };
    };
    expect(pod.spec.hostNetwork).toBe(true);
    const front = byName("lab-dns-daemonset-dns-front").inputs as {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    expect(pod.spec.containers[0].image).toBe(front.spec.template.spec.containers[0].image);
    expect(pod.spec.containers[0].securityContext.capabilities.add).toBeUndefined();
    const script = pod.spec.containers[0].command[2];
    expect(script).toContain("check_dns 'trusted' 'lab-rtr1.trusted.lab.home.arpa' '10.20.0.1' 'a'");
    expect(script).toContain("check_dns 'trusted' 'lab-rtr1.trusted.lab.home.arpa' 'fd12:3456:789a:20::1' 'aaaa'");
    // a changed segment the stack serves re-runs the gate
    expect((gate.inputs.triggers as unknown[]).length).toBeGreaterThan(1);
    expect(dependsOn("lab-dns-rollout", "lab-dns-daemonset-dns-front")).toBe(true);
  });

  it("makes a 256-bit TSIG key and the site's DNS CA, which signs a certificate for the encrypted zones' addresses", () => {
    expect(byName("lab-dns-tsig").inputs.length).toBe(32);
    expect(byName("lab-dns-ca").inputs).toMatchObject({
      isCaCertificate: true,
      allowedUses: ["cert_signing", "crl_signing"],
    });
    const req = byName("lab-dns-tls-request").inputs as { dnsNames: string[]; ipAddresses: string[] };
    expect(req.dnsNames).toEqual([
      "lab-rtr1.lab.home.arpa",
      "lab-rtr1.mgmt.lab.home.arpa",
      "lab-rtr1.trusted.lab.home.arpa",
    ]);
    expect(req.ipAddresses).toEqual(["10.10.0.1", "fd12:3456:789a:10::1", "10.20.0.1", "fd12:3456:789a:20::1"]);
    expect(byName("lab-dns-tls").inputs.allowedUses).toContain("server_auth");
  });

  it("hands the key to Knot and D2 and the certificate to dnsdist only through the Secret", () => {
    const data = unwrap(secretInputs?.stringData) as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual(["tls.crt", "tls.key", "tsig-keys.json", "tsig.knot.conf"]);
    expect(data["tsig.knot.conf"]).toContain(`secret: ${TSIG_CANARY}`);
    expect(JSON.parse(data["tsig-keys.json"])[0]).toEqual({
      name: "router-ddns",
      algorithm: "HMAC-SHA256",
      secret: TSIG_CANARY,
    });
    expect(data["tls.key"]).toContain(TLS_CANARY);
    // … and nowhere else: not in a rendered file, a recorded input or a component output.
    expect(byName("lab-dns-secret-dns-secrets").inputs.stringData).toBe("[secret]");
    for (const [path, content] of result.files)
      for (const c of [TSIG_CANARY, TLS_CANARY]) expect(content.includes(c), path).toBe(false);
    for (const r of result.run.resources)
      expect(JSON.stringify([r.inputs, r.outputs]).includes(TSIG_CANARY), r.name).toBe(false);
  });

  it("adds its rules to the router's ruleset and publishes its files and SUMMARY section", () => {
    const nft = result.files.get("dataplane/router.nft")!;
    expect(nft).toMatch(
      /# DNS: forced zones[^\n]*\n\t+iifname "lan0\.40" meta nfproto ipv4 [^\n]* dnat ip to 10\.40\.0\.1/,
    );
    expect(result.files.get("dns/unbound.conf")).toMatch(/forward-addr: 9\.9\.9\.9@853#dns\.quad9\.net/);
    const summary = result.files.get("SUMMARY.md")!;
    expect(summary).toMatch(/\*\*DNS\*\* on the host network, from the DNS image pinned by digest: dns-auth, dns-ddns/);
    expect(summary).toMatch(/## DNS\n\nThe resolver forwards to 1\.1\.1\.1 over DoT/);
    expect(summary.indexOf("## DNS")).toBeGreaterThan(summary.indexOf("## Segments"));
  });
});

describe("a site where no zone has DNS", () => {
  it("deploys no DNS daemon, secret or image, and adds no rule", async () => {
    const none = await renderStack({
      stack: "dev",
      config: devStack((raw) => {
        for (const z of raw.zones as Raw[]) if (z.name !== "wan") z.services = ["dhcp", "ntp"];
        (raw.dns as Raw).zones = [];
      }),
    });
    const dns = none.run.resources.filter((r) => r.name.startsWith("lab-dns-"));
    expect(dns).toEqual([]);
    expect(none.files.get("dataplane/router.nft")).not.toMatch(/# DNS:/);
    expect(none.files.get("SUMMARY.md")).not.toMatch(/## DNS/);
  }, 60_000);
});
