/**
 * The DNS stack's place on the appliance, apart from its tests (so that benchmarks run it as the e2e does): the
 * pods the appliance runs for it and the test internet's DNS it resolves through. The internet host already serves
 * ports 53 and 853 (the policy matrix's probes), so its DNS (test/dns/lib/internet.ts: our signed root answering
 * every name, a signed and a broken-signature zone, a DoT resolver on the site's upstream addresses with a
 * certificate of a test CA for their names) listens on ports of its own and a DNAT there takes the router's
 * queries to the upstreams to it. The router trusts our root's key and the test CA, as its image trusts the real
 * ones; the lists the feeds job would fetch from the site's URLs (which the appliance's internet does not serve)
 * are written where the job leaves them, and the job does not run.
 */
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { PATHS } from "../../../../components/dns-stack/plan";
import { DNS_SECRET } from "../../../../components/dns-stack/k8s";
import { familyOf } from "../../../../components/site/ip";
import { EXTRA_PATH } from "../../../dns/lib/bed";
import { buildStats, writeListDb, writeTestSecrets } from "../../../dns/lib/fixtures";
import { buildInternetDns, type InternetDnsAddresses } from "../../../dns/lib/internet";
import { waitFor } from "../../../helpers/wait";
import type { Appliance } from "../appliance";

/** The test internet's DNS on the appliance's internet host (public-looking: the XDP guard drops bogons). */
export const NET: Omit<InternetDnsAddresses, "resolver4"> = {
  authoritative4: "193.0.14.129",
  resolverName: "resolver.example",
  plain4: "93.184.215.80",
  good4: "93.184.215.81",
  broken4: "93.184.215.82",
  lists4: "93.184.215.83",
};
/** Ports the internet's DNS listens on (53 and 853 are the probe servers'). */
export const AUTH_PORT = 5300;
export const PLAIN_PORT = 8053;
export const TLS_PORT = 8853;

/** The name a fetched list holds in the appliance (written where the feeds job leaves it). */
export function feedName(list: string): string {
  return `${list}.feed.plain.example`;
}

/** The internet's DNS: built, started on the internet host, the upstreams' ports taken to it. */
export async function startInternetDns(app: Appliance): Promise<void> {
  const site = app.site;
  if (!site.dns.forward)
    throw new Error("router:dns.forward false (recursion from the real root servers) is not modelled by the appliance");
  const ups = site.dns.upstreams;
  const v4 = ups.filter((u) => familyOf(u.address) === 4);
  const dir = join(app.work, "internet-dns");
  const listen = (u: (typeof ups)[number], port: number) => `${u.address}@${port}`;
  const internet = buildInternetDns(dir, {
    addresses: { ...NET, resolver4: v4[0]?.address ?? NET.authoritative4 },
    authPort: AUTH_PORT,
    resolverPlain: ups.map((u) => listen(u, PLAIN_PORT)),
    resolverTls: ups.map((u) => listen(u, TLS_PORT)),
    tlsPort: TLS_PORT,
    resolverNames: [...new Set(ups.flatMap((u) => (u.tlsServerName ? [u.tlsServerName] : [])))].sort(),
    rootWildcard: true,
  });
  app.topology.addInternetAddress(NET.authoritative4);
  for (const d of internet.daemons.filter((x) => x.name !== "internet-lists"))
    app.shell.daemon(`${app.inet}-${d.name}`, app.inet, d.argv);
  // The router asks the upstreams at 53 (Do53) or 853 (DoT); the internet's resolver answers at its own ports.
  const rules = ups.flatMap((u) => {
    const f = familyOf(u.address) === 4 ? "ip" : "ip6";
    const to = (port: number) => (f === "ip" ? `${u.address}:${port}` : `[${u.address}]:${port}`);
    return [
      `${f} daddr ${u.address} tcp dport 853 dnat ${f} to ${to(TLS_PORT)}`,
      `${f} daddr ${u.address} udp dport 53 dnat ${f} to ${to(PLAIN_PORT)}`,
      `${f} daddr ${u.address} tcp dport 53 dnat ${f} to ${to(PLAIN_PORT)}`,
    ];
  });
  const nft = ["table inet e2e_dns {", "\tchain prerouting {", "\t\ttype nat hook prerouting priority dstnat;"];
  app.exec(app.inet, ["nft", "-f", "-"], {
    input: [...nft, ...rules.map((r) => `\t\t${r}`), "\t}", "}", ""].join("\n"),
  });
  // What the router's image brings, with the test internet's keys: the root trust anchor (the resolver keeps it
  // in state, seeded from the image when missing), the CA bundle, the stack's own programs.
  writeFileSync(join(app.pods.hostPath(PATHS.unboundState), "root.key"), internet.rootAnchor);
  app.pods.imageFiles.set(PATHS.caBundle, join(dir, "ca.pem"));
  app.pods.imagePath.push(...EXTRA_PATH);
  app.pods.secrets.set(DNS_SECRET, writeTestSecrets(join(app.work, "dns-secrets")));
  for (const l of site.dns.lists.filter((x) => x.url))
    writeListDb(app.pods.hostPath(PATHS.lists), l.name, [feedName(l.name)]);
  buildStats();
  await waitFor(
    "the internet's resolver to answer",
    () =>
      /status: NOERROR/.test(
        app.exec(
          app.inet,
          ["dig", "+time=1", "+tries=1", "-p", String(PLAIN_PORT), `@${ups[0].address}`, "www.plain.example"],
          {
            allowFail: true,
          },
        ).stdout,
      ),
    20_000,
    250,
  );
}
