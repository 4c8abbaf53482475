/**
 * SUMMARY.md of a rendered site: what will be deployed, the topology, links, and the IPAM table of every
 * segment. Pure: the same site and resource list give the same text.
 */
import type { Site } from "../components/site/schema";
import type { SitePlan } from "../components/site/plan";
import type { RecordedResource } from "./mock-runtime";
import { compilePolicy, zoneMatrix } from "../components/site/policy";

function table(head: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, "\\|");
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

function addressing(w: SitePlan["wans"][number]): string {
  const v4 = w.ipv4.mode === "static" ? `static ${w.ipv4.address} via ${w.ipv4.gateway}` : w.ipv4.mode;
  const v6 = w.ipv6.mode === "static" ? `static ${w.ipv6.address} via ${w.ipv6.gateway}` : w.ipv6.mode;
  return `IPv4 ${v4}; IPv6 ${v6}`;
}

export function renderSummary(site: Site, plan: SitePlan, resources: RecordedResource[], artifacts: string[]): string {
  const model = compilePolicy(site, plan);
  const out: string[] = [];
  out.push(`# Site ${site.site.name} — ${plan.fqdn}`, "");
  if (site.site.description) out.push(site.site.description, "");

  out.push("## What will be deployed", "");
  out.push(
    `- **Talos ${site.talos.version}** with Kubernetes ${site.talos.kubernetesVersion} on \`${plan.hostname}\`, managed at ` +
      `\`${plan.managementAddress}\` (segment ${plan.managementSegment}); first install through maintenance mode at ` +
      `\`${plan.maintenanceAddress}\`. Installer: ${
        site.dataplane.extension.build || site.dataplane.extension.image
          ? `Talos ${site.talos.version} built by the imager with the router-dataplane extension, pushed to \`${site.registry?.server}/${site.registry?.repository}/installer\``
          : `\`${site.talos.installerImage}\``
      }.`,
  );
  for (const r of resources.filter((x) => x.type === "kubernetes:helm.sh/v3:Release")) {
    out.push(
      `- Helm release **${String(r.inputs.name ?? r.name)}**: chart ${String(r.inputs.chart)} ${String(r.inputs.version)} in ${String(r.inputs.namespace)}.`,
    );
  }
  const dp = site.dataplane;
  out.push(
    `- **Data plane** (Talos extension router-dataplane, ${dp.extension.build ? "built from ebpf/ and pushed at pulumi up" : dp.extension.image ? `image ${dp.extension.image}` : "not installed"}): ` +
      (dp.enabled
        ? `XDP guard (${dp.xdpMode}) on ${plan.wans.map((w) => w.name).join(", ")} — bogons, ${dp.blocklist.length} blocklist entries, ${dp.feeds.length} feed(s), per-source rate limits; `
        : "XDP guard off; ") +
      `nftables zone firewall and NAT; ${plan.wans.length > 1 ? `failover across ${plan.wans.map((w) => `${w.name} (${w.priority})`).join(", ")}` : "one WAN"}.`,
  );
  const daemons = resources
    .filter((r) => r.type === "kubernetes:apps/v1:DaemonSet")
    .map((r) => String((r.inputs.metadata as { name?: string } | undefined)?.name ?? r.name))
    .sort();
  if (daemons.length)
    out.push(
      `- **Network services** on the host network, from the services image pinned by digest: ${daemons.join(", ")}.`,
    );
  out.push(
    `- Configuration changes are applied in Talos try mode (${site.node.tryTimeout}) and confirmed only after the ` +
      "Talos API, Kubernetes API, WAN probe and cluster health checks pass.",
  );
  out.push(
    site.node.allowWipeOnDestroy
      ? "- `pulumi destroy` **resets and wipes** the router (node.allowWipeOnDestroy is set)."
      : "- `pulumi destroy` leaves the router running; its keys are protected resources.",
  );
  out.push("");
  const byType = new Map<string, number>();
  for (const r of resources) byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
  out.push(
    table(
      ["resource type", "count"],
      [...byType].sort(([a], [b]) => a.localeCompare(b)).map(([t, n]) => [`\`${t}\``, String(n)]),
    ),
    "",
  );

  out.push("## Topology", "", "```");
  out.push("internet");
  for (const w of plan.wans) out.push(`  └─ ${w.name}  zone ${w.zone}, priority ${w.priority}: ${addressing(w)}`);
  out.push(`${plan.hostname}`);
  plan.trunks.forEach((t, ti) => {
    const last = ti === plan.trunks.length - 1;
    out.push(
      `  ${last ? "└─" : "├─"} ${t.name}${t.bond ? ` (bond of ${t.bond.members.join(", ")}, ${t.bond.mode})` : ""} trunk`,
    );
    const segs = plan.segments.filter((s) => s.parent === t.name);
    segs.forEach((s, i) => {
      const branch = i === segs.length - 1 ? "└─" : "├─";
      out.push(
        `  ${last ? " " : "│"}    ${branch} ${s.link.padEnd(10)} ${s.name.padEnd(10)} zone ${s.zone.padEnd(9)} ${s.ipv4.gatewayCidr}${s.ipv6 ? `  ${s.ipv6.gatewayCidr}` : ""}`,
      );
    });
  });
  out.push("```", "");

  out.push("## Links", "");
  out.push(
    table(
      ["link", "role", "zone", "addressing", "MTU"],
      [
        ...plan.wans.map((w) => [w.name, "wan", w.zone, addressing(w), w.mtu ? String(w.mtu) : "default"]),
        ...plan.trunks.map((t) => [
          t.name,
          "trunk",
          "—",
          `VLANs ${t.vlans.join(", ") || "none"}`,
          t.mtu ? String(t.mtu) : "default",
        ]),
      ],
    ),
    "",
  );

  out.push("## Segments (IPAM)", "");
  out.push(
    table(
      ["segment", "VLAN", "link", "zone", "IPv4", "gateway", "DHCP pool", "reserved", "IPv6", "gateway (v6)"],
      plan.segments.map((s) => [
        s.name,
        String(s.vlan),
        s.link,
        s.zone,
        s.ipv4.cidr,
        s.ipv4.gateway,
        s.dhcp.pool ? `${s.dhcp.pool.start}–${s.dhcp.pool.end} (${s.dhcp.pool.size})` : "off",
        String(s.dhcp.reservations.length),
        s.ipv6?.prefix ?? "—",
        s.ipv6?.gateway ?? "—",
      ]),
    ),
    "",
  );
  const reservations = plan.segments.flatMap((s) =>
    s.dhcp.reservations.map((r) => [s.name, r.name, r.mac, r.ipv4 ?? "—", r.ipv6 ?? "—"]),
  );
  if (reservations.length) {
    out.push("### Reservations", "", table(["segment", "host", "MAC", "IPv4", "IPv6"], reservations), "");
  }

  out.push("## Zones", "");
  out.push(
    table(
      ["zone", "management", "segments", "links"],
      plan.zones.map((z) => [
        z.name,
        z.management ? "yes" : "no",
        z.segments.join(", ") || "—",
        z.links.join(", ") || "—",
      ]),
    ),
    "",
  );

  const matrix = zoneMatrix(model);
  const cols = [...model.zones, "router"];
  out.push("## Zone matrix (new connections, from row to column)", "");
  out.push(
    "Each cell is the verdict for traffic no rule singles out; `+ rule` names rules that refine the pair (first match wins). " +
      "To the router: management zones reach the Talos and Kubernetes APIs; other zones reach only their services.",
    "",
  );
  out.push(
    table(
      ["from \\ to", ...cols],
      model.zones.map((from) => [
        from,
        ...cols.map((to) => {
          const c = matrix.get(from)!.get(to)!;
          const v =
            to === "router" && c.verdict === "drop"
              ? `services: ${(model.services.get(from) ?? []).join(", ") || "none"}`
              : c.verdict;
          return c.rules.length ? `${v} + ${c.rules.join(", ")}` : v;
        }),
      ]),
    ),
    "",
  );
  if (site.portForwards.length)
    out.push(
      "### Port forwards",
      "",
      table(
        ["name", "protocol", "public port", "to", "sources", "hairpin"],
        site.portForwards.map((f) => [
          f.name,
          f.protocol,
          String(f.port),
          `${f.to}${f.toPort ? `:${f.toPort}` : ""}${f.ipv6 ? ` / [${f.ipv6}]` : ""}`,
          f.sources?.join(", ") ?? "any",
          f.hairpin ? "yes" : "no",
        ]),
      ),
      "",
    );

  out.push("## Artifacts", "", ...artifacts.map((a) => `- [${a}](${a})`), "");
  return out.join("\n");
}
