/**
 * The DNS plan and what the network services advertise: reverse names and zones against a second, simpler
 * computation written here; the site's static records and pointers; the resolver's upstream choice; the
 * rebinding ranges; TXT strings; and that only zones the router answers DNS in are told it is their resolver
 * (DHCPv4, DHCPv6, RA) and get dynamic names.
 */
import { describe, expect, it } from "vitest";
import { planDns, reverseName, reverseZones, txtData } from "../../components/dns-stack/plan";
import { renderKea4, renderKea6, renderRadvd } from "../../components/network-services/config";
import { devSite, type Raw } from "../helpers/dev-site";
import { radvdCheck, validatorsTier } from "../helpers/validators";

/** IPv6 address → 32 hex digits, by string surgery (independent of components/site/ip.ts). */
function hex32(a: string): string {
  const [head, tail = ""] = a.split("::");
  const h = head ? head.split(":") : [];
  const t = a.includes("::") && tail ? tail.split(":") : [];
  const groups = a.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  return groups.map((g) => g.padStart(4, "0")).join("");
}

function oracleReverse(a: string): string {
  if (a.includes(".")) return `${a.split(".").reverse().join(".")}.in-addr.arpa`;
  return `${hex32(a).split("").reverse().join(".")}.ip6.arpa`;
}

describe("reverse names", () => {
  it.each(["10.20.0.1", "192.0.2.255", "0.0.0.0", "fd12:3456:789a:20::10", "2001:db8::1", "::1", "fe80::1:2"])(
    "of %s match the independent computation",
    (a) => {
      expect(reverseName(a)).toBe(oracleReverse(a));
    },
  );

  it.each([
    ["10.20.0.0/24", ["0.20.10.in-addr.arpa"]],
    ["10.30.0.0/23", ["0.30.10.in-addr.arpa", "1.30.10.in-addr.arpa"]],
    ["10.40.0.64/26", ["0.40.10.in-addr.arpa"]],
    ["172.16.0.0/16", ["16.172.in-addr.arpa"]],
    ["172.16.0.0/15", ["16.172.in-addr.arpa", "17.172.in-addr.arpa"]],
    ["10.0.0.0/8", ["10.in-addr.arpa"]],
    ["fd12:3456:789a:20::/64", ["0.2.0.0.a.9.8.7.6.5.4.3.2.1.d.f.ip6.arpa"]],
  ])("of the prefix %s are exactly the zones covering it", (cidr, zones) => {
    expect(reverseZones(cidr)).toEqual(zones);
    // Every address of the prefix has its pointer in one of them.
    if (cidr.includes(".")) {
      const first = cidr.split("/")[0];
      expect(zones.some((z) => oracleReverse(first).endsWith(`.${z}`))).toBe(true);
    }
  });
});

describe("the dev site's DNS plan", () => {
  const { site, plan, policy } = devSite();
  const dns = planDns(site, plan, policy);
  const forward = dns.authZones[0];

  it("serves every LAN zone on its segments' gateways, and knows each zone's settings", () => {
    expect(dns.zones.map((z) => z.name)).toEqual(["mgmt", "trusted", "iot", "guest", "servers"]);
    const guest = dns.zones.find((z) => z.name === "guest")!;
    expect(guest).toMatchObject({
      listen: ["10.40.0.1", "fd12:3456:789a:40::1"],
      profile: "strict",
      force: "redirect",
    });
    expect(guest.queryLog).toBe(false);
  });

  it("publishes the router, the reservations and the site's records, with a pointer for each address", () => {
    const has = (name: string, type: string, data: string) =>
      forward.records.some((r) => r.name === name && r.type === type && r.data === data);
    expect(has("lab-rtr1.trusted.lab.home.arpa", "A", "10.20.0.1")).toBe(true);
    expect(has("nas.servers.lab.home.arpa", "AAAA", "fd12:3456:789a:50::10")).toBe(true);
    expect(has("files.lab.home.arpa", "CNAME", "nas.servers.lab.home.arpa.")).toBe(true);
    const ptrs = dns.authZones.flatMap((z) => z.records.filter((r) => r.type === "PTR"));
    for (const r of forward.records.filter((x) => x.type === "A" || x.type === "AAAA")) {
      if (r.name === plan.fqdn) continue; // the apex name shares the management gateway; its PTR is the segment's
      expect(
        ptrs.some((p) => p.name === oracleReverse(r.data)),
        `pointer of ${r.name} ${r.data}`,
      ).toBe(true);
    }
    expect(ptrs.find((p) => p.name === oracleReverse("10.10.0.1"))?.data).toBe("lab-rtr1.mgmt.lab.home.arpa.");
  });

  it("forwards over DoT only, to every DoT upstream with its certificate name", () => {
    expect(dns.forwarders).toEqual([
      { address: "1.1.1.1", port: 853, tlsName: "cloudflare-dns.com" },
      { address: "9.9.9.9", port: 853, tlsName: "dns.quad9.net" },
      { address: "2606:4700:4700::1111", port: 853, tlsName: "cloudflare-dns.com" },
    ]);
  });
});

describe("the resolver's upstreams", () => {
  it("never mixes plain DNS with DoT: a Do53 upstream beside a DoT one is not forwarded to", () => {
    const { site, plan, policy } = devSite((raw) => raw.dns.upstreams.push({ address: "8.8.8.8" }));
    expect(planDns(site, plan, policy).forwarders.map((f) => f.address)).not.toContain("8.8.8.8");
  });

  it("forwards plain DNS when no upstream speaks DoT", () => {
    const { site, plan, policy } = devSite((raw) => (raw.dns.upstreams = [{ address: "8.8.8.8" }]));
    expect(planDns(site, plan, policy).forwarders).toEqual([{ address: "8.8.8.8", port: 53 }]);
  });

  it("has no forwarders when the site recurses itself", () => {
    const { site, plan, policy } = devSite((raw) => (raw.dns.forward = false));
    expect(planDns(site, plan, policy).forwarders).toEqual([]);
  });
});

describe("rebinding protection", () => {
  it("also covers the site's own public prefixes and the cluster's networks", () => {
    const { site, plan, policy } = devSite(
      (raw) => (raw.segments.find((s: Raw) => s.name === "guest").ipv6.prefix = "2001:db8:40::/64"),
    );
    const ranges = planDns(site, plan, policy).privateAddresses;
    expect(ranges).toContain("2001:db8:40::/64");
    expect(ranges).toContain("fc00::/7");
    expect(ranges).not.toContain("10.20.0.0/24"); // inside 10.0.0.0/8 already
  });
});

describe("TXT data", () => {
  it("is quoted with quotes and backslashes escaped, and split into strings of 255 characters", () => {
    expect(txtData('say "hi" \\ bye')).toBe('"say \\"hi\\" \\\\ bye"');
    const long = "a".repeat(300);
    expect(txtData(long)).toBe(`"${"a".repeat(255)}" "${"a".repeat(45)}"`);
  });
});

describe("what the router advertises as resolver", () => {
  const noDnsForGuest = (raw: Raw) => {
    raw.zones.find((z: Raw) => z.name === "guest").services = ["dhcp"];
    raw.dns.zones = raw.dns.zones.filter((z: Raw) => z.zone !== "guest");
  };

  it("is the router in zones it answers DNS in, and nothing in a zone without dns", () => {
    const { site, plan, policy } = devSite(noDnsForGuest);
    const kea4 = JSON.parse(renderKea4(site, plan, policy)).Dhcp4;
    const options = (id: number) =>
      (kea4.subnet4.find((s: Raw) => s.id === id)["option-data"] as Raw[]).map((o) => o.name);
    expect(options(20)).toContain("domain-name-servers");
    expect(options(40)).not.toContain("domain-name-servers");
    const radvd = renderRadvd(site, plan)!;
    const block = (link: string) => radvd.split("interface ").find((b) => b.startsWith(link))!;
    expect(block("lan0.20")).toMatch(/RDNSS fd12:3456:789a:20::1 \{/);
    expect(block("lan0.40")).not.toMatch(/RDNSS/);
  });

  it("is what the site names even in a zone without dns (an explicit choice is kept)", () => {
    const { site, plan, policy } = devSite((raw) => {
      noDnsForGuest(raw);
      raw.segments.find((s: Raw) => s.name === "guest").dhcp.dnsServers = ["9.9.9.9"];
    });
    const kea4 = JSON.parse(renderKea4(site, plan, policy)).Dhcp4;
    const guest = kea4.subnet4.find((s: Raw) => s.id === 40)["option-data"] as Raw[];
    expect(guest.find((o) => o.name === "domain-name-servers")?.data).toBe("9.9.9.9");
  });

  it("leaves DHCPv6 without a DNS server in a zone without dns", () => {
    const { site, plan, policy } = devSite((raw) => {
      raw.zones.find((z: Raw) => z.name === "servers").services = ["dhcp"];
      raw.dns.zones = raw.dns.zones.filter((z: Raw) => z.zone !== "servers");
    });
    const kea6 = JSON.parse(renderKea6(site, plan)).Dhcp6;
    const opts = (id: number) =>
      (kea6.subnet6.find((s: Raw) => s.id === id)["option-data"] as Raw[]).map((o) => o.name);
    expect(opts(20)).toContain("dns-servers");
    expect(opts(50)).not.toContain("dns-servers");
    void policy;
  });

  it.skipIf(!validatorsTier().ok)("renders a radvd.conf radvd accepts when a segment has no RDNSS", () => {
    const { site, plan } = devSite(noDnsForGuest);
    expect(radvdCheck(renderRadvd(site, plan)!)).toEqual([]);
  });

  it("gives dynamic names only to clients of zones that have DNS, and none when no zone has it", () => {
    const { site, plan, policy } = devSite(noDnsForGuest);
    const kea4 = JSON.parse(renderKea4(site, plan, policy)).Dhcp4;
    expect(kea4["dhcp-ddns"]["enable-updates"]).toBe(true);
    const subnet = (id: number) => kea4.subnet4.find((s: Raw) => s.id === id);
    expect(subnet(20)).toMatchObject({ "ddns-send-updates": true, "ddns-qualifying-suffix": "trusted.lab.home.arpa." });
    expect(subnet(40)["ddns-send-updates"]).toBe(false);
    const none = devSite((raw) => {
      for (const z of raw.zones) if (z.name !== "wan") z.services = ["dhcp"];
      raw.dns.zones = [];
    });
    const bare = JSON.parse(renderKea4(none.site, none.plan, none.policy)).Dhcp4;
    expect(bare["dhcp-ddns"]).toBeUndefined();
    expect(bare.subnet4.every((s: Raw) => s["ddns-send-updates"] === undefined)).toBe(true);
    expect(planDns(none.site, none.plan, none.policy).zones).toEqual([]);
  });
});
