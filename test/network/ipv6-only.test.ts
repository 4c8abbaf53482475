/**
 * An IPv6-only segment end to end: the dev site with its guest segment left without IPv4 (stateful DHCPv6 on)
 * rendered by the whole program. The segment has no DHCPv4 subnet in Kea, a DHCPv6 subnet and router
 * advertisements, no IPv4 prefix in the ruleset's sets (so no NAT44 or IPv4 anti-spoofing for it), only its IPv6
 * address on its Talos VLAN link, and the summary says so; every artifact passes its real validator.
 */
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { renderStack } from "../../cli/render";
import { devStack } from "../helpers/stacks";
import { validateArtifacts, validatorsTier } from "../helpers/validators";

const t = validatorsTier();

const config = devStack((raw) => {
  const segs = raw.segments as Record<string, unknown>[];
  const guest = segs.find((s) => s.name === "guest")!;
  delete guest.ipv4;
  guest.dhcp = { leaseTime: 3600 };
  guest.dhcpv6 = { enabled: true };
});

describe("an IPv6-only segment, rendered", async () => {
  const { files } = await renderStack({ stack: "dev", config });

  it("has no DHCPv4 subnet in Kea, a DHCPv6 subnet and router advertisements", () => {
    const kea4 = JSON.parse(files.get("services/kea-dhcp4.json")!) as { Dhcp4: { subnet4: { interface: string }[] } };
    expect(kea4.Dhcp4.subnet4.map((s) => s.interface)).not.toContain("lan0.40");
    const kea6 = JSON.parse(files.get("services/kea-dhcp6.json")!) as { Dhcp6: { subnet6: { interface: string }[] } };
    expect(kea6.Dhcp6.subnet6.map((s) => s.interface)).toContain("lan0.40");
    expect(files.get("services/radvd.conf")).toMatch(/interface lan0\.40 \{[\s\S]*?prefix fd12:3456:789a:40::\/64/);
  });

  it("has no IPv4 prefix of it in the ruleset (no NAT44, no IPv4 anti-spoofing entry), and its IPv6 prefix", () => {
    const nft = files.get("dataplane/router.nft")!;
    expect(nft).not.toContain("10.40.0.");
    const internal6 = /set internal6 \{[^}]*elements = \{ ([^}]*) \}/.exec(nft)![1];
    expect(internal6).toContain("fd12:3456:789a:40::/64");
  });

  it("puts only its IPv6 address on its Talos VLAN link", () => {
    const talos = files.get("talos/lab-rtr1.yaml")!;
    const vlan = parseAllDocuments(talos)
      .map((d) => d.toJS() as { kind: string; name?: string; addresses?: { address: string }[] })
      .find((d) => d.kind === "VLANConfig" && d.name === "lan0.40")!;
    expect(vlan.addresses).toEqual([{ address: "fd12:3456:789a:40::1/64" }]);
  });

  it("shows it in the summary without IPv4", () => {
    const summary = files.get("SUMMARY.md")!;
    expect(summary).toMatch(/\| guest \| 40 \| lan0\.40 \| guest \| — \| — \| off \| 0 \| fd12:3456:789a:40::\/64 \|/);
  });

  it.skipIf(!t.ok)("passes every real validator (Kea, radvd, nft, chrony, Talos schema, Kubernetes)", () => {
    expect(validateArtifacts(files)).toEqual([]);
  });
});
