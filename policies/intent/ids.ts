/**
 * IDS/IPS covers the zone pairs the site requires: every pair the IDS layer says the site asks for is inspected,
 * inline where inline is required (detection alone cannot stop what it sees). The IDS layer publishes both lists
 * as its `review.ids` facts (components/review.ts IdsFacts, computed by components/ids-stack/review.ts: what the
 * WAN can open in detection, router:ids.ips.pairs inline); a stack whose IDS is off is not applicable.
 */
import type { EnforcementLevel, StackValidationPolicy } from "@pulumi/policy";
import { requireModel } from "../lib";

export function idsCoversRequiredPairs(enforcementLevel: EnforcementLevel = "mandatory"): StackValidationPolicy {
  return {
    name: "ids-covers-required-pairs",
    description: "Intrusion detection/prevention covers every zone pair the site requires, inline where required.",
    enforcementLevel,
    validateStack: (args, report) => {
      const ids = requireModel(args).ids;
      if (!ids) return args.notApplicable("the stack has no IDS layer");
      const urn = args.resources.find((r) => (r.props?.review as { ids?: unknown } | undefined)?.ids)?.urn;
      for (const req of ids.required) {
        const got = ids.covered.filter((c) => c.from === req.from && c.to === req.to);
        if (got.length === 0)
          report(
            `zone pair ${req.from} → ${req.to} must be inspected (${req.mode}) but the IDS covers it not at all (allowed: cover every required pair)`,
            urn,
          );
        else if (req.mode === "inline" && !got.some((c) => c.mode === "inline"))
          report(
            `zone pair ${req.from} → ${req.to} must be inspected inline but the IDS only detects there (allowed: inline, NFQUEUE, for the pair)`,
            urn,
          );
      }
    },
  };
}
