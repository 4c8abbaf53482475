/** The node's Talos 1.14 machine configuration for concrete sites: what each document says and why. */
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import {
  diskSelectorCel,
  machineConfigDocuments,
  renderMachineConfig,
  apiEndpoint,
} from "../../components/talos-node/machine-config";
import { mergeContributions } from "../../components/talos-node/documents";
import { redactedSecrets, TOKEN_PATTERN, type TalosSecrets } from "../../components/talos-node/secrets";
import { renderTalosconfig } from "../../components/talos-node/talosconfig";
import { renderSegmentHost } from "../../components/vlan-segment/host";
import { renderCiliumValues } from "../../components/cilium-fabric/values";
import { renderDataplaneHost } from "../../components/dataplane/host";
import { parseSite } from "../../components/site/parse";
import { planSite } from "../../components/site/plan";
import { rawSiteConfig } from "../../components/site/load";
import { readStackConfig } from "../../cli/stack-config";
import { talosSchema } from "../helpers/talos-schema";
import { ROOT } from "../helpers/stacks";
import { fixtureSecrets } from "../helpers/talos-fixtures";

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function site(edit?: (raw: Doc) => void) {
  const raw = rawSiteConfig(readStackConfig(ROOT, "dev").values) as Doc;
  raw.registryPassword = "pw";
  edit?.(raw);
  const r = parseSite(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return { site: r.site, plan: planSite(r.site) };
}

function render(s = site(), secrets: TalosSecrets = fixtureSecrets()) {
  const text = renderMachineConfig({
    ...s,
    secrets,
    contributions: s.plan.segments.map(renderSegmentHost),
    registryPassword: "registry-pw",
  });
  const docs = parseAllDocuments(text).map((d) => d.toJS() as Doc);
  return { text, docs, of: (kind: string) => docs.filter((d) => d.kind === kind) };
}

describe("the machine configuration", () => {
  it("validates against the Talos 1.14 schema with a real-format secrets bundle", () => {
    expect(talosSchema().validateStream(render().text)).toEqual([]);
  });

  it("the schema check catches a wrong field (so a passing check means something)", () => {
    const bad = render().text.replace("vlanID: 10", "vlanId: 10");
    expect(talosSchema().validateStream(bad).join("\n")).toMatch(/VLANConfig\/lan0\.10.*vlanId/);
  });

  it("keeps only identity and trust in the v1alpha1 document, with keys in Talos' encodings", () => {
    const { docs } = render();
    const v1 = docs[0];
    expect(Object.keys(v1)).toEqual(["version", "debug", "machine", "cluster"]);
    expect(v1.machine.network).toBeUndefined();
    expect(v1.cluster.network).toBeUndefined();
    expect(v1.machine.type).toBe("controlplane");
    expect(Buffer.from(v1.machine.ca.key, "base64").toString()).toMatch(/^-----BEGIN ED25519 PRIVATE KEY-----/);
    expect(Buffer.from(v1.cluster.etcd.ca.key, "base64").toString()).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    expect(v1.machine.token).toMatch(TOKEN_PATTERN);
    expect(v1.cluster.token).toMatch(TOKEN_PATTERN);
    expect(v1.cluster.etcd.advertisedSubnets).toEqual(["10.10.0.0/24"]);
    expect(v1.machine.certSANs).toEqual(["10.10.0.1", "lab-rtr1.lab.home.arpa"]);
  });

  it("has no Flannel, no kube-proxy, KubePrism on 7445 and CoreDNS forwarded to the host resolver", () => {
    const { of } = render();
    expect(of("KubeFlannelCNIConfig")).toEqual([]);
    expect(of("KubeProxyConfig")[0].enabled).toBe(false);
    expect(of("KubePrismConfig")[0].port).toBe(7445);
    expect(of("ResolverConfig")[0].hostDNS).toEqual({
      enabled: true,
      forwardKubeDNSToHost: true,
      resolveMemberNames: true,
    });
    expect(of("KubeNetworkConfig")[0]).toMatchObject({
      podSubnets: ["10.244.0.0/16", "fd9c:5a1e:244::/56"],
      serviceSubnets: ["10.96.0.0/12", "fd9c:5a1e:96::/112"],
    });
    expect(of("KubeClusterConfig")[0]).toEqual({
      apiVersion: "v1alpha1",
      kind: "KubeClusterConfig",
      clusterName: "lab",
      endpoint: "https://10.10.0.1:6443",
    });
    expect(of("KubeNodeConfig")[0].taints).toBeUndefined();
    expect(of("KubeNodeConfig")[0].nodeIP.validSubnets).toEqual(["10.10.0.0/24", "fd12:3456:789a:10::/64"]);
    expect(of("KubeAPIServerCAConfig")[0].issuingCA.key).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
  });

  it("sends the cluster's lookups to DoT upstreams only through the host resolver, on a fabric where that path works", () => {
    const s = site((raw) => {
      raw.dns = {
        ...raw.dns,
        upstreams: [{ address: "9.9.9.9", protocol: "DoT", tlsServerName: "dns.quad9.net" }],
      };
    });
    const resolver = render(s).of("ResolverConfig")[0];
    // The upstream is DoT on the host; CoreDNS asks the host, never the upstream on port 53 itself.
    expect(resolver.nameservers).toEqual([{ address: "9.9.9.9", protocol: "DoT", tlsServerName: "dns.quad9.net" }]);
    expect(resolver.hostDNS.forwardKubeDNSToHost).toBe(true);
    // Forwarding to the host resolver fails under Cilium's BPF masquerade with BPF host routing (siderolabs/talos
    // issue 10002): the fabric must keep iptables masquerade or legacy host routing for this path.
    const bpf = renderCiliumValues(s.site, s.plan).bpf as { masquerade: boolean; hostLegacyRouting: boolean };
    expect(bpf.masquerade === false || bpf.hostLegacyRouting === true).toBe(true);
  });

  it("names the NICs by MAC and puts one VLAN link with its gateway addresses on the trunk per segment", () => {
    const { of } = render();
    expect(of("LinkAliasConfig").map((d) => [d.name, d.selector.match])).toEqual([
      ["lan0", 'mac(link.permanent_addr) == "00:1a:2b:3c:4d:02"'],
      ["wan0", 'mac(link.permanent_addr) == "00:1a:2b:3c:4d:01"'],
      ["wan1", 'mac(link.permanent_addr) == "00:1a:2b:3c:4d:03"'],
    ]);
    const vlans = of("VLANConfig");
    expect(vlans.map((v) => v.name)).toEqual(["lan0.10", "lan0.20", "lan0.30", "lan0.40", "lan0.50"]);
    expect(vlans[2]).toMatchObject({
      vlanID: 30,
      parent: "lan0",
      up: true,
      addresses: [{ address: "10.30.0.1/23" }, { address: "fd12:3456:789a:30::1/64" }],
    });
    // The fibre (priority 10) is preferred over the LTE backup (20): a lower default-route metric.
    expect(of("DHCPv4Config")).toEqual([
      { apiVersion: "v1alpha1", kind: "DHCPv4Config", name: "wan0", routeMetric: 1010, ignoreHostname: true },
      { apiVersion: "v1alpha1", kind: "DHCPv4Config", name: "wan1", routeMetric: 1020, ignoreHostname: true },
    ]);
    expect(of("LinkConfig").map((l) => l.name)).toEqual(["wan0", "wan1", "lan0"]);
  });

  it("turns the box into a router: forwarding, no redirects, no kernel reverse-path check on any link (the kernel's would meet the forward gate's blackhole; the ruleset's fib check is strict on segments), no RAs accepted on LANs", () => {
    const params = render().of("SysctlConfig")[0].params;
    expect(params["net.ipv4.ip_forward"]).toBe("1");
    expect(params["net.ipv6.conf.all.forwarding"]).toBe("1");
    expect(params["net.ipv4.conf.all.accept_redirects"]).toBe("0");
    expect(params["net.ipv4.conf.all.rp_filter"]).toBe("0");
    expect(params["net.ipv4.conf.default.rp_filter"]).toBe("0");
    expect(params["net/ipv4/conf/lan0.20/rp_filter"]).toBe("0");
    expect(params["net/ipv6/conf/lan0.20/accept_ra"]).toBe("0");
    expect(params["net.ipv6.conf.default.accept_ra"]).toBe("2");
  });

  it("keeps every management port of the node to the management prefixes from boot on, without Talos' ICMP limit", () => {
    const { of } = render();
    // accept, not block: Talos' block mode limits all ICMP/ICMPv6 input to 5/s (neighbour discovery) and drops
    // every protocol but TCP/UDP (OSPF).
    expect(of("NetworkDefaultActionConfig")).toEqual([
      { apiVersion: "v1alpha1", kind: "NetworkDefaultActionConfig", ingress: "accept" },
    ]);
    const rules = of("NetworkRuleConfig");
    const byPort = new Map<string, string[]>();
    for (const r of rules) {
      expect(r.portSelector.protocol).toBe("tcp");
      for (const p of r.portSelector.ports)
        byPort.set(
          String(p),
          r.ingress.map((i: Doc) => i.subnet),
        );
    }
    const mgmt = ["10.10.0.0/24", "fd12:3456:789a:10::/64"];
    for (const port of ["50000", "50001", "2379-2380"]) expect(byPort.get(port), port).toEqual(mgmt);
    // The cluster's pods reach the API server and the kubelet; the metrics port too (a Prometheus pod).
    for (const port of ["6443", "10250", "9430"])
      expect(byPort.get(port), port).toEqual([...mgmt, "10.244.0.0/16", "fd9c:5a1e:244::/56"]);
    // No other zone's prefix is ever allowed.
    for (const subnets of byPort.values())
      for (const s of subnets)
        expect(["10.20.", "10.30.", "10.40.", "10.50.", "fd12:3456:789a:20"].some((p) => s.startsWith(p))).toBe(false);
  });

  it("closes the forward gate at boot: routed packets the ruleset has not marked are blackholed, the node's own are not", () => {
    const s = site();
    const docs = machineConfigDocuments({
      ...s,
      secrets: fixtureSecrets(),
      contributions: renderDataplaneHost(s.site, s.plan, { nftRuleset: "" }),
    }) as Doc[];
    const gate = docs.filter((d) => d.kind === "RoutingRuleConfig");
    expect(gate.map((g) => g.name)).toEqual(["32000", "32001", "32002"]);
    expect(gate[0]).toMatchObject({ iifName: "lo", table: "main" });
    expect(gate[1]).toMatchObject({ fwMark: 0x1000, fwMask: 0x1000, table: "main" });
    expect(gate[2]).toMatchObject({ action: "blackhole" });
    expect(gate[2].iifName).toBeUndefined();
  });

  it("installs with the site's installer to the selected disk, never the boot USB stick", () => {
    const inst = render().of("UnattendedInstallConfig")[0];
    expect(inst.installer.image).toMatch(/:v1\.14\.6$/);
    expect(inst.provisioning.diskSelector.match).toBe(
      '!disk.readonly && !disk.cdrom && disk.transport != "usb" && disk.transport == "nvme" && disk.size >= 100u * GiB',
    );
    expect(inst.provisioning.wipe).toBe(false);
  });

  it("authenticates to the site's registry and probes the WAN", () => {
    const { of } = render();
    expect(of("RegistryAuthConfig")[0]).toMatchObject({
      name: "registry.lab.home.arpa:5000",
      username: "router",
      password: "registry-pw",
    });
    expect(of("TCPProbeConfig")[0]).toMatchObject({ name: "wan-reachability", endpoint: "1.1.1.1:853" });
  });

  it("renders static and dual-WAN uplinks with routes and metrics, and a bonded trunk", () => {
    const s = site((raw) => {
      raw.node.nics.push({ alias: "lan1", mac: "00:1a:2b:3c:4d:04" });
      raw.links = [
        {
          name: "wan0",
          role: "wan",
          ipv4: { mode: "static", address: "203.0.113.10/29", gateway: "203.0.113.9" },
          ipv6: { mode: "static", address: "2001:db8:1::10/64", gateway: "2001:db8:1::1" },
          priority: 10,
          // The site's IPv6 forward goes to a unique local address, which needs NAT66.
          nat: { ipv4: "masquerade", ipv6: "masquerade" },
        },
        { name: "wan1", role: "wan", ipv4: { mode: "dhcp" }, ipv6: { mode: "dhcpv6" }, priority: 20 },
        { name: "bond0", role: "trunk", bond: { members: ["lan0", "lan1"], mode: "802.3ad", lacpRate: "fast" } },
      ];
    });
    const { of, text } = render(s);
    expect(talosSchema().validateStream(text)).toEqual([]);
    const wan0 = of("LinkConfig").find((l) => l.name === "wan0")!;
    expect(wan0.addresses).toEqual([{ address: "203.0.113.10/29" }, { address: "2001:db8:1::10/64" }]);
    expect(wan0.routes).toEqual([
      { gateway: "203.0.113.9", metric: 1010 },
      { gateway: "2001:db8:1::1", metric: 1010 },
    ]);
    expect(of("DHCPv4Config").map((d) => [d.name, d.routeMetric])).toEqual([["wan1", 1020]]);
    expect(of("DHCPv6Config").map((d) => d.name)).toEqual(["wan1"]);
    expect(of("BondConfig")[0]).toMatchObject({
      name: "bond0",
      links: ["lan0", "lan1"],
      bondMode: "802.3ad",
      lacpRate: "fast",
      miimon: 100,
      updelay: 0,
      downdelay: 0,
      up: true,
    });
    expect(of("VLANConfig").every((v) => v.parent === "bond0")).toBe(true);
  });

  it("renders the same bytes for the same inputs", () => {
    expect(render().text).toBe(render().text);
  });

  it("with placeholders instead of secrets, contains no secret at all", () => {
    const redacted = render(site(), redactedSecrets()).text;
    const real = fixtureSecrets();
    for (const v of [real.bootstrapToken, real.trustdToken, real.clusterSecret, real.secretboxEncryptionSecret])
      expect(redacted).not.toContain(v as string);
    expect(redacted).toContain("[secret:certs.os.key]");
  });

  it("refuses two layers contributing the same document or conflicting kernel parameters", () => {
    const doc = { apiVersion: "v1alpha1" as const, kind: "VLANConfig", name: "lan0.10" };
    expect(() =>
      mergeContributions([
        { layer: "segments", documents: [doc] },
        { layer: "routing", documents: [doc] },
      ]),
    ).toThrow(/two layers contribute the Talos document VLANConfig\/lan0.10/);
    expect(() =>
      mergeContributions([
        { layer: "segments", documents: [], sysctls: { a: "1" } },
        { layer: "dataplane", documents: [], sysctls: { a: "0" } },
      ]),
    ).toThrow(/kernel parameter a is set to both 1 and 0/);
    const s = site();
    expect(() =>
      machineConfigDocuments({
        ...s,
        secrets: redactedSecrets(),
        contributions: [renderSegmentHost(s.plan.segments[0]), renderSegmentHost(s.plan.segments[0])],
      }),
    ).toThrow(/VLANConfig\/lan0.10/);
  });
});

describe("disk selection", () => {
  it.each([
    [{ path: "/dev/sda" }, '!disk.readonly && !disk.cdrom && disk.dev_path == "/dev/sda"'],
    [{ serial: "S3Z" }, '!disk.readonly && !disk.cdrom && disk.transport != "usb" && disk.serial == "S3Z"'],
    [
      { type: "ssd" as const, maxSizeGiB: 512 },
      '!disk.readonly && !disk.cdrom && disk.transport != "usb" && !disk.rotational && disk.size <= 512u * GiB',
    ],
    [{ type: "hdd" as const }, '!disk.readonly && !disk.cdrom && disk.transport != "usb" && disk.rotational'],
    [{ type: "sd" as const }, '!disk.readonly && !disk.cdrom && disk.transport != "usb" && disk.transport == "mmc"'],
    // A raw match keeps the guards: a typo'd model must not let the installer pick the boot USB stick.
    [{ match: 'disk.model == "X"' }, '!disk.readonly && !disk.cdrom && disk.transport != "usb" && disk.model == "X"'],
    // Talos' disk locator has glob(pattern, string) with * as its wildcard (pkg/machinery/cel/celenv): a model
    // with * compared with == would select no disk at all.
    [
      { model: "Samsung SSD 980*" },
      '!disk.readonly && !disk.cdrom && disk.transport != "usb" && glob("Samsung SSD 980*", disk.model)',
    ],
    [{ path: "/dev/nvme*" }, '!disk.readonly && !disk.cdrom && glob("/dev/nvme*", disk.dev_path)'],
    [
      { serial: "S6B*", wwid: "eui.0025*" },
      '!disk.readonly && !disk.cdrom && disk.transport != "usb" && glob("S6B*", disk.serial) && glob("eui.0025*", disk.wwid)',
    ],
  ])("%j selects with %s", (sel, cel) => {
    expect(diskSelectorCel(sel)).toBe(cel);
  });
});

describe("the talosconfig", () => {
  it("carries the OS CA and the admin client certificate for the management endpoint", () => {
    const tc = parse(
      renderTalosconfig({ context: "lab", endpoints: ["10.10.0.1"], caPem: "CA", crtPem: "CRT", keyPem: "KEY" }),
    );
    expect(tc.context).toBe("lab");
    expect(tc.contexts.lab.endpoints).toEqual(["10.10.0.1"]);
    expect(Buffer.from(tc.contexts.lab.ca, "base64").toString()).toBe("CA");
    expect(Buffer.from(tc.contexts.lab.key, "base64").toString()).toBe("KEY");
  });

  it("brackets IPv6 API endpoints", () => {
    expect(apiEndpoint("fd00::1")).toBe("https://[fd00::1]:6443");
    expect(apiEndpoint("10.0.0.1", 7445)).toBe("https://10.0.0.1:7445");
  });
});
