/**
 * DataPlane's part of SUMMARY.md: what the extension does on the box, the zones, the zone matrix (from the same
 * policy model the ruleset is rendered from) and the port forwards. Pure.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { zoneMatrix, type HairpinWan, type PolicyModel } from "../site/policy";
import { SECTION, mdTable, type LayerSummary } from "../summary";
import { ipv6Port } from "./review";

function deployLine(site: Site, plan: SitePlan): string {
  const dp = site.dataplane;
  const source = dp.extension.build
    ? "built from ebpf/ and pushed at pulumi up"
    : dp.extension.image
      ? `image ${dp.extension.image}`
      : "not installed";
  const guard = dp.enabled
    ? `XDP guard (${dp.xdpMode}) on ${plan.wans.map((w) => w.name).join(", ")} — bogons, ${dp.blocklist.length} blocklist entries, ${dp.feeds.length} feed(s), per-source rate limits; `
    : "XDP guard off; ";
  const wans =
    plan.wans.length > 1
      ? `failover across ${plan.wans.map((w) => `${w.name} (${w.priority})`).join(", ")}`
      : "one WAN";
  return `**Data plane** (Talos extension router-dataplane, ${source}): ${guard}nftables zone firewall and NAT; ${wans}.`;
}

function zones(plan: SitePlan): string {
  return [
    "## Zones",
    "",
    mdTable(
      ["zone", "management", "segments", "links"],
      plan.zones.map((z) => [
        z.name,
        z.management ? "yes" : "no",
        z.segments.join(", ") || "—",
        z.links.join(", ") || "—",
      ]),
    ),
    "",
  ].join("\n");
}

function matrix(site: Site, plan: SitePlan, model: PolicyModel): string {
  const m = zoneMatrix(model);
  const cols = [...model.zones, "router"];
  const out = [
    "## Zone matrix (new connections, from row to column)",
    "",
    "Each cell is the verdict for traffic no rule singles out; `+ rule` names rules that refine the pair (first match wins). " +
      "To the router: management zones reach the Talos and Kubernetes APIs; other zones reach only their services.",
    "",
    mdTable(
      ["from \\ to", ...cols],
      model.zones.map((from) => [
        from,
        ...cols.map((to) => {
          const c = m.get(from)!.get(to)!;
          const v =
            to === "router" && c.verdict === "drop"
              ? `services: ${(model.services.get(from) ?? []).join(", ") || "none"}`
              : c.verdict;
          return c.rules.length ? `${v} + ${c.rules.join(", ")}` : v;
        }),
      ]),
    ),
    "",
  ];
  if (site.portForwards.length)
    out.push(
      "### Port forwards",
      "",
      mdTable(
        ["name", "protocol", "public port", "on WANs", "to", "sources", "hairpin"],
        site.portForwards.map((f) => [
          f.name,
          f.protocol,
          String(f.port),
          `${(model.forwards.find((x) => x.name === f.name)?.wans ?? []).join(", ")}${f.wans ? "" : " (all)"}`,
          `${f.to}${f.toPort ? `:${f.toPort}` : ""}${f.ipv6 ? ` / ${ipv6Target(f, plan)}` : ""}`,
          f.sources?.join(", ") ?? "any",
          hairpinCell(f.hairpin, model.forwards.find((x) => x.name === f.name)?.hairpinAt),
        ]),
      ),
      "",
    );
  return out.join("\n");
}

/** A forward's IPv6 host, with its port where the router moves it (review.ts ipv6Port: not behind prefix translation). */
function ipv6Target(f: Site["portForwards"][number], plan: SitePlan): string {
  const port = ipv6Port(f, plan);
  return port === String(f.port) ? `[${f.ipv6}]` : `[${f.ipv6}]:${port}`;
}

/** A forward limited to some WANs hairpins at their addresses only (policy.ts hairpinAddresses). */
function hairpinCell(on: boolean, at: HairpinWan[] | undefined): string {
  if (!on) return "no";
  if (!at) return "yes";
  return `at ${at.map((w) => (w.address ? `${w.address} (${w.wan})` : `${w.wan}'s address (DHCP)`)).join(", ")}`;
}

export function renderDataplaneSummary(site: Site, plan: SitePlan, model: PolicyModel): LayerSummary {
  return {
    deploys: [{ order: 30, text: deployLine(site, plan) }],
    sections: [
      { order: SECTION.zones, markdown: zones(plan) },
      { order: SECTION.zoneMatrix, markdown: matrix(site, plan, model) },
    ],
  };
}
