/**
 * IdsStack's part of SUMMARY.md: what watches which link, which zone pairs are inspected inline and what happens
 * when Suricata is down, the rule sources, blocking, and Zeek's standing (rendered, its runtime unproven here).
 * Pure.
 */
import type { Site } from "../site/schema";
import { SECTION, mdTable, type LayerSummary } from "../summary";
import type { IdsPlan } from "./plan";
import { EVE_MAX_BYTES } from "./k8s";

/** Where the events go: the observability stack's log store and TSDB, or nowhere but the router's disk. */
function events(site: Site, ids: IdsPlan): string {
  if (!ids.ship)
    return (
      "Events: **not shipped** — the site has no observability stack (router:observability.enabled is false); " +
      `Suricata's EVE stays in its log files on the router (eve.json, rotated past ${EVE_MAX_BYTES / 2 ** 20} MiB: ` +
      "two files per process) " +
      "and no alert metrics exist."
    );
  return (
    "Events: Suricata's alerts, flows, DNS, TLS, HTTP, SSH, anomalies and inline drops (EVE JSON, each with its " +
    "community ID) go one datagram each to the log collector's socket and into the log store as `source:ids` " +
    `(\`sensor:suricata\`)${site.ids.zeek.enabled ? ", Zeek's JSON logs as `sensor:zeek` (runtime unproven here)" : ""}; ` +
    "alerts by process, severity and action and the capture drops are metrics (`router_ids_*`, through the node " +
    "exporter), with the alerts IdsAlertBurst, IdsCaptureDrops and IdsStatsMissing."
  );
}

function section(site: Site, ids: IdsPlan): string {
  const { rules, block, zeek } = site.ids;
  const [first, last] = ids.queues;
  const out = [
    "## Intrusion detection and prevention",
    "",
    mdTable(
      ["link", "mode", "threads"],
      ids.links.map((l) => [l, "IDS (AF_PACKET, both directions)", String(site.ids.cpu.threadsPerLink)]),
    ),
    "",
  ];
  if (ids.pairs.length)
    out.push(
      `Inline (IPS): ${ids.pairs.map((p) => `${p.from} → ${p.to}`).join(", ")} — every packet the zone policy accepts ` +
        `goes to NFQUEUE ${first === last ? first : `${first}–${last}`} (by flow hash) with bypass: **while Suricata ` +
        "is down these connections flow uninspected**" +
        (ids.ship ? " (alert IdsInlineBypassed, from the kernel's queue table)" : "") +
        "; drop rules stop them inline while it runs. A queue Suricata cannot keep up with drops its overflow " +
        `rather than pass it uninspected (no fail-open)${ids.ship ? ", counted (alert IdsQueueDrops)" : ""}.`,
      "",
    );
  out.push(
    `Rules: ${rules.sources.map((s) => s.name).join(", ") || "no source"} fetched every ${rules.updateInterval} on the ` +
      `router (suricata-update, tested with suricata -T; a failed update keeps the last good rules), ` +
      `${rules.local.length} local rule(s), ${rules.disable.length} disabled, ${rules.thresholds.length} threshold(s) ` +
      "(checked with suricata -T at pulumi up, before anything ships).",
    "",
    block.enabled
      ? `Blocking: alerts of severity ≤ ${block.severity} put their source (IPv6: its /64) on the XDP guard's dynamic ` +
          `blocklist for ${block.duration} (at most ${block.maxEntries}); never: ${ids.protected.length} protected prefixes ` +
          "(home network, management, allowlist, upstream gateways, resolvers and probe targets, block.never)."
      : "Blocking: off (alerts only).",
    "",
    zeek.enabled
      ? `Zeek: on, image ${zeek.image} — its configuration is rendered and checked structurally; **its runtime is unproven here** (Zeek is in neither Debian nor npm).`
      : "Zeek: off.",
    "",
    events(site, ids),
    "",
  );
  return out.join("\n");
}

export function renderIdsSummary(site: Site, ids: IdsPlan): LayerSummary {
  if (!site.ids.enabled) return { deploys: [], sections: [] };
  return {
    deploys: [
      {
        order: 60,
        text: `**IDS/IPS**: Suricata on ${ids.links.join(", ")}${ids.pairs.length ? `, inline for ${ids.pairs.map((p) => `${p.from} → ${p.to}`).join(", ")}` : ""}${site.ids.zeek.enabled ? "; Zeek" : ""}.`,
      },
    ],
    sections: [{ order: SECTION.ids, markdown: section(site, ids) }],
  };
}
