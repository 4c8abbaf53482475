/**
 * A zone told to use the router's DNS or NTP is served by it: if a segment's DHCP or router advertisements hand
 * out one of the router's own addresses as DNS (or NTP) server, a layer of the router must actually run that
 * service for the segment's zone (the DNS layer for DNS, chrony for NTP) and the zone policy must let the zone
 * reach it — otherwise every client of the segment is sent to a server that does not answer. While the program
 * has no layer for a service at all (DNS before the DNS layer), the finding is advisory.
 */
import type { EnforcementLevel, StackValidationPolicy } from "@pulumi/policy";
import { reportAdvisory, requireModel, segmentUrn } from "../lib";

export function routerDnsNtpServed(enforcementLevel: EnforcementLevel = "mandatory"): StackValidationPolicy {
  return {
    name: "router-dns-ntp-served",
    description: "Every zone told to use the router's DNS or NTP is served by it.",
    enforcementLevel,
    validateStack: (args, report) => {
      const model = requireModel(args);
      const router = new Set(model.segments.flatMap((s) => [s.gateway4, ...(s.gateway6 ? [s.gateway6] : [])]));
      const open = (zone: string) => new Set(model.firewall?.zones.find((z) => z.name === zone)?.services ?? []);
      for (const service of ["dns", "ntp"] as const) {
        const layers = model.served.filter((x) => x.service === service);
        const served = new Set(layers.flatMap((x) => x.zones));
        for (const seg of model.segments) {
          const own = (service === "dns" ? seg.dnsServers : seg.ntpServers).filter((a) => router.has(a));
          if (own.length === 0) continue;
          const problems: string[] = [];
          if (!served.has(seg.zone))
            problems.push(
              layers.length
                ? `no layer of the router serves ${service.toUpperCase()} to zone ${seg.zone}`
                : `the program has no layer that serves ${service.toUpperCase()} at all`,
            );
          if (!open(seg.zone).has(service))
            problems.push(`zone ${seg.zone} does not have the ${service} service, so the firewall refuses it`);
          if (problems.length === 0) continue;
          const message = `segment ${seg.name} tells its clients to use the router (${own.join(", ")}) for ${service.toUpperCase()}, but ${problems.join(" and ")} (allowed: serve ${service} to the zone, or hand out other servers)`;
          // Without any layer for the service the check waits for that layer: advisory, but shown on every render.
          if (layers.length === 0 && open(seg.zone).has(service))
            reportAdvisory(report, message, segmentUrn(args, seg.name));
          else report(message, segmentUrn(args, seg.name));
        }
      }
    },
  };
}
