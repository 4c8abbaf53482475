/**
 * One test per rule of router:dns: each breaks the dev site's DNS section in one place and asserts the exact
 * config path of the problem and the key words of its message (which must also say what is allowed).
 */
import { describe, expect, it } from "vitest";
import { parseSite } from "../../components/site/parse";
import {
  devSiteRaw,
  edited,
  expectRejected,
  expectValid,
  getAt,
  indexOf,
  setAt,
  type RawSite,
} from "../helpers/site-fixtures";

type DnsRaw = {
  upstreams: Record<string, unknown>[];
  records: Record<string, unknown>[];
  lists: Record<string, unknown>[];
  profiles: Record<string, unknown>[];
  zones: Record<string, unknown>[];
  [k: string]: unknown;
};

function withDns(edit: (dns: DnsRaw, raw: RawSite) => void): RawSite {
  return edited(devSiteRaw(), (s) => edit(s.dns as unknown as DnsRaw, s as unknown as RawSite));
}

const dev = devSiteRaw();
const byName = (list: string, name: string, key = "name") =>
  (getAt(dev, `dns.${list}`) as Record<string, unknown>[]).findIndex((x) => x[key] === name);
const GUEST = byName("zones", "guest", "zone");
const ADS = byName("lists", "ads");
const STRICT = byName("profiles", "strict");

describe("the dev site's DNS section", () => {
  it("is valid and uses every feature the rules below break", () => {
    const site = expectValid(devSiteRaw());
    expect(site.dns.records.map((r) => r.type).sort()).toEqual(["A", "CNAME", "CNAME", "SRV", "TXT"]);
    expect(site.dns.profiles.some((p) => p.allowOnly)).toBe(true);
    expect(site.dns.zones.some((z) => z.force === "redirect")).toBe(true);
    expect(site.dns.lists.some((l) => l.url)).toBe(true);
    expect(GUEST).toBeGreaterThanOrEqual(0);
  });
});

describe("per-zone DNS settings", () => {
  it("rejects an unknown zone given a profile and names the zones that have DNS: the setting would apply to nobody", () => {
    expectRejected(
      setAt(devSiteRaw(), `dns.zones[${GUEST}].zone`, "guests"),
      `router:dns.zones[${GUEST}].zone`,
      /unknown zone "guests" \(allowed: a zone with the dns service: mgmt, trusted, iot, guest, servers\)/,
    );
  });

  it("rejects settings for a zone without the dns service: its clients are told no resolver and the firewall closes 53", () => {
    const raw = edited(devSiteRaw(), (s) => {
      s.zones[indexOf(dev, "zones", "guest")].services = ["dhcp"];
    });
    expectRejected(
      raw,
      `router:dns.zones[${GUEST}].zone`,
      /zone "guest" does not have the dns service \(router:zones\[\d\]\.services\)/,
    );
  });

  it("rejects a WAN zone: the router never answers DNS to the internet", () => {
    expectRejected(
      setAt(devSiteRaw(), `dns.zones[${GUEST}].zone`, "wan"),
      `router:dns.zones[${GUEST}].zone`,
      /zone "wan" is a WAN zone/,
    );
  });

  it("rejects a zone set twice: which profile applies would depend on the order", () => {
    const raw = withDns((dns) => dns.zones.push({ zone: "guest", profile: "standard" }));
    expectRejected(raw, `router:dns.zones[5].zone`, `zone "guest" is already set at zones[${GUEST}]`);
  });

  it("rejects an unknown profile and lists the defined ones: the zone would silently go unfiltered", () => {
    expectRejected(
      setAt(devSiteRaw(), `dns.zones[${GUEST}].profile`, "stricter"),
      `router:dns.zones[${GUEST}].profile`,
      'unknown profile "stricter" (allowed: standard, strict, iot)',
    );
  });

  it("rejects an unknown forcing mode", () => {
    expectRejected(
      setAt(devSiteRaw(), `dns.zones[${GUEST}].force`, "block"),
      `router:dns.zones[${GUEST}].force`,
      "is not a mode (allowed: off, redirect, reject)",
    );
  });
});

describe("records", () => {
  it("rejects a record outside the site's domain: the router is not authoritative there and would shadow the real name", () => {
    const raw = withDns((dns) => dns.records.push({ name: "nas.example.com", type: "A", address: "10.50.0.10" }));
    expectRejected(raw, "router:dns.records[5].name", /nas\.example\.com is outside the site's domain lab\.home\.arpa/);
  });

  it("rejects a name that only ends like the site's domain: xlab.home.arpa is another domain", () => {
    const raw = withDns((dns) => dns.records.push({ name: "nas.xlab.home.arpa", type: "A", address: "10.50.0.10" }));
    expectRejected(raw, "router:dns.records[5].name", "is outside the site's domain");
  });

  it("rejects a CNAME beside other data: resolvers would answer either and ignore the rest (RFC 1034 §3.6.2)", () => {
    const raw = withDns((dns) => dns.records.push({ name: "files.lab.home.arpa", type: "TXT", text: "shared" }));
    expectRejected(
      raw,
      "router:dns.records[5]",
      /files\.lab\.home\.arpa has a CNAME \(records\[1\]\), so it can hold no other data/,
    );
  });

  it("rejects two CNAMEs for one name: only one can be served", () => {
    const raw = withDns((dns) =>
      dns.records.push({ name: "files.lab.home.arpa", type: "CNAME", target: "nas.servers.lab.home.arpa" }),
    );
    expectRejected(raw, "router:dns.records[5]", "a second CNAME for records[1]");
  });

  it("rejects a CNAME at the apex: it would sit beside the zone's SOA and NS", () => {
    const raw = withDns((dns) => dns.records.push({ name: "lab.home.arpa", type: "CNAME", target: "example.com" }));
    expectRejected(raw, "router:dns.records[5].name", "a CNAME at the zone's apex");
  });

  it("rejects an address record on a reservation's name: the reserved client would get two addresses", () => {
    const raw = withDns((dns) =>
      dns.records.push({ name: "nas.servers.lab.home.arpa", type: "A", address: "10.50.0.99" }),
    );
    expectRejected(raw, "router:dns.records[5].name", "is reservation nas of servers");
  });

  it("rejects a CNAME on the router's own name in a segment", () => {
    const raw = withDns((dns) =>
      dns.records.push({ name: "lab-rtr1.trusted.lab.home.arpa", type: "CNAME", target: "example.com" }),
    );
    expectRejected(raw, "router:dns.records[5].name", "is the router's name in segment trusted");
  });

  it.each([
    [0, "is below 1"],
    [604_801, "is above 604800"],
    [1.5, "is not an integer"],
    ["300", "expected a number, got the string"],
  ])("rejects the TTL %s: out of range or not a number of seconds", (ttl, message) => {
    const raw = withDns((dns) => (dns.records[0].ttl = ttl));
    expectRejected(raw, "router:dns.records[0].ttl", message);
  });

  it("rejects a site-wide TTL out of range", () => {
    expectRejected(setAt(devSiteRaw(), "dns.ttl", 10_000_000), "router:dns.ttl", "is above 604800");
  });

  it("rejects an SRV record whose name does not name a service: clients look up _service._proto names only", () => {
    const raw = withDns((dns) =>
      dns.records.push({
        name: "ipp.lab.home.arpa",
        type: "SRV",
        priority: 0,
        weight: 0,
        port: 631,
        target: "x.lab.home.arpa",
      }),
    );
    expectRejected(raw, "router:dns.records[5].name", "does not name a service (allowed: _service._proto.name");
  });

  it("rejects a record type the router does not serve and names the served ones", () => {
    const raw = withDns((dns) => dns.records.push({ name: "mx.lab.home.arpa", type: "MX", target: "x.lab.home.arpa" }));
    expectRejected(raw, "router:dns.records[5].type", /allowed/);
  });

  it("rejects an AAAA record holding an IPv4 address", () => {
    const raw = withDns((dns) => dns.records.push({ name: "nas6.lab.home.arpa", type: "AAAA", address: "10.50.0.10" }));
    expectRejected(raw, "router:dns.records[5].address", "is not an IPv6 address");
  });

  it("rejects TXT text that is not printable ASCII: zone files would need escapes nobody reviews", () => {
    const raw = withDns((dns) => dns.records.push({ name: "t.lab.home.arpa", type: "TXT", text: "a\nb" }));
    expectRejected(raw, "router:dns.records[5].text", "is not printable ASCII");
  });
});

describe("lists and profiles", () => {
  it.each([
    ["http://example.com/list.txt", "plain HTTP could be tampered with on the way"],
    ["https://user:secret@example.com/list.txt", "credentials would end up in rendered files"],
    ["https:// example.com/list", "a space"],
    ["ftp.example.com/list", "no scheme"],
  ])("rejects the feed URL %s (%s)", (url) => {
    expectRejected(
      setAt(devSiteRaw(), `dns.lists[${ADS}].url`, url),
      `router:dns.lists[${ADS}].url`,
      /is not a feed URL the router can fetch \(allowed: https:\/\/host\/path, without credentials or spaces/,
    );
  });

  it("rejects a list with neither entries nor a url: a profile using it would block nothing", () => {
    const raw = withDns((dns) => dns.lists.push({ name: "empty", kind: "block" }));
    expectRejected(raw, "router:dns.lists[5]", "has neither entries nor a url");
  });

  it("rejects a wildcard entry: a name covers the names below it already", () => {
    const raw = withDns((dns) => dns.lists.push({ name: "wild", kind: "block", entries: ["*.ads.example"] }));
    expectRejected(raw, "router:dns.lists[5].entries[0]", "is not a domain name");
  });

  it("rejects a refresh faster than five minutes: the list's server would be hammered", () => {
    expectRejected(
      setAt(devSiteRaw(), `dns.lists[${ADS}].refresh`, "1m"),
      `router:dns.lists[${ADS}].refresh`,
      "allowed: 5m to 168h",
    );
  });

  it("rejects two lists with one name: their files on the router would collide", () => {
    const raw = withDns((dns) => dns.lists.push({ name: "ads", kind: "block", entries: ["x.example"] }));
    expectRejected(raw, "router:dns.lists[5].name", `duplicate list "ads" (also at lists[${ADS}]`);
  });

  it("rejects a profile naming an unknown list and lists those of the right kind", () => {
    const raw = withDns((dns) => (dns.profiles[STRICT].block as string[]).push("adz"));
    expectRejected(
      raw,
      `router:dns.profiles[${STRICT}].block[3]`,
      'unknown list "adz" (allowed: ads, malware, guest-extra)',
    );
  });

  it("rejects an allow list used as a block list: its names would be blocked instead of let through", () => {
    const raw = withDns((dns) => (dns.profiles[STRICT].block as string[]).push("work"));
    expectRejected(raw, `router:dns.profiles[${STRICT}].block[3]`, '"work" is a list of kind allow');
  });

  it("rejects allowOnly without an allow list: every name outside the site would be blocked", () => {
    const raw = withDns((dns) => dns.profiles.push({ name: "nothing", allowOnly: true }));
    expectRejected(
      raw,
      "router:dns.profiles[3].allowOnly",
      "with no allow list, every name outside the site would be blocked",
    );
  });

  it("rejects two profiles with one name", () => {
    const raw = withDns((dns) => dns.profiles.push({ name: "strict" }));
    expectRejected(raw, "router:dns.profiles[3].name", `duplicate profile "strict" (also at profiles[${STRICT}]`);
  });

  it("rejects an unknown blocked answer", () => {
    expectRejected(
      setAt(devSiteRaw(), `dns.profiles[${STRICT}].blockedAnswer`, "refused"),
      `router:dns.profiles[${STRICT}].blockedAnswer`,
      "is not a blocked answer (allowed: nxdomain, null)",
    );
  });
});

describe("upstreams and the resolver", () => {
  it("rejects a DoH upstream while forwarding: the resolver forwards over Do53 or DoT only", () => {
    expectRejected(
      setAt(devSiteRaw(), "dns.upstreams[1].protocol", "DoH"),
      "router:dns.upstreams[1].protocol",
      "DoH cannot carry",
    );
  });

  it("accepts a DoH upstream for the node when the resolver recurses itself", () => {
    const raw = setAt(setAt(devSiteRaw(), "dns.upstreams[1].protocol", "DoH"), "dns.forward", false);
    expect(parseSite(raw).ok).toBe(true);
  });

  it("rejects a DoT upstream without a server name: its certificate could not be checked", () => {
    const raw = withDns((dns) => delete dns.upstreams[0].tlsServerName);
    expectRejected(raw, "router:dns.upstreams[0].tlsServerName", "is missing for a DoT upstream");
  });

  it("rejects a malformed trust anchor", () => {
    expectRejected(
      setAt(devSiteRaw(), "dns.trustAnchors", ["example.net DNSKEY 257 3 13 abc"]),
      "router:dns.trustAnchors[0]",
      "is not a DS record",
    );
  });

  it("rejects a metrics port that the data plane uses already", () => {
    expectRejected(
      setAt(devSiteRaw(), "dns.metricsPort", 9430),
      "router:dns.metricsPort",
      "is the data plane's metrics port",
    );
  });
});
