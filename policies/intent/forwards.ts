/**
 * Every port forward lands in a zone that accepts published services: inside a segment, never in a management
 * zone (that would put the router's own management plane one hop from the internet), never in a WAN zone, and
 * — unless the pack config names the zones that may publish (`forwardZones`) — not in an untrusted zone.
 */
import type { EnforcementLevel, StackValidationPolicy } from "@pulumi/policy";
import { firewallUrn, requireModel } from "../lib";
import { DEFAULT_UNTRUSTED_ZONES } from "./untrusted";

export function forwardTargetsAcceptingZones(enforcementLevel: EnforcementLevel = "mandatory"): StackValidationPolicy {
  return {
    name: "forward-targets-in-accepting-zones",
    description: "Every port forward's target is in a zone that accepts published services.",
    enforcementLevel,
    configSchema: {
      properties: {
        forwardZones: { type: "array", items: { type: "string" } },
        untrustedZones: { type: "array", items: { type: "string" }, default: DEFAULT_UNTRUSTED_ZONES },
      },
    },
    validateStack: (args, report) => {
      const fw = requireModel(args).firewall;
      if (!fw) return args.notApplicable("no firewall facts");
      const urn = firewallUrn(args);
      const cfg = args.getConfig<{ forwardZones?: string[]; untrustedZones?: string[] }>();
      const untrusted = cfg.untrustedZones ?? DEFAULT_UNTRUSTED_ZONES;
      const zones = new Map(fw.zones.map((z) => [z.name, z]));
      const accepting = fw.zones
        .filter(
          (z) =>
            !z.wan &&
            !z.management &&
            (cfg.forwardZones ? cfg.forwardZones.includes(z.name) : !untrusted.includes(z.name)),
        )
        .map((z) => z.name);
      for (const f of fw.forwards) {
        const targets: [string, string | null][] = [
          [f.to, f.toZone],
          ...(f.ipv6 ? [[f.ipv6, f.ipv6Zone ?? null] as [string, string | null]] : []),
        ];
        for (const [target, zone] of targets) {
          if (zone !== null && accepting.includes(zone)) continue;
          const why =
            zone === null
              ? "is in no segment"
              : zones.get(zone)?.management
                ? `is in the management zone ${zone}`
                : zones.get(zone)?.wan
                  ? `is in the WAN zone ${zone}`
                  : `is in zone ${zone}, which does not accept published services`;
          report(
            `port forward ${f.name} (${f.protocol}/${f.port}) sends the internet to ${target}, which ${why} (allowed: a host in ${accepting.join(", ") || "a zone that accepts forwards"})`,
            urn,
          );
        }
      }
    },
  };
}
