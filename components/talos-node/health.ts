/**
 * What the node's health checks expect, as plain (non-secret) values passed to the scripts. Pure. Of the data plane,
 * from the rendered host contributions: the SHA-256 of the exact router.nft bytes and the loader configuration's
 * `[global] generation`. Of the segments, from the plan: each VLAN link and its gateway addresses. Of BGP, from the
 * site: each neighbour, whose session a change must not lose.
 */
import { createHash } from "node:crypto";
import { basename } from "node:path";
import { EXTENSION_NAME } from "../dataplane/loader-config";
import { mergeContributions, type HostContribution } from "./documents";
import { Address6 } from "ip-address";
import type { SegmentPlan, SitePlan } from "../site/plan";
import { OSPF_DEAD_S } from "../network-services/bird";
import { OSPF_STATUS_FILE, OSPF_STATUS_INTERVAL } from "../network-services/k8s";
import type { Site } from "../site/schema";
import type { BgpNeighbourCheck, DataplaneHealth, OspfCheck, SegmentLink } from "./scripts";

/** The `[global] generation` value of a loader configuration, if it has one. */
export function loaderGeneration(conf: string): string | undefined {
  let section = "";
  for (const raw of conf.split("\n")) {
    const line = raw.replace(/[;#].*$/, "").trim();
    const s = /^\[(.+)\]$/.exec(line);
    if (s) section = s[1];
    const kv = /^generation\s*=\s*(\S+)$/.exec(line);
    if (section === "global" && kv) return kv[1];
  }
  return undefined;
}

/**
 * The data plane's expected health, or undefined when the contributions carry no data-plane service (a site
 * without the extension) or its configuration has no ruleset.
 */
export function dataplaneHealth(
  contributions: readonly HostContribution[],
  metricsPort: number,
): DataplaneHealth | undefined {
  // Merged, so the firewall layer's ruleset is among the service's files.
  const doc = mergeContributions(contributions).documents.find(
    (d) => d.kind === "ExtensionServiceConfig" && d.name === EXTENSION_NAME,
  );
  const files = new Map(
    ((doc?.configFiles as { mountPath: string; content: string }[] | undefined) ?? []).map((f) => [
      basename(f.mountPath),
      f.content,
    ]),
  );
  const ruleset = files.get("router.nft");
  if (ruleset === undefined) return undefined;
  const generation = loaderGeneration(files.get("dataplane.conf") ?? "");
  return {
    metricsPort,
    rulesetSha256: createHash("sha256").update(ruleset, "utf8").digest("hex"),
    ...(generation ? { generation } : {}),
  };
}

/** An address with prefix length in the form the node reports it (Go's netip.Prefix: RFC 5952 for IPv6). */
export function canonicalCidr(cidr: string): string {
  const [ip, bits] = cidr.split("/");
  return `${ip.includes(":") ? new Address6(ip).correctForm() : ip}/${bits}`;
}

/** What the node must have of each segment: its VLAN link and gateway addresses, from the plan. */
export function segmentLinks(segments: readonly SegmentPlan[]): SegmentLink[] {
  return segments.map((s) => ({
    segment: s.name,
    link: s.link,
    vlan: s.vlan,
    addresses: [...(s.ipv4 ? [s.ipv4.gatewayCidr] : []), ...(s.ipv6 ? [s.ipv6.gatewayCidr] : [])].map(canonicalCidr),
  }));
}

/** The site's BGP neighbours as the node names their sessions (the schema keeps addresses canonical). */
export function bgpNeighbourChecks(site: Site): BgpNeighbourCheck[] {
  return (site.routing.bgp?.neighbors ?? []).map((n) => ({ address: n.address, asn: n.asn, bfd: n.bfd }));
}

/**
 * The site's OSPF adjacencies as the try and the upgrade hold them: the links OSPF runs on (OSPFv2: its IPv4
 * segments), where the bird pod writes its status, and BIRD's timers as bird.ts renders them. Absent without OSPF.
 */
export function ospfAdjacencyCheck(site: Site, plan: SitePlan): OspfCheck | undefined {
  const ospf = site.routing.ospf;
  if (!ospf) return undefined;
  return {
    links: plan.segments.filter((s) => ospf.segments.includes(s.name) && s.ipv4).map((s) => s.link),
    statusFile: OSPF_STATUS_FILE,
    deadSeconds: OSPF_DEAD_S,
    statusSeconds: OSPF_STATUS_INTERVAL,
  };
}
