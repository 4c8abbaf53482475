/**
 * The management zone keeps the Talos and Kubernetes APIs: whatever the zone policy says, a host in every
 * management zone can reach the Talos API, trustd and the Kubernetes API on the router — the path every later
 * change and every recovery goes through.
 */
import type { EnforcementLevel, StackValidationPolicy } from "@pulumi/policy";
import { firewallUrn, requireModel } from "../lib";

export function managementKeepsApis(enforcementLevel: EnforcementLevel = "mandatory"): StackValidationPolicy {
  return {
    name: "management-keeps-apis",
    description: "Every management zone reaches the Talos API, trustd and the Kubernetes API on the router.",
    enforcementLevel,
    validateStack: (args, report) => {
      const fw = requireModel(args).firewall;
      if (!fw) return args.notApplicable("no firewall facts");
      const urn = firewallUrn(args);
      const zones = fw.zones.filter((z) => z.management);
      if (zones.length === 0)
        report(
          "no zone is a management zone, so nothing can reach the Talos and Kubernetes APIs (allowed: at least one zone with management: true)",
          urn,
        );
      for (const z of zones) {
        const access = fw.managementAccess.filter((a) => a.zone === z.name);
        if (access.length === 0)
          report(
            `management zone ${z.name} has no segment, so no host can reach the Talos and Kubernetes APIs from it (allowed: a segment in it)`,
            urn,
          );
        for (const a of access.filter((x) => x.verdict !== "accept"))
          report(
            `management zone ${a.zone} would lose the ${a.service} (tcp/${a.port}): the zone policy answers ${a.verdict} (allowed: accept from every management zone)`,
            urn,
          );
      }
    },
  };
}
