/**
 * `npm run diff`'s summary of the observability layer's review facts (cli/review-diff.ts): an endpoint opened to
 * another zone or closed to one, and an alert receiver added or removed with the credential it sends — read from
 * the dev site's golden review.json and an edited copy.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { semanticDiff } from "../../cli/review-diff";
import type { ReviewModel } from "../../components/review";
import { ROOT } from "../helpers/stacks";

const base = readFileSync(join(ROOT, "test/golden/dev/review.json"), "utf8");

function lines(edit: (m: ReviewModel) => void): string[] {
  const m = JSON.parse(base) as ReviewModel;
  edit(m);
  const sections = semanticDiff(new Map([["review.json", base]]), new Map([["review.json", JSON.stringify(m)]]));
  return sections.find((s) => s.title === "Observability endpoints and alert receivers")?.lines ?? [];
}

describe("the observability section of npm run diff", () => {
  it("says which zone an endpoint is newly reachable from, and which it no longer is", () => {
    expect(
      lines((m) => {
        const eps = m.observability!.endpoints;
        eps.find((e) => e.name === "node-exporter")!.reachableFrom = ["mgmt", "trusted"];
        eps.find((e) => e.name === "dashboards")!.reachableFrom = [];
      }),
    ).toEqual([
      "now reachable: node-exporter (tcp/9100) from zone trusted",
      "no longer reachable: dashboards (tcp/8080) from zone mgmt",
    ]);
  });

  it("names an added alert receiver with the credential it sends and whether that is a Pulumi secret", () => {
    expect(
      lines((m) => {
        m.observability!.receivers = [
          { name: "noc", credential: { key: "alertWebhookToken", set: true, pulumiSecret: true } },
          { name: "mail", credential: { key: "alertSmtpPassword", set: true, pulumiSecret: false } },
        ];
      }),
    ).toEqual([
      "alert receiver added: noc (sends alertWebhookToken, a Pulumi secret)",
      "alert receiver added: mail (sends alertSmtpPassword, NOT a Pulumi secret)",
    ]);
  });

  it("has no section when nothing of the layer changes", () => {
    expect(lines(() => undefined)).toEqual([]);
  });
});
