/**
 * Every artifact of the network layer, checked by the real tool that will read it: the dev site and variants
 * that exercise OSPF (BIRD), BGP and static routes (Talos documents), prefix translation and source-restricted
 * forwards.
 */
import { describe, expect, it } from "vitest";
import { renderStack } from "../../cli/render";
import { devStack } from "../helpers/stacks";
import {
  validateArtifacts,
  validatorsTier,
  nftCheck,
  keaCheck,
  radvdCheck,
  birdCheck,
  avahiCheck,
  chronyCheck,
  k8sCheck,
} from "../helpers/validators";

const t = validatorsTier();

describe.skipIf(!t.ok)("rendered network artifacts", () => {
  it("of the dev site all pass their validators", async () => {
    const { files } = await renderStack({ stack: "dev" });
    const kinds = [...files.keys()].filter((p) => /^(services|dataplane\/router|talos|k8s)/.test(p));
    expect(kinds).toEqual(
      expect.arrayContaining([
        "services/kea-dhcp4.json",
        "services/kea-dhcp6.json",
        "services/radvd.conf",
        "services/chrony.conf",
        "services/avahi-daemon.casting.conf",
        "dataplane/router.nft",
        "talos/lab-rtr1.yaml",
      ]),
    );
    expect(kinds.filter((k) => k.startsWith("k8s/")).length).toBeGreaterThanOrEqual(6);
    expect(validateArtifacts(files)).toEqual([]);
  });

  it("of a site with OSPF, BGP, static routes and IPv6 prefix translation all pass, and each feature is rendered", async () => {
    const config = devStack((raw) => {
      raw.routing = {
        ospf: {
          routerId: "10.10.0.1",
          segments: ["servers"],
          passive: ["mgmt", "trusted"],
          redistribute: ["connected", "static"],
        },
        bgp: {
          asn: 65010,
          routerId: "10.10.0.1",
          neighbors: [{ address: "10.50.0.254", asn: 65020, bfd: true }],
          advertise: ["servers", "trusted"],
        },
      };
      raw.routes = [
        { destination: "192.168.100.0/24", gateway: "10.50.0.254", metric: 50 },
        { destination: "fd00:beef::/48", gateway: "fd12:3456:789a:50::fe" },
      ];
      const links = raw.links as Record<string, unknown>[];
      links[0].nat = {
        ipv4: "masquerade",
        ipv6: "prefix",
        ipv6Internal: "fd12:3456:789a::/48",
        ipv6External: "2a02:1234:5678::/48",
      };
    });
    const { files } = await renderStack({ stack: "dev", config });
    expect(validateArtifacts(files)).toEqual([]);
    const bird = files.get("services/bird.conf")!;
    expect(bird).toMatch(
      /area 0\.0\.0\.0 \{\n {4}interface "lan0\.10" \{ stub yes; \};\n {4}interface "lan0\.20" \{ stub yes; \};\n {4}interface "lan0\.50" \{ hello 10; dead 40; \};\n/,
    );
    const talos = files.get("talos/lab-rtr1.yaml")!;
    expect(talos).toMatch(/kind: BGPInstanceConfig\nname: default\nlocalASN: 65010/);
    expect(talos).toMatch(
      /name: lan0\.50[\s\S]*?routes:\n {2}- destination: 192\.168\.100\.0\/24\n {4}gateway: 10\.50\.0\.254\n {4}metric: 50/,
    );
    expect(files.get("dataplane/router.nft")).toMatch(/snat ip6 prefix to 2a02:1234:5678::\/48/);
    // What the routing section needs, from its peers only: OSPF on its active segment, BGP and BFD from the neighbour.
    const input = files.get("dataplane/router.nft")!;
    expect(input).toContain(
      'iifname "lan0.50" ip saddr 10.50.0.0/24 ip daddr { 224.0.0.5, 224.0.0.6, 10.50.0.1 } meta l4proto 89 accept',
    );
    expect(input).toContain('iifname "lan0.50" ip saddr 10.50.0.254 tcp dport 179 accept');
    expect(input).toContain('iifname "lan0.50" ip saddr 10.50.0.254 udp dport { 3784, 4784 } accept');
    expect(input).not.toMatch(/lan0\.(10|20)".* meta l4proto 89/);
    // Only the site's IPv4 static routes are redistributed, from BIRD's own static protocol.
    expect(bird).toContain("protocol static router_static {\n  ipv4;\n  route 192.168.100.0/24 via 10.50.0.254;\n}");
    expect(talos).toMatch(/neighbors:\n {2}- address: 10\.50\.0\.254\n {4}peerASN: 65020\n {4}bfd: \{\}/);
    expect(files.has("k8s/daemonset-router-system-bird.yaml")).toBe(true);
    expect(files.has("k8s/daemonset-router-system-frr.yaml")).toBe(false);
    // The BGP collector's Talos ServiceAccount, checked against the CRD Talos installs.
    expect(files.has("k8s/serviceaccount-router-observability-bgp-metrics.yaml")).toBe(true);
  });

  it("the validators reject broken files (so passing means something)", () => {
    expect(nftCheck("table inet router { chain c { tcp dport 99999 accept } }").length).toBe(1);
    expect(
      keaCheck(
        4,
        JSON.stringify({
          Dhcp4: {
            "interfaces-config": { interfaces: [] },
            subnet4: [{ id: 1, subnet: "10.0.0.0/24", pools: [{ pool: "10.1.0.1 - 10.1.0.9" }] }],
          },
        }),
      ).length,
    ).toBe(1);
    expect(radvdCheck("interface x { AdvSendAdvert maybe; };").length).toBe(1);
    expect(birdCheck("router id not-an-ip;\n").length).toBe(1);
    expect(chronyCheck("nonsense-directive 1\n").length).toBe(1);
    expect(avahiCheck("[server]\nno-such-key=1\n").length).toBe(1);
    const talosSa = (spec: string, ns = "\n  namespace: router-observability") =>
      k8sCheck(
        `apiVersion: talos.dev/v1alpha1\nkind: ServiceAccount\nmetadata:\n  name: bgp-metrics${ns}\nspec: ${spec}\n`,
      );
    expect(talosSa("{ roles: [os:reader] }")).toEqual([]);
    expect(talosSa("{ roles: [os:root] }")).toEqual([
      "ServiceAccount (talos.dev): /spec/roles/0 must be equal to one of the allowed values",
    ]);
    expect(talosSa("{ roles: [os:reader] }", "")).toEqual([
      "ServiceAccount (talos.dev): /metadata must have required property 'namespace'",
    ]);
  });
});
