/**
 * NetworkServices' part of SUMMARY.md: the daemons it runs and the addressing it serves — every segment's IPAM
 * and the DHCP reservations. Pure.
 */
import type { SitePlan } from "../site/plan";
import { SECTION, mdTable, type LayerSummary } from "../summary";

function segments(plan: SitePlan): string {
  const out = [
    "## Segments (IPAM)",
    "",
    mdTable(
      ["segment", "VLAN", "link", "zone", "IPv4", "gateway", "DHCP pool", "reserved", "IPv6", "gateway (v6)"],
      plan.segments.map((s) => [
        s.name,
        String(s.vlan),
        s.link,
        s.zone,
        s.ipv4?.cidr ?? "—",
        s.ipv4?.gateway ?? "—",
        s.dhcp.pool ? `${s.dhcp.pool.start}–${s.dhcp.pool.end} (${s.dhcp.pool.size})` : "off",
        String(s.dhcp.reservations.length),
        s.ipv6?.prefix ?? "—",
        s.ipv6?.gateway ?? "—",
      ]),
    ),
    "",
  ];
  const reservations = plan.segments.flatMap((s) =>
    s.dhcp.reservations.map((r) => [s.name, r.name, r.mac, r.ipv4 ?? "—", r.ipv6 ?? "—"]),
  );
  if (reservations.length)
    out.push("### Reservations", "", mdTable(["segment", "host", "MAC", "IPv4", "IPv6"], reservations), "");
  return out.join("\n");
}

/** `daemons`: the names of the DaemonSets the component creates. */
export function renderServicesSummary(plan: SitePlan, daemons: readonly string[]): LayerSummary {
  return {
    deploys: daemons.length
      ? [
          {
            order: 40,
            text: `**Network services** on the host network, from the services image pinned by digest: ${[...daemons].sort().join(", ")}.`,
          },
        ]
      : [],
    sections: [{ order: SECTION.segments, markdown: segments(plan) }],
  };
}
