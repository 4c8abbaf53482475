/**
 * SUMMARY.md of a rendered site, assembled from what each layer published (its `summary` output: a line under
 * "What will be deployed" and sections of its own, each with an order) plus the resource count and the list of
 * artifacts. It computes nothing of a layer's plan itself. Pure: the same resources give the same text.
 */
import type { Site } from "../components/site/schema";
import type { SitePlan } from "../components/site/plan";
import { mdTable, type LayerSummary, type SummaryLine, type SummarySection } from "../components/summary";
import type { RecordedResource } from "./mock-runtime";

/** The layers' summaries, in registration order. */
export function layerSummaries(resources: RecordedResource[]): LayerSummary[] {
  return resources.flatMap((r) => {
    const s = r.outputs?.summary as LayerSummary | undefined;
    return s && Array.isArray(s.deploys) && Array.isArray(s.sections) ? [s] : [];
  });
}

function byOrder<T extends { order: number }>(items: T[]): T[] {
  // Stable: equal orders keep registration order.
  return items
    .map((x, i) => ({ x, i }))
    .sort((a, b) => a.x.order - b.x.order || a.i - b.i)
    .map(({ x }) => x);
}

/** A picture of the site: its title and artifact path without extension (`.svg` drawn, `.dot` its source). */
export interface Picture {
  title: string;
  path: string;
}

function pictures(list: readonly Picture[]): string[] {
  if (list.length === 0) return [];
  return [
    "## Pictures",
    "",
    ...list.flatMap((p) => [
      `![${p.title}](${p.path}.svg)`,
      "",
      `${p.title}: Graphviz source [${p.path}.dot](${p.path}.dot).`,
      "",
    ]),
    "The SVG files are drawn by Graphviz when `npm run render` finds `dot`; the DOT sources are always written, and the sections below say the same in text.",
    "",
  ];
}

export function renderSummary(
  site: Site,
  plan: SitePlan,
  resources: RecordedResource[],
  artifacts: string[],
  pictureList: readonly Picture[] = [],
): string {
  const layers = layerSummaries(resources);
  const out: string[] = [];
  out.push(`# Site ${site.site.name} — ${plan.fqdn}`, "");
  if (site.site.description) out.push(site.site.description, "");

  out.push("## What will be deployed", "");
  for (const l of byOrder(layers.flatMap((x): SummaryLine[] => x.deploys))) out.push(`- ${l.text}`);
  out.push("");
  const byType = new Map<string, number>();
  for (const r of resources) byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
  out.push(
    mdTable(
      ["resource type", "count"],
      [...byType].sort(([a], [b]) => a.localeCompare(b)).map(([t, n]) => [`\`${t}\``, String(n)]),
    ),
    "",
  );
  out.push(...pictures(pictureList));
  for (const s of byOrder(layers.flatMap((x): SummarySection[] => x.sections))) out.push(s.markdown);
  out.push("## Artifacts", "", ...artifacts.map((a) => `- [${a}](${a})`), "");
  return out.join("\n");
}
