/**
 * Every rule of router:ids with its config path and what is allowed: each test breaks the dev site's ids key in
 * one place.
 */
import { describe, expect, it } from "vitest";
import { parseSite } from "../../components/site/parse";
import { devSiteRaw, expectIssue, expectValid, setAt, type RawSite } from "../helpers/site-fixtures";

function devWith(path: string, value: unknown): RawSite {
  const raw = setAt(devSiteRaw(), path, value);
  return raw;
}

describe("router:ids", () => {
  it("the dev site's IDS section is valid (the stack is on, with inline pairs and local rules)", () => {
    const site = expectValid(devSiteRaw());
    expect(site.ids.enabled).toBe(true);
    expect(site.ids.ips.pairs.length).toBeGreaterThan(0);
  });

  it("is off by default", () => {
    const raw = devSiteRaw();
    delete raw.ids;
    expect(expectValid(raw).ids.enabled).toBe(false);
  });

  it("rejects a watched segment that does not exist (it would watch nothing)", () => {
    expectIssue(
      parseSite(devWith("ids.segments", ["servers", "dmz"])),
      "router:ids.segments[1]",
      /names no segment "dmz" \(allowed: .*servers/,
    );
  });

  it("rejects an inline pair naming an unknown zone (no link would be queued)", () => {
    expectIssue(
      parseSite(devWith("ids.ips.pairs[0].to", "dmz")),
      "router:ids.ips.pairs[0].to",
      /names no zone "dmz" \(allowed:/,
    );
  });

  it("rejects the same pair twice", () => {
    expectIssue(
      parseSite(
        devWith("ids.ips.pairs", [
          { from: "wan", to: "servers" },
          { from: "wan", to: "servers" },
        ]),
      ),
      "router:ids.ips.pairs[1]",
      /repeats the pair wan → servers .*allowed: each zone pair once/,
    );
  });

  it("rejects a local rule without a sid and one that is not a rule (suricata would refuse the whole file)", () => {
    const raw = devWith("ids.rules.local", ['alert tcp any any -> any any (msg:"x";)', "block everything"]);
    const r = parseSite(raw);
    expectIssue(r, "router:ids.rules.local[0]", /has no sid option \(allowed: a rule with sid:N;/);
    expectIssue(r, "router:ids.rules.local[1]", /is not a Suricata rule \(allowed: ACTION PROTO/);
  });

  it("rejects two local rules with one sid (the second would replace the first)", () => {
    const rule = (sid: number) => `alert tcp any any -> any 23 (msg:"telnet"; sid:${sid}; rev:1;)`;
    expectIssue(
      parseSite(devWith("ids.rules.local", [rule(9200001), rule(9200001)])),
      "router:ids.rules.local[1]",
      /uses sid 9200001 again/,
    );
  });

  it("rejects an update interval under an hour (rule providers ask not to be polled more often)", () => {
    expectIssue(
      parseSite(devWith("ids.rules.updateInterval", "10m")),
      "router:ids.rules.updateInterval",
      /outside 1h–720h/,
    );
  });

  it("rejects a non-HTTPS rule source (rules are code the router runs)", () => {
    expectIssue(
      parseSite(devWith("ids.rules.sources", [{ name: "x", url: "http://rules.example/x.tar.gz" }])),
      "router:ids.rules.sources[0].url",
      /is not an HTTPS URL/,
    );
  });

  it("rejects blocking without the XDP guard (there would be nowhere to block)", () => {
    const raw = devWith("dataplane.enabled", false);
    expectIssue(
      parseSite(raw),
      "router:ids.block.enabled",
      /router:dataplane.enabled switches off \(allowed: block.enabled: false/,
    );
  });

  it("rejects Zeek without an image pinned by digest (its upstream image is not built here)", () => {
    expectIssue(
      parseSite(devWith("ids.zeek", { enabled: true, image: "docker.io/zeek/zeek:7.0.5" })),
      "router:ids.zeek.image",
      /pinned by digest/,
    );
  });

  it("rejects a block duration outside 10 s – 30 days", () => {
    expectIssue(parseSite(devWith("ids.block.duration", "5s")), "router:ids.block.duration", /outside 10s–720h/);
  });
});
