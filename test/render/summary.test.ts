/**
 * SUMMARY.md is assembled from the layers' own `summary` outputs: a new layer appears by publishing one, in the
 * place its order gives, without a change to the assembler.
 */
import { describe, expect, it } from "vitest";
import { renderSummary } from "../../cli/summary";
import type { RecordedResource } from "../../cli/mock-runtime";
import { devSite } from "../helpers/dev-site";

function component(type: string, summary: unknown): RecordedResource {
  return {
    urn: `urn:${type}`,
    type,
    name: type,
    custom: false,
    dependencies: [],
    protect: false,
    inputs: {},
    outputs: { summary },
  };
}

describe("SUMMARY.md assembly", () => {
  it("orders every layer's lines and sections by their order, keeping registration order on ties", () => {
    const { site, plan } = devSite();
    const text = renderSummary(
      site,
      plan,
      [
        component("router:b:B", {
          deploys: [{ order: 50, text: "B line" }],
          sections: [{ order: 20, markdown: "## B section\n" }],
        }),
        component("router:a:A", {
          deploys: [
            { order: 10, text: "A first" },
            { order: 50, text: "A tie" },
          ],
          sections: [{ order: 5, markdown: "## A section\n" }],
        }),
        component("router:c:NoSummary", undefined),
      ],
      ["x.txt"],
    );
    const lines = text.split("\n");
    expect(lines.filter((l) => l.startsWith("- ") && !l.startsWith("- ["))).toEqual([
      "- A first",
      "- B line",
      "- A tie",
    ]);
    expect(text.indexOf("## A section")).toBeLessThan(text.indexOf("## B section"));
    expect(text.indexOf("## B section")).toBeLessThan(text.indexOf("## Artifacts"));
    expect(text).toContain("| `router:c:NoSummary` | 1 |");
  });
});
