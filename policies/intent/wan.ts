/**
 * Nothing from the WAN reaches an internal zone except through a declared port forward: no zone-pair policy,
 * default or rule accepts new connections from a WAN zone (or from `any`, which includes it) into a LAN zone.
 * Forwards are the reviewed way to publish a service (their own policy checks where they land).
 */
import type { EnforcementLevel, StackValidationPolicy } from "@pulumi/policy";
import { firewallUrn, requireModel } from "../lib";

export function wanAcceptsOnlyForwards(enforcementLevel: EnforcementLevel = "mandatory"): StackValidationPolicy {
  return {
    name: "wan-accepts-only-forwards",
    description: "No WAN → internal accept other than declared port forwards.",
    enforcementLevel,
    validateStack: (args, report) => {
      const fw = requireModel(args).firewall;
      if (!fw) return args.notApplicable("no firewall facts");
      const urn = firewallUrn(args);
      const wans = fw.zones.filter((z) => z.wan).map((z) => z.name);
      const lans = fw.zones.filter((z) => !z.wan).map((z) => z.name);
      for (const c of fw.matrix)
        if (wans.includes(c.from) && lans.includes(c.to) && c.verdict === "accept")
          report(
            `${c.from} → ${c.to} accepts every new connection from the internet (allowed: drop or reject; publish a service with a port forward)`,
            urn,
          );
      for (const r of fw.rules) {
        if (r.action !== "accept") continue;
        const from = r.from === "any" ? wans : r.from.filter((z) => wans.includes(z));
        const to = r.to === "any" ? lans : r.to.filter((z) => lans.includes(z));
        if (from.length && to.length)
          report(
            `rule ${r.name} accepts new connections from ${from.join(", ")} into ${to.join(", ")} (allowed: no accept rule from a WAN zone into an internal zone; publish a service with a port forward)`,
            urn,
          );
      }
    },
  };
}
