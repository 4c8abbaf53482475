/**
 * The observability stack keeps what it knows to the operators: its endpoints (the loader's metrics, the node
 * exporter, Prometheus, Alertmanager, the log store, Grafana) answer management zones only — a metrics port
 * open to a guest or the WAN tells anyone the site's clients, flows and failures — and every alert receiver that
 * sends a credential has it set as a Pulumi secret. The layer publishes both as its `review.observability`
 * facts (components/review.ts ObservabilityFacts, computed by components/observability-stack/review.ts); a
 * stack without the layer is not applicable.
 */
import type { EnforcementLevel, StackValidationPolicy } from "@pulumi/policy";
import { requireModel } from "../lib";

export function observabilityForOperatorsOnly(enforcementLevel: EnforcementLevel = "mandatory"): StackValidationPolicy {
  return {
    name: "observability-for-operators-only",
    description:
      "Metrics, alert, log and dashboard endpoints answer management zones only; alert receivers' credentials are Pulumi secrets.",
    enforcementLevel,
    validateStack: (args, report) => {
      const model = requireModel(args);
      const obs = model.observability;
      if (!obs) return args.notApplicable("the stack has no observability layer");
      const urn = args.resources.find(
        (r) => (r.props?.review as { observability?: unknown } | undefined)?.observability,
      )?.urn;
      const management = new Set((model.firewall?.zones ?? []).filter((z) => z.management).map((z) => z.name));
      for (const e of obs.endpoints) {
        const outside = e.reachableFrom.filter((z) => !management.has(z));
        if (outside.length)
          report(
            `${e.name} (tcp/${e.port}) is reachable from non-management zone${outside.length > 1 ? "s" : ""} ${outside.join(", ")} (allowed: management zones only)`,
            urn,
          );
      }
      for (const r of obs.receivers) {
        const c = r.credential;
        if (!c) continue;
        if (!c.set)
          report(
            `alert receiver ${r.name} sends ${c.key} but it is not set (allowed: pulumi config set --secret ${c.key} …)`,
            urn,
          );
        else if (!c.pulumiSecret)
          report(
            `alert receiver ${r.name} sends ${c.key} as a plain value (allowed: a Pulumi secret, pulumi config set --secret ${c.key} …)`,
            urn,
          );
      }
    },
  };
}
