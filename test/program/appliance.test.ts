/**
 * The whole program under Pulumi's mocks: the resource tree, parents, dependencies and protection a
 * `pulumi up` would act on.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { renderStack } from "../../cli/render";
import type { RecordedResource } from "../../cli/mock-runtime";
import { devStack } from "../helpers/stacks";

let resources: RecordedResource[];
const byName = (n: string) => {
  const r = resources.find((x) => x.name === n);
  if (!r) throw new Error(`no resource ${n}; have ${resources.map((x) => x.name).join(", ")}`);
  return r;
};
const nameOf = (urn: string | undefined) => urn?.split("::").at(-1);
const dependsOn = (a: string, b: string) => byName(a).dependencies.map(nameOf).includes(b);

beforeAll(async () => {
  ({
    run: { resources },
  } = await renderStack({ stack: "dev", config: devStack() }));
});

describe("the appliance program", () => {
  it("builds one tree rooted at the appliance, with each layer's resources under its component", () => {
    expect(byName("lab").type).toBe("router:appliance:Appliance");
    expect(byName("lab").parent).toBeUndefined();
    for (const child of ["lab-node", "lab-cilium", "lab-k8s"]) expect(nameOf(byName(child).parent)).toBe("lab");
    expect(byName("lab-node").type).toBe("router:talos:TalosNode");
    expect(byName("lab-cilium").type).toBe("router:cilium:CiliumFabric");
    for (const r of resources.filter((x) => x.name.startsWith("lab-node-")))
      expect(nameOf(r.parent), r.name).toBe("lab-node");
    expect(nameOf(byName("lab-cilium-release").parent)).toBe("lab-cilium");
  });

  it("creates the Talos secrets with Talos' key types", () => {
    const keys = resources.filter(
      (r) => r.type === "tls:index/privateKey:PrivateKey" && r.name.startsWith("lab-node-"),
    );
    const alg = Object.fromEntries(
      keys.map((k) => [k.name, `${k.inputs.algorithm}${k.inputs.ecdsaCurve ? `/${k.inputs.ecdsaCurve}` : ""}`]),
    );
    expect(alg).toEqual({
      "lab-node-os-ca-key": "ED25519",
      "lab-node-etcd-ca-key": "ECDSA/P256",
      "lab-node-k8s-ca-key": "ECDSA/P256",
      "lab-node-k8s-aggregator-ca-key": "ECDSA/P256",
      "lab-node-k8s-service-account-key": "ECDSA/P256",
      "lab-node-admin-key": "ED25519",
    });
    for (const ca of ["os", "etcd", "k8s", "k8s-aggregator"]) {
      const c = byName(`lab-node-${ca}-ca`);
      expect(c.inputs.isCaCertificate).toBe(true);
      expect(c.inputs.validityPeriodHours).toBe(87600);
    }
    expect((byName("lab-node-os-ca").inputs.subject as { organization: string }).organization).toBe("talos");
    expect((byName("lab-node-admin-csr").inputs.subject as { organization: string }).organization).toBe("os:admin");
    expect(byName("lab-node-admin-cert").inputs.allowedUses).toContain("client_auth");
    for (const t of ["bootstrap-token", "trustd-token"]) {
      expect(byName(`lab-node-${t}-id`).inputs).toMatchObject({
        length: 6,
        upper: false,
        special: false,
        lower: true,
        numeric: true,
      });
      expect(byName(`lab-node-${t}-secret`).inputs).toMatchObject({ length: 16, upper: false, special: false });
    }
    for (const b of ["cluster-id", "cluster-secret", "secretbox-key"])
      expect(byName(`lab-node-${b}`).inputs.length).toBe(32);
  });

  it("drives the node in order: install, bootstrap, kubeconfig, upgrade, apply", () => {
    expect(dependsOn("lab-node-bootstrap", "lab-node-install")).toBe(true);
    expect(dependsOn("lab-node-kubeconfig", "lab-node-bootstrap")).toBe(true);
    expect(dependsOn("lab-node-upgrade", "lab-node-kubeconfig")).toBe(true);
    expect(dependsOn("lab-node-apply", "lab-node-upgrade")).toBe(true);
  });

  it("installs Cilium only after the host configuration is confirmed (after bootstrap and the kubeconfig), through a provider built from it", () => {
    expect(dependsOn("lab-cilium-release", "lab-node-apply")).toBe(true);
    expect(dependsOn("lab-k8s", "lab-node-kubeconfig")).toBe(true);
    expect(byName("lab-k8s").inputs.kubeconfig).toBe("[secret]");
    const release = byName("lab-cilium-release");
    expect(release.inputs).toMatchObject({
      chart: "cilium",
      version: "1.20.0",
      namespace: "kube-system",
      atomic: true,
    });
    expect(dependsOn("lab-node-healthy", "lab-cilium-release")).toBe(true);
  });

  it("ships the data plane first: the node installs and upgrades to the installer built with our extension", () => {
    expect(nameOf(byName("lab-dataplane").parent)).toBe("lab");
    expect(dependsOn("lab-dataplane-installer", "lab-dataplane-extension")).toBe(true);
    expect(dependsOn("lab-node-install", "lab-dataplane-installer")).toBe(true);
    expect(dependsOn("lab-node-upgrade", "lab-dataplane-installer")).toBe(true);
    const ext = byName("lab-dataplane-extension");
    expect(String(ext.inputs.create)).toMatch(/make -C ebpf image/);
    expect(String(ext.inputs.create)).toMatch(/registry\.lab\.home\.arpa:5000\/router\/router-dataplane/);
    expect((ext.inputs.triggers as string[])[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(String(byName("lab-dataplane-installer").inputs.create)).toMatch(
      /ghcr\.io\/siderolabs\/imager:v1\.14\.6' installer --arch amd64 --system-extension-image "\$EXTENSION_IMAGE"/,
    );
    expect(byName("lab-dataplane-installer").inputs.environment).toBe("[secret]");
    const artifacts = byName("lab-dataplane").outputs?.artifacts as Record<string, string>;
    expect(Object.keys(artifacts).sort()).toEqual([
      "dataplane/dataplane.conf",
      "dataplane/router.nft",
      "dataplane/tables/block.txt",
      "dataplane/tables/ids-protected.txt",
    ]);
  });

  it("has one VlanSegment per segment carrying its addressing and DNS records", () => {
    const segs = resources.filter((r) => r.type === "router:network:VlanSegment");
    expect(segs.map((s) => s.name).sort()).toEqual(
      ["guest", "iot", "mgmt", "servers", "trusted"].map((n) => `lab-segment-${n}`),
    );
    const iot = byName("lab-segment-iot");
    expect(nameOf(iot.parent)).toBe("lab");
    expect(iot.outputs).toMatchObject({ link: "lan0.30", vlan: 30, ipv4: "10.30.0.0/23", gateway4: "10.30.0.1" });
    expect((byName("lab-segment-servers").outputs?.dnsRecords as unknown[]).length).toBeGreaterThanOrEqual(4);
  });

  it("runs the network services on the cluster after the fabric, from the pushed services image", () => {
    const ds = resources
      .filter((r) => r.type === "kubernetes:apps/v1:DaemonSet" && r.name.startsWith("lab-services-"))
      .map((r) => r.name)
      .sort();
    expect(ds).toEqual(
      ["avahi-casting", "chrony", "kea-dhcp4", "kea-dhcp6", "radvd"].map((n) => `lab-services-daemonset-${n}`),
    );
    for (const n of ds) {
      expect(dependsOn(n, "lab-cilium-release"), n).toBe(true);
      expect(dependsOn(n, "lab-services-image"), n).toBe(true);
      expect(dependsOn(n, "lab-services-namespace-router-system"), n).toBe(true);
    }
    expect(String(byName("lab-services-image").inputs.create)).toMatch(/make -C images\/services/);
    // The final health gate waits for every service workload.
    for (const n of ds) expect(dependsOn("lab-node-healthy", n), n).toBe(true);
  });

  it("changes the services only after a host change is tried and confirmed, then gates their rollout", () => {
    const services = resources.filter((r) => r.name.startsWith("lab-services-"));
    const ds = services.filter((r) => r.type === "kubernetes:apps/v1:DaemonSet").map((r) => r.name);
    const cms = services.filter((r) => r.type === "kubernetes:core/v1:ConfigMap");
    expect(cms.map((c) => c.name).sort()).toEqual(ds.map((n) => n.replace("daemonset", "configmap")).sort());
    for (const n of ds) {
      expect(dependsOn(n, "lab-node-apply"), n).toBe(true);
      expect(dependsOn(n, n.replace("daemonset", "configmap")), n).toBe(true);
      expect(dependsOn("lab-services-rollout", n), n).toBe(true);
    }
    for (const c of cms) {
      // Named by content, immutable and left in the cluster when replaced: the previous revision can use it.
      expect(c.inputs.immutable, c.name).toBe(true);
      expect(c.retainOnDelete, c.name).toBe(true);
      expect((c.inputs.metadata as { name: string }).name).toMatch(/^[a-z0-9-]+-[0-9a-f]{16}$/);
      expect(dependsOn(c.name, "lab-node-apply"), c.name).toBe(true);
    }
    const gate = byName("lab-services-rollout");
    expect(gate.inputs.environment).toBe("[secret]");
    expect(String(gate.inputs.create)).toMatch(/DAEMONS='kea-dhcp4 chrony radvd kea-dhcp6 avahi-casting'/);
    expect(String(gate.inputs.create)).toContain('"10.30.0.0/23"');
    // Then the segments the change touched answer from the node: a host-network pod of the services image (pinned
    // by digest) probes each one; a changed segment re-runs the gate.
    const create = String(gate.inputs.create);
    expect(create).toMatch(/if ! probe_segments; then/);
    const pod = JSON.parse(/^PROBE_POD='(.*)'$/m.exec(create)![1].replaceAll("'\\''", "'")) as {
      spec: { hostNetwork: boolean; containers: { image: string; command: string[] }[] };
    };
    expect(pod.spec.hostNetwork).toBe(true);
    const keaDs = byName("lab-services-daemonset-kea-dhcp4").inputs as {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    expect(pod.spec.containers[0].image).toBe(keaDs.spec.template.spec.containers[0].image);
    expect(pod.spec.containers[0].command[2]).toContain("check_segment 'iot' 'lan0.30' '10.30.0.0/23'");
    expect((gate.inputs.triggers as unknown[]).length).toBeGreaterThan(1);
    expect(dependsOn("lab-node-healthy", "lab-services-rollout")).toBe(true);
  });

  it("runs the health gate on every update, again whenever anything it gates changes", () => {
    const healthy = byName("lab-node-healthy");
    expect(healthy.inputs.update).toBe(healthy.inputs.create);
    expect(String(healthy.inputs.update)).toMatch(/run_checks/);
    expect(String(healthy.inputs.update)).toMatch(/ext-router-dataplane/);
    // The redacted machine configuration, the installer image, the services', the DNS stack's, the IDS stack's
    // and the observability stack's digests, and the fabric's values.
    expect((healthy.inputs.triggers as unknown[]).length).toBe(7);
    for (const stack of ["lab-observability-", "lab-dns-"]) {
      const gated = resources.filter((r) => r.type === "kubernetes:apps/v1:DaemonSet" && r.name.startsWith(stack));
      expect(gated.length, stack).toBeGreaterThan(0);
      for (const d of gated) expect(dependsOn("lab-node-healthy", d.name), d.name).toBe(true);
    }
  });

  it("runs the IDS stack after the confirmed host and the fabric, from the pushed IDS image, inside the health gate", () => {
    expect(nameOf(byName("lab-ids").parent)).toBe("lab");
    expect(byName("lab-ids").type).toBe("router:ids:IdsStack");
    expect(String(byName("lab-ids-image").inputs.create)).toMatch(/make -C images\/ids/);
    for (const dep of ["lab-node-apply", "lab-cilium-release", "lab-ids-configmap", "lab-ids-image"])
      expect(dependsOn("lab-ids-daemonset", dep), dep).toBe(true);
    expect(dependsOn("lab-node-healthy", "lab-ids-daemonset")).toBe(true);
    // suricata -T on the site's rules before anything of the stack ships
    expect(String(byName("lab-ids-check").inputs.create)).toMatch(/suricata -T -c etc\/suricata\.yaml/);
    expect(dependsOn("lab-ids-configmap", "lab-ids-check")).toBe(true);
    const cm = byName("lab-ids-configmap");
    expect(cm.inputs.immutable).toBe(true);
    expect(Object.keys(cm.inputs.data as object).sort()).toEqual(
      ["disable.conf", "local.rules", "suricata.yaml", "threshold.config", "update.yaml"].sort(),
    );
  });

  it("never re-runs the install on an update (a renewed admin certificate, an edited timeout)", () => {
    const install = byName("lab-node-install");
    expect(String(install.inputs.update)).not.toMatch(/talos|apply-config/);
    expect(String(install.inputs.update)).toMatch(/the node is installed/);
    expect(install.inputs.triggers).toBeUndefined();
  });

  it("protects the keys and the installed node so a destroy cannot wipe the router", () => {
    const protectedNames = resources
      .filter((r) => r.protect)
      .map((r) => r.name)
      .sort();
    expect(protectedNames).toEqual(
      [
        "lab-node-install",
        "lab-node-os-ca-key",
        "lab-node-os-ca",
        "lab-node-etcd-ca-key",
        "lab-node-etcd-ca",
        "lab-node-k8s-ca-key",
        "lab-node-k8s-ca",
        "lab-node-k8s-aggregator-ca-key",
        "lab-node-k8s-aggregator-ca",
        "lab-node-k8s-service-account-key",
        "lab-node-cluster-id",
        "lab-node-cluster-secret",
        "lab-node-secretbox-key",
        "lab-node-bootstrap-token-id",
        "lab-node-bootstrap-token-secret",
        "lab-node-trustd-token-id",
        "lab-node-trustd-token-secret",
      ].sort(),
    );
    expect(String(byName("lab-node-install").inputs.delete)).toMatch(/leaving the router at 10.10.0.1 running/);
    expect(String(byName("lab-node-install").inputs.delete)).not.toMatch(/talosctl|reset/);
  });

  it("passes secrets to commands only through secret environment and stdin", () => {
    for (const c of resources.filter((r) => r.type === "command:local:Command")) {
      // The apply also carries the digests of the configuration layers, in plain so a preview shows them.
      if (c.name === "lab-node-apply") {
        const { ROUTER_CONFIG_LAYERS: layers, ...rest } = c.inputs.environment as Record<string, unknown>;
        expect(layers).toMatch(/^node=[0-9a-f]{16}( [a-z]+=[0-9a-f]{16})+$/);
        expect(rest).toEqual({ ROUTER_TALOSCONFIG: "[secret]" });
      }
      // A command that needs no secret (resolving a public image's digest) has no environment at all.
      else if ("environment" in c.inputs) expect(c.inputs.environment, c.name).toBe("[secret]");
      else expect(JSON.stringify(c.inputs), c.name).not.toContain("[secret");
      if ("stdin" in c.inputs) expect(c.inputs.stdin, c.name).toBe("[secret]");
    }
    expect(byName("lab-node-kubeconfig").inputs.logging).toBe("stderr");
  });

  it("publishes the machine configuration with placeholders instead of secrets", () => {
    const node = byName("lab-node");
    const artifacts = node.outputs?.artifacts as Record<string, string>;
    const cfg = artifacts["talos/lab-rtr1.yaml"];
    expect(cfg).toContain("kind: VLANConfig");
    expect(cfg).toContain('key: "[secret:certs.os.key]"');
    expect(cfg).toContain('password: "[secret:registryPassword]"');
  });
});
