/**
 * VlanSegment: one segment end to end. Its host side (the VLAN link on the trunk with the router's gateway
 * addresses and routes through the segment) goes into the node's machine configuration; its share of the shared
 * services (its DHCP subnets, router advertisements and NTP clients: services.ts, which NetworkServices
 * assembles into the daemons' configurations) and its DNS records (data for the DNS layer) derive from the same
 * plan. The component itself owns no cloud object: it is the segment's node in the plan, with its addressing as
 * outputs.
 */
import * as pulumi from "@pulumi/pulumi";
import type { Site } from "../site/schema";
import type { SegmentPlan, SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import type { HostContribution } from "../talos-node/documents";
import { renderSegmentHost } from "./host";
import { dnsRecords, keaSubnet6, ntpAllows, radvdInterface, type DnsRecord } from "./services";
import { renderSegmentFacts } from "./review";

export interface VlanSegmentArgs {
  /** The validated site. */
  site: Site;
  /** Facts derived from the site. */
  plan: SitePlan;
  /** The segment. */
  segment: SegmentPlan;
  /** The compiled zone policy (which router services the segment's zone gets). */
  policy: PolicyModel;
}

export class VlanSegment extends pulumi.ComponentResource {
  /** The segment's pieces of the machine configuration. */
  readonly host: HostContribution;
  /** Names the DNS layer publishes for the segment. */
  readonly dnsRecords: DnsRecord[];

  constructor(name: string, args: VlanSegmentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("router:network:VlanSegment", name, {}, opts);
    const { site, plan, segment: seg, policy } = args;
    this.host = renderSegmentHost(seg);
    this.dnsRecords = dnsRecords(plan, seg);
    this.registerOutputs({
      link: seg.link,
      vlan: seg.vlan,
      zone: seg.zone,
      ipv4: seg.ipv4?.cidr ?? null,
      gateway4: seg.ipv4?.gateway ?? null,
      ipv6: seg.ipv6?.prefix ?? null,
      gateway6: seg.ipv6?.gateway ?? null,
      dhcpPool: seg.dhcp.pool ? `${seg.dhcp.pool.start}-${seg.dhcp.pool.end}` : null,
      dhcpv6: keaSubnet6(site, plan, seg) !== undefined,
      routerAdvertisements: radvdInterface(site, seg) !== undefined,
      ntpServed: ntpAllows(policy, seg).length > 0,
      dnsRecords: this.dnsRecords,
      review: { segment: renderSegmentFacts(site, plan, policy, seg) },
    });
  }
}
