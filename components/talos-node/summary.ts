/**
 * TalosNode's part of SUMMARY.md: the node (Talos, management address, installer), how changes are applied and
 * what destroy does; the topology and the links. Pure.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { SECTION, mdTable, type LayerSummary } from "../summary";
import type { LayerReview } from "../review";

function addressing(w: SitePlan["wans"][number]): string {
  const v4 = w.ipv4.mode === "static" ? `static ${w.ipv4.address} via ${w.ipv4.gateway}` : w.ipv4.mode;
  const v6 = w.ipv6.mode === "static" ? `static ${w.ipv6.address} via ${w.ipv6.gateway}` : w.ipv6.mode;
  return `IPv4 ${v4}; IPv6 ${v6}`;
}

function topology(plan: SitePlan): string {
  const out = ["## Topology", "", "```", "internet"];
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
        `  ${last ? " " : "│"}    ${branch} ${s.link.padEnd(10)} ${s.name.padEnd(10)} zone ${s.zone.padEnd(9)} ${[s.ipv4?.gatewayCidr, s.ipv6?.gatewayCidr].filter(Boolean).join("  ")}`,
      );
    });
  });
  out.push("```", "");
  return out.join("\n");
}

function links(plan: SitePlan): string {
  return [
    "## Links",
    "",
    mdTable(
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
  ].join("\n");
}

export function renderNodeSummary(site: Site, plan: SitePlan): LayerSummary {
  const installer =
    site.dataplane.extension.build || site.dataplane.extension.image
      ? `Talos ${site.talos.version} built by the imager with the router-dataplane extension, pushed to \`${site.registry?.server}/${site.registry?.repository}/installer\``
      : `\`${site.talos.installerImage}\``;
  return {
    deploys: [
      {
        order: 10,
        text:
          `**Talos ${site.talos.version}** with Kubernetes ${site.talos.kubernetesVersion} on \`${plan.hostname}\`, managed at ` +
          `\`${plan.managementAddress}\` (segment ${plan.managementSegment}); first install through maintenance mode at ` +
          `\`${plan.maintenanceAddress}\`. Installer: ${installer}.`,
      },
      {
        order: 80,
        text:
          `Configuration changes are applied in Talos try mode (${site.node.tryTimeout}) and confirmed only after the ` +
          "Talos API, Kubernetes API, WAN probe and cluster health checks pass.",
      },
      {
        order: 90,
        text: site.node.allowWipeOnDestroy
          ? "`pulumi destroy` **resets and wipes** the router (node.allowWipeOnDestroy is set)."
          : "`pulumi destroy` leaves the router running; its keys are protected resources.",
      },
    ],
    sections: [
      { order: SECTION.topology, markdown: topology(plan) },
      { order: SECTION.links, markdown: links(plan) },
    ],
  };
}

/** The node's facts for review tooling: itself, its links, and the resolvers and clocks it uses. */
export function renderNodeFacts(site: Site, plan: SitePlan): LayerReview {
  return {
    node: {
      site: site.site.name,
      hostname: plan.hostname,
      fqdn: plan.fqdn,
      managementAddress: plan.managementAddress,
      links: [
        ...plan.wans.map((w) => ({
          name: w.name,
          role: "wan" as const,
          zone: w.zone,
          priority: w.priority,
          addressing: addressing(w),
          ...(w.bond ? { members: [...w.bond.members] } : {}),
        })),
        ...plan.trunks.map((t) => ({
          name: t.name,
          role: "trunk" as const,
          ...(t.bond ? { members: [...t.bond.members] } : {}),
        })),
      ],
    },
    profiles: {
      "node.dns.upstreams": site.dns.upstreams
        .map((u) => `${u.address} ${u.protocol}${u.tlsServerName ? ` ${u.tlsServerName}` : ""}`)
        .join(", "),
      "node.ntp.servers": site.ntp.servers.join(", "),
      "talos.version": site.talos.version,
      "kubernetes.version": site.talos.kubernetesVersion,
    },
  };
}
