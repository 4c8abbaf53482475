/** The data-plane loader's configuration as rendered from the site, and its place in the machine config. */
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { renderLoaderConfig, CONFIG_PATH } from "../../components/dataplane/loader-config";
import { renderDataplaneHost } from "../../components/dataplane/host";
import { mergeContributions } from "../../components/talos-node/documents";
import { devSite, type Raw } from "../helpers/dev-site";

function sections(conf: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let cur = "";
  for (const line of conf.split("\n")) {
    const m = /^\[(.+)\]$/.exec(line);
    if (m) out.set((cur = m[1]), []);
    else if (cur && line && !line.startsWith("#")) out.get(cur)!.push(line);
  }
  return out;
}

describe("the loader configuration", () => {
  const { site, plan } = devSite();
  const files = renderLoaderConfig(site, plan, { nftRuleset: "table inet router {}\n" }).files;
  const s = sections(files.get(CONFIG_PATH)!);

  it("serves metrics on the management address only, names the ruleset, and starts fail-closed", () => {
    expect(s.get("global")).toEqual([
      "pin_root = /sys/fs/bpf/router-dataplane",
      "metrics_address = 10.10.0.1",
      "metrics_port = 9430",
      "state_dir = /var/lib/router-dataplane",
      "nft_ruleset = /usr/local/etc/router-dataplane/router.nft",
      // forwarding comes on only through the loader, once its ruleset is in (where the machine boots with it off)
      "enable_forwarding = true",
      // the fallback ruleset's management path: the mgmt zone's link, Talos API, trustd, Kubernetes API, metrics
      "management_links = lan0.10",
      "management_ports = 6443, 9430, 50000, 50001",
      // the dev site runs no OSPF: the routes a routing pod of ours left behind are removed
      "stale_route_protocols = 12, 188, 249",
      expect.stringMatching(/^generation = [0-9a-f]{64}$/),
    ]);
  });

  it("lists the protocols of the bird pod's routes as stale without OSPF, and none while the site runs OSPF", () => {
    // what images/services/bird-start treats as a routing pod's own: the protocols it holds through a restart (by
    // name, as `ip route` knows them from iproute2's rt_protos) and the protocol it holds them as
    const start = readFileSync(join(__dirname, "../../images/services/bird-start"), "utf8");
    const names = [...start.matchAll(/^hold (\w+)$/gm)].map((m) => m[1]);
    const protos = new Map(
      readFileSync("/etc/iproute2/rt_protos", "utf8")
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => /^\d+$/.test(f[0]))
        .map((f) => [f[1], Number(f[0])]),
    );
    const stale = Number(/^STALE=(\d+)$/m.exec(start)![1]);
    expect(names).toEqual(["bird", "ospf"]);
    const expected = [...names.map((n) => protos.get(n)!), stale].sort((a, b) => a - b);
    expect(s.get("global")).toContain(`stale_route_protocols = ${expected.join(", ")}`);

    const withOspf = devSite((raw) => {
      raw.routing = { ospf: { routerId: "10.10.0.1", segments: ["servers"] } };
    });
    const conf = renderLoaderConfig(withOspf.site, withOspf.plan).files.get(CONFIG_PATH)!;
    expect(conf).not.toMatch(/stale_route_protocols/);
  });

  it("names the links of every management zone as management links (a second one would be cut off otherwise)", () => {
    const two = devSite((raw) => {
      raw.zones.find((z: { name: string }) => z.name === "servers").management = true;
    });
    const g = sections(renderLoaderConfig(two.site, two.plan).files.get(CONFIG_PATH)!).get("global")!;
    expect(g).toContain("management_links = lan0.10, lan0.50");
  });

  it("identifies the rendering by a generation: SHA-256 over every file as mounted, its own line left out", () => {
    const r = renderLoaderConfig(site, plan, { nftRuleset: "table inet router {}\n" });
    // recomputed here from the documented recipe, not with the renderer's function
    const h = createHash("sha256");
    for (const [path, content] of r.files) {
      const text =
        path === CONFIG_PATH
          ? content
              .split("\n")
              .filter((l) => !l.startsWith("generation = "))
              .join("\n")
          : content;
      h.update(`${path}\0${text}\0`);
    }
    const gen = h.digest("hex");
    expect(r.generation).toBe(gen);
    expect(r.files.get(CONFIG_PATH)).toContain(`\ngeneration = ${gen}\n`);
    // the same site renders the same generation; a changed ruleset or table renders another
    expect(renderLoaderConfig(site, plan, { nftRuleset: "table inet router {}\n" }).generation).toBe(gen);
    expect(renderLoaderConfig(site, plan, { nftRuleset: "table inet router { }\n" }).generation).not.toBe(gen);
    const more = devSite((raw) => raw.dataplane.blocklist.push("203.0.113.0/24"));
    expect(renderLoaderConfig(more.site, more.plan, { nftRuleset: "table inet router {}\n" }).generation).not.toBe(gen);
  });

  it("passes the site's XDP mode to every WAN interface", () => {
    const strict = devSite((raw) => (raw.dataplane.xdpMode = "native-only"));
    const c = sections(renderLoaderConfig(strict.site, strict.plan).files.get(CONFIG_PATH)!);
    expect(c.get("interface wan0")).toEqual(["role = wan", "xdp_mode = native-only"]);
    expect(c.get("interface wan1")).toEqual(["role = wan", "xdp_mode = native-only"]);
  });

  it("puts the XDP guard on every WAN and accounting (with the segment's QoS) on every segment link", () => {
    expect(s.get("interface wan0")).toEqual(["role = wan", "xdp_mode = native"]);
    expect(s.get("interface wan1")).toEqual(["role = wan", "xdp_mode = native"]);
    expect(s.get("interface lan0.10")).toEqual(["role = segment", "segment = mgmt", "segment_id = 10"]);
    expect(s.get("interface lan0.20")).toEqual([
      "role = segment",
      "segment = trusted",
      "segment_id = 20",
      "qos_default_priority = 0",
      "qos_dscp_priority = 34:4",
      "qos_dscp_priority = 46:6",
      "qos_trust_pcp = false",
    ]);
    expect(s.get("interface lan0.40")).toContain("qos_rewrite_dscp = 8");
  });

  it("describes each WAN's failover: priority, mark, table and probes", () => {
    expect(s.get("wan wan0")).toEqual([
      "priority = 10",
      "mark = 0x10",
      "table = 101",
      "probe = 1.1.1.1",
      "probe = 9.9.9.9",
      "probe_interval = 2s",
      "probe_timeout = 1s",
      "down_after = 3",
      "up_after = 2",
    ]);
    expect(s.get("wan wan1")?.slice(0, 3)).toEqual(["priority = 20", "mark = 0x20", "table = 102"]);
  });

  it("turns on the blocklist with the site's entries and feeds, and geo only with a geo feed", () => {
    expect(s.get("features")).toEqual([
      "bogons_ipv4 = true",
      "bogons_ipv6 = true",
      "blocklist = true",
      "geoip = false",
      "ratelimit = true",
    ]);
    expect(files.get("/usr/local/etc/router-dataplane/tables/block.txt")).toMatch(
      /^# blocklist: 3 prefixes.*\n45\.155\.205\.0\/24\n185\.220\.101\.0\/24\n2a0e:fd45:2a0c::\/48\n$/,
    );
    expect(s.get("feed spamhaus-drop")).toEqual([
      "url = https://www.spamhaus.org/drop/drop.txt",
      "kind = block",
      "refresh = 12h",
    ]);
    const geo = devSite((raw) => {
      raw.dataplane.blockCountries = ["KP", "RU"];
      raw.dataplane.feeds.push({ name: "geo", url: "https://geo.example/cidr-cc.txt", kind: "geo" });
    });
    const g = sections(renderLoaderConfig(geo.site, geo.plan).files.get(CONFIG_PATH)!);
    expect(g.get("features")).toContain("geoip = true");
    expect(g.get("tables")).toContain("block_countries = KP,RU");
  });

  it("leaves the WAN unguarded only when the site turns the data plane off", () => {
    const off = devSite((raw) => {
      raw.dataplane.enabled = false;
      // the IDS's XDP blocking needs the data plane: a site without it turns blocking off too (validated)
      raw.ids.block = { ...raw.ids.block, enabled: false };
    });
    const c = sections(renderLoaderConfig(off.site, off.plan).files.get(CONFIG_PATH)!);
    expect(c.has("interface wan0")).toBe(false);
    expect(c.has("interface lan0.10")).toBe(true);
  });

  it("travels in the machine configuration as the extension service's config files", () => {
    const host = renderDataplaneHost(site, plan, { nftRuleset: "table inet router {}\n" });
    const doc = mergeContributions(host).documents.find((d) => d.kind === "ExtensionServiceConfig")!;
    expect(doc).toMatchObject({ kind: "ExtensionServiceConfig", name: "router-dataplane" });
    expect((doc.configFiles as { mountPath: string }[]).map((f) => f.mountPath)).toEqual([
      "/usr/local/etc/router-dataplane/dataplane.conf",
      "/usr/local/etc/router-dataplane/tables/block.txt",
      "/usr/local/etc/router-dataplane/tables/ids-protected.txt",
      "/usr/local/etc/router-dataplane/router.nft",
    ]);
  });

  it("takes IDS block requests from the block agent's uid, with the site's duration, size and never-block list", () => {
    const s2 = devSite((raw) => {
      raw["ids"].block = { ...raw["ids"].block, duration: "15m", maxEntries: 4096, never: ["198.51.100.7/32"] };
    });
    const r = renderLoaderConfig(s2.site, s2.plan).files;
    expect(sections(r.get(CONFIG_PATH)!).get("dynamic_block")).toEqual([
      "socket = /var/lib/router-dataplane/ids/block.sock",
      "agent_uid = 64100",
      "duration = 900s",
      "max_entries = 4096",
      "protect = /usr/local/etc/router-dataplane/tables/ids-protected.txt",
    ]);
    const never = r.get("/usr/local/etc/router-dataplane/tables/ids-protected.txt")!.split("\n");
    // the site's own list, the management zone, the resolvers
    expect(never).toEqual(expect.arrayContaining(["198.51.100.7/32", "10.10.0.0/24", "1.1.1.1/32"]));
  });

  it("has no [dynamic_block] when alerts block nothing (blocking or the IDS off)", () => {
    for (const edit of [
      (raw: Raw) => (raw["ids"].block = { ...raw["ids"].block, enabled: false }),
      (raw: Raw) => (raw["ids"] = { ...raw["ids"], enabled: false }),
    ]) {
      const d = devSite(edit);
      const r = renderLoaderConfig(d.site, d.plan).files;
      expect(sections(r.get(CONFIG_PATH)!).has("dynamic_block")).toBe(false);
      expect([...r.keys()].some((k) => k.endsWith("ids-protected.txt"))).toBe(false);
    }
  });
});
