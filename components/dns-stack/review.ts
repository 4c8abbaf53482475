/**
 * The DNS layer's facts for review tooling (components/review.ts): the zones its front (dnsdist, the
 * `dns-front` daemon) answers — read by the policy pack's intent policy "DNS/NTP served where handed out"
 * (policies/intent/served.ts) — and its settings by key for `npm run diff`'s profiles. Pure.
 */
import type { Site } from "../site/schema";
import type { LayerReview } from "../review";
import type { DnsPlan } from "./plan";

/** The daemon that answers the zones' clients on the router's addresses (components/dns-stack/k8s.ts). */
const FRONT = "dns-front";

/** `daemons`: the DaemonSets the stack runs (none when no zone has DNS). */
export function renderDnsFacts(site: Site, dns: DnsPlan, daemons: readonly string[]): LayerReview {
  const zones = daemons.includes(FRONT) ? dns.zones.filter((z) => z.listen.length > 0).map((z) => z.name) : [];
  return { served: [{ service: "dns", zones: [...new Set(zones)].sort() }], profiles: renderDnsProfiles(site, dns) };
}

/** The DNS settings a reviewer compares by key: upstreams, resolution, and each served zone's treatment. */
function renderDnsProfiles(site: Site, dns: DnsPlan): Record<string, string> {
  if (dns.zones.length === 0) return { dns: "off" };
  const d = site.dns;
  const out: Record<string, string> = {
    dns: "on",
    "dns.resolution": `${d.forward ? "forwarded to the upstreams" : "recursive from the root servers"}, DNSSEC ${d.dnssec ? "validated" : "not validated"}`,
    "dns.upstreams": d.upstreams
      .map((u) => `${u.address} ${u.protocol}${u.tlsServerName ? ` (${u.tlsServerName})` : ""}`)
      .join(", "),
  };
  for (const z of dns.zones)
    out[`dns.zone.${z.name}`] = [
      `profile ${z.profile ?? "none"}`,
      `force ${z.force}`,
      z.encrypted ? "DoT/DoH" : "plain only",
      z.queryLog ? "query log" : "counters only",
    ].join(", ");
  return out;
}
