/**
 * Every DNS artifact of the dev site, checked by the program that will read it (test/dns/lib/validators.ts), and
 * the checkers shown to refuse broken files, so that passing means something.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { renderStack } from "../../cli/render";
import { buildStats, dnsCheck, dnsValidatorsTier } from "./lib/validators";

const t = dnsValidatorsTier();

describe.skipIf(!t.ok)("the dev site's DNS artifacts", () => {
  let files: Map<string, string>;
  beforeAll(async () => {
    buildStats();
    files = (await renderStack({ stack: "dev" })).files;
  }, 120_000);

  it("are all rendered and pass their programs' checks", async () => {
    const dns = [...files.keys()].filter((p) => p.startsWith("dns/"));
    expect(dns).toEqual(
      expect.arrayContaining([
        "dns/dnsdist.conf",
        "dns/unbound.conf",
        "dns/knot.conf",
        "dns/lab.home.arpa.zone",
        "dns/0.20.10.in-addr.arpa.zone",
        "dns/kea-dhcp-ddns.json",
        "dns/stats.conf",
        "dns/feeds.conf",
      ]),
    );
    expect(await dnsCheck(files)).toEqual([]);
  }, 60_000);

  it.each([
    ["dns/unbound.conf", (s: string) => s.replace("prefetch: yes", "prefetch: sometimes"), "unbound-checkconf"],
    ["dns/knot.conf", (s: string) => s.replace("acl: ddns", "acl: nobody"), "knotc conf-check"],
    ["dns/lab.home.arpa.zone", (s: string) => `${s}printer.trusted 300 IN A 10.20.0.300\n`, "knotc zone-check"],
    [
      "dns/kea-dhcp-ddns.json",
      (s: string) => s.replace('"key-name": "router-ddns"', '"key-name": "other"'),
      "kea-dhcp-ddns -t",
    ],
    ["dns/dnsdist.conf", (s: string) => `${s}addAction(NoSuchRule(), DropAction())\n`, "dnsdist --check-config"],
    ["dns/stats.conf", (s: string) => `${s}zone mgmt log\n`, "router-dns-stats --check"],
    ["dns/feeds.conf", (s: string) => `${s}feed plain http://example.com/list 3600 1\n`, "dns-feeds --check"],
  ])(
    "refuse a broken %s",
    async (path, breakIt, checker) => {
      const broken = new Map(files);
      broken.set(path, breakIt(files.get(path)!));
      const problems = await dnsCheck(broken);
      // The checker of that file refuses it (knot's zone check also stops at a broken configuration).
      expect(problems.map((p) => p.split(":")[0])).toContain(checker);
    },
    60_000,
  );
});
