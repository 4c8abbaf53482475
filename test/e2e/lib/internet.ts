/**
 * The virtual appliance's outside world: two ISPs and one internet host. Every address here is public-looking
 * on purpose: the XDP guard drops bogon sources (RFC 1918, CGNAT, TEST-NETs, 2001:db8::/32, ULA …) on the WAN by
 * design, so an internet built from documentation ranges would be dropped before it reached anything.
 */
import { nthAddress } from "../../../components/site/ip";

export interface IspSpec {
  name: string;
  /** Customer link (the router's WAN) when the site's WAN uses DHCP. */
  customer4: string;
  gateway4: string;
  /** The address the ISP's DHCP server leases to the router (a static lease by the WAN's MAC). */
  lease4: string;
  /** Prefix advertised on the customer link when the WAN does SLAAC. */
  customer6: string;
  gateway6: string;
  /** Point-to-point link to the internet host: ISP side, internet side. */
  transit4: [string, string];
  transit6: [string, string];
}

export const ISPS: readonly IspSpec[] = [
  {
    name: "isp1",
    customer4: "81.23.10.0/29",
    gateway4: "81.23.10.1",
    lease4: "81.23.10.2",
    customer6: "2a02:c207:1:10::/64",
    gateway6: "2a02:c207:1:10::1",
    transit4: ["81.23.0.1", "81.23.0.2"],
    transit6: ["2a02:c207:ff::1", "2a02:c207:ff::2"],
  },
  {
    name: "isp2",
    customer4: "89.44.20.0/29",
    gateway4: "89.44.20.1",
    lease4: "89.44.20.2",
    customer6: "2a03:b0c0:2:20::/64",
    gateway6: "2a03:b0c0:2:20::1",
    transit4: ["89.44.0.1", "89.44.0.2"],
    transit6: ["2a03:b0c0:ff::1", "2a03:b0c0:ff::2"],
  },
];

/** The internet host: servers, probe targets and the sources of traffic from the internet. */
export const INTERNET = {
  /** Where LAN clients connect to (iperf3, the NAT checks). */
  server4: "93.184.216.34",
  server6: "2a00:1450:4001:81b::200e",
  /** Sources of WAN-side probes: one per probe batch keeps per-source rate limits out of the results. */
  sourcePool4: "77.88.55.0/26",
  sourcePool6: "2a00:1450:4001:e2e::/64",
  /** Number of usable addresses taken from each source pool. */
  sourceCount: 60,
  /**
   * Sources of the IDS area's attacks and their benign neighbours (lib/areas/ids.ts), apart from the probe pool:
   * an attacker stays blocked at the XDP guard for the site's block duration.
   */
  idsPool4: "146.185.160.0/27",
  /** Internet addresses the hostile neighbour routes to the router: forwarding them would make it a transit. */
  transit4: "8.8.4.4",
  transit6: "2001:4860:4860::8844",
} as const;

/** The i-th WAN-side probe source of a family. */
export function internetSource(family: 4 | 6, i: number): string {
  if (i < 0 || i >= INTERNET.sourceCount) throw new Error(`internet source ${i} out of range`);
  return nthAddress(family === 4 ? INTERNET.sourcePool4 : INTERNET.sourcePool6, i + 1);
}
