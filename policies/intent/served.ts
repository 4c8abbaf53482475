/**
 * A zone told to use the router's DNS or NTP is served by it: if a segment's DHCP or router advertisements hand
 * out one of the router's own addresses as DNS (or NTP) server, a layer of the router must actually run that
 * service for the segment's zone (the DNS layer for DNS, chrony for NTP) and the zone policy must let the zone
 * reach it — otherwise every client of the segment is sent to a server that does not answer. Both services have
 * their layer (the DNS stack publishes the zones its front answers, NetworkServices those chrony serves), so the
 * check is mandatory; a program without the layer of a service is told so.
 */
import type { EnforcementLevel, StackValidationPolicy } from "@pulumi/policy";
import { requireModel, segmentUrn } from "../lib";

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
          report(
            `segment ${seg.name} tells its clients to use the router (${own.join(", ")}) for ${service.toUpperCase()}, but ${problems.join(" and ")} (allowed: serve ${service} to the zone, or hand out other servers)`,
            segmentUrn(args, seg.name),
          );
        }
      }
    },
  };
}
