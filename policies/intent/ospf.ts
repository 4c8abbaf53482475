/**
 * OSPF on a segment with clients runs with authentication: the firewall must open OSPF to every host of an active
 * OSPF segment (OSPF has no configured neighbours), so without a key any client there can announce routes inside
 * routing.ospf.accept to the router. A segment that leases addresses (DHCPv4 or DHCPv6 pools) has clients.
 * Advisory: a lab may mean it, and the install filter still keeps the default route and the router's own subnets.
 */
import type { EnforcementLevel, StackValidationPolicy } from "@pulumi/policy";
import { requireModel, segmentUrn } from "../lib";

export function ospfAuthenticatedWhereClientsAre(
  enforcementLevel: EnforcementLevel = "advisory",
): StackValidationPolicy {
  return {
    name: "ospf-authenticated-where-clients-are",
    description: "OSPF runs with authentication on every segment that leases addresses to clients.",
    enforcementLevel,
    validateStack: (args, report) => {
      const model = requireModel(args);
      const ospf = model.routing?.ospf;
      if (!ospf) return args.notApplicable("the stack runs no OSPF");
      // facts of a program before authentication existed have none: it had none
      if ((ospf.authentication ?? "none") !== "none") return;
      for (const seg of model.segments) {
        if (!ospf.segments.includes(`${seg.name} (${seg.link})`) || seg.pools.length === 0) continue;
        report(
          `segment ${seg.name} runs OSPF without authentication and leases addresses to clients (${seg.pools.join(", ")}): any of them can announce routes inside routing.ospf.accept to the router (allowed: set routing.ospf.authentication with the secret router:ospfKey, or run OSPF on a segment without pools)`,
          segmentUrn(args, seg.name),
        );
      }
    },
  };
}
