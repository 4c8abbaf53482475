/**
 * Untrusted zones (guest, IoT by default; pack config `untrustedZones`) never get any → any: no accept policy
 * from the zone to `any` (nor `any → any`), no accept rule from it to every zone for every protocol and port,
 * and no set of policies that together accept it into every other zone.
 */
import type { EnforcementLevel, StackValidationPolicy } from "@pulumi/policy";
import { firewallUrn, requireModel } from "../lib";

export const DEFAULT_UNTRUSTED_ZONES = ["guest", "iot"];

export function untrustedZonesNotAnyToAny(enforcementLevel: EnforcementLevel = "mandatory"): StackValidationPolicy {
  return {
    name: "untrusted-zones-not-any-to-any",
    description: "No any → any accept from guest or IoT zones.",
    enforcementLevel,
    configSchema: {
      properties: {
        untrustedZones: { type: "array", items: { type: "string" }, default: DEFAULT_UNTRUSTED_ZONES },
      },
    },
    validateStack: (args, report) => {
      const fw = requireModel(args).firewall;
      if (!fw) return args.notApplicable("no firewall facts");
      const urn = firewallUrn(args);
      const untrusted = args.getConfig<{ untrustedZones?: string[] }>().untrustedZones ?? DEFAULT_UNTRUSTED_ZONES;
      const zones = fw.zones.map((z) => z.name).filter((z) => untrusted.includes(z));
      for (const z of zones) {
        for (const key of [`${z}>any`, "any>any"])
          if (fw.policies[key] === "accept")
            report(
              `the zone policy ${key.replace(">", " → ")} accepts everything from the untrusted zone ${z} (allowed: accept only toward the zones it needs, e.g. ${z} → wan)`,
              urn,
            );
        for (const r of fw.rules)
          if (
            r.action === "accept" &&
            (r.from === "any" || r.from.includes(z)) &&
            r.to === "any" &&
            r.protocols === "any" &&
            !r.ports &&
            !r.addressed
          )
            report(
              `rule ${r.name} accepts any protocol and port from the untrusted zone ${z} to every zone (allowed: rules naming their zones, protocols or ports)`,
              urn,
            );
        const others = fw.zones.filter((o) => o.name !== z).map((o) => o.name);
        const open = others.filter((o) => fw.matrix.some((c) => c.from === z && c.to === o && c.verdict === "accept"));
        if (others.length > 1 && open.length === others.length)
          report(
            `the untrusted zone ${z} is accepted into every other zone (${open.join(", ")}) (allowed: at least the management zone closed to it)`,
            urn,
          );
      }
    },
  };
}
