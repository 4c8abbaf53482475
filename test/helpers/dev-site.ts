/** The dev site (or an edited copy) parsed and planned, for tests of pure renderers. */
import { rawSiteConfig } from "../../components/site/load";
import { parseSite } from "../../components/site/parse";
import { planSite } from "../../components/site/plan";
import { compilePolicy } from "../../components/site/policy";
import { formatIssues } from "../../components/site/issues";
import { readStackConfig } from "../../cli/stack-config";
import { ROOT } from "./stacks";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Raw = Record<string, any>;

export function devRaw(): Raw {
  return rawSiteConfig(readStackConfig(ROOT, "dev").values) as Raw;
}

export function devSite(edit?: (raw: Raw) => void) {
  const raw = devRaw();
  raw.registryPassword = "pw";
  edit?.(raw);
  const r = parseSite(raw);
  if (!r.ok) throw new Error(formatIssues(r.issues));
  const plan = planSite(r.site);
  return { site: r.site, plan, policy: compilePolicy(r.site, plan) };
}
