/**
 * SUMMARY.md is assembled from what each layer publishes about itself (DESIGN decision 15): a line under
 * "What will be deployed" and sections of its own, each with an order. A layer renders them with a pure
 * function beside its component and registers them as the `summary` output; `cli/summary.ts` only assembles.
 */

/** One line under "What will be deployed". */
export interface SummaryLine {
  /** Position among all layers' lines (lower first). */
  order: number;
  /** Markdown, without the leading "- ". */
  text: string;
}

/** One section of SUMMARY.md. */
export interface SummarySection {
  /** Position among all layers' sections (lower first). */
  order: number;
  /** Markdown, starting with its own `##` heading. */
  markdown: string;
}

/** What a layer publishes (the `summary` output of its component). */
export interface LayerSummary {
  deploys: SummaryLine[];
  sections: SummarySection[];
}

/** Section positions, so that layers interleave as a reader expects. */
export const SECTION = {
  topology: 10,
  links: 20,
  segments: 30,
  zones: 40,
  zoneMatrix: 50,
  routing: 60,
  dns: 70,
  observability: 80,
  ids: 90,
} as const;

/** A Markdown table; `|` inside cells is escaped. */
export function mdTable(head: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, "\\|");
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}
