/**
 * The DNS test site: the dev site with its upstream replaced by the test internet's DoT resolver and its lists
 * replaced by names of the test internet (plain.example answers every name, so a name that resolves was not
 * blocked). `ads` stays a fetched list: the test writes its database where the feeds job would. The servers zone
 * has no dns service here, so the site has a zone the router must not answer.
 */
import type { Raw } from "../../helpers/dev-site";
import { INTERNET_DNS } from "./internet";

/** Names of the test lists, and what each zone's profile does with them (dev site: see Pulumi.dev.yaml). */
export const NAMES = {
  /** On ads (a feed: block in standard and strict). */
  ad: "ads.plain.example",
  /** Below an ads entry: a name covers its subdomains. */
  adChild: "x.ads.plain.example",
  /** On ads, and let through by work (allow, in standard). */
  tracker: "cdn.tracker.plain.example",
  /** On guest-extra (inline block in strict only). */
  social: "social.plain.example",
  /** On iot-vendors (the allow-only profile's list). */
  vendor: "vendor.plain.example",
  /** Below ads's two-label entry (the shortest name a list may hold: router-fetch refuses a top-level domain). */
  shortEntryChild: "x.adnet.example",
  /** On no list. */
  free: "www.plain.example",
} as const;

/** Entries of the ads feed as the feeds job would leave them. */
export const ADS_FEED = ["ads.plain.example", "adnet.example", "tracker.plain.example"];

export function dnsTestSite(raw: Raw): void {
  raw.dns.upstreams = [{ address: INTERNET_DNS.resolver4, protocol: "DoT", tlsServerName: INTERNET_DNS.resolverName }];
  const list = (name: string) => raw.dns.lists.find((l: Raw) => l.name === name);
  list("ads").url = `https://${INTERNET_DNS.lists4}/ads.txt`;
  list("ads").minEntries = 2;
  list("guest-extra").entries = [NAMES.social];
  list("work").entries = ["cdn.tracker.plain.example"];
  list("iot-vendors").entries = [NAMES.vendor];
  raw.dns.lists = raw.dns.lists.filter((l: Raw) => l.name !== "malware");
  for (const p of raw.dns.profiles) p.block = (p.block ?? []).filter((b: string) => b !== "malware");
  raw.zones.find((z: Raw) => z.name === "servers").services = ["dhcp", "ntp", "ping"];
  raw.dns.zones = raw.dns.zones.filter((z: Raw) => z.zone !== "servers");
}
