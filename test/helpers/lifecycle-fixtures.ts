/**
 * A real rendered machine configuration (the dev site, Talos' test secrets bundle, the data plane's host side) and
 * the matching admin talosconfig, with canary secrets, for the lifecycle scripts against the fake node.
 */
import { renderMachineConfig } from "../../components/talos-node/machine-config";
import { renderTalosconfig } from "../../components/talos-node/talosconfig";
import { renderSegmentHost } from "../../components/vlan-segment/host";
import { renderDataplaneHost } from "../../components/dataplane/host";
import { renderRuleset } from "../../components/dataplane/nftables";
import {
  bgpNeighbourChecks,
  dataplaneHealth,
  ospfAdjacencyCheck,
  segmentLinks,
} from "../../components/talos-node/health";
import { renderRoutingHost } from "../../components/network-services/routing";
import { diskSelector, renderCel, renderJq } from "../../components/talos-node/disk-selector";
import { randomBytes } from "node:crypto";
import type { HealthChecks, InstallIdentity, NodeTarget } from "../../components/talos-node/scripts";
import type { BgpNeighbour, Disk, Identity, NodeOptions, OspfNeighbour } from "./fake-node";
import { devSite, type Raw } from "./dev-site";
import { fixtureSecrets } from "./talos-fixtures";

/**
 * Canary secrets, fresh in every test process: a scan for a leaked secret must not find the literal in a source
 * file or in a test runner's transform cache of one.
 */
export const CANARY = {
  registry: `canary-registry-password-${randomBytes(6).toString("hex")}`,
  adminKey: `canary-admin-key-${randomBytes(6).toString("hex")}`,
  kubeconfigKey: `canary-kubeconfig-client-key-${randomBytes(6).toString("hex")}`,
};

export const target: NodeTarget = { address: "10.10.0.1", maintenanceAddress: "192.168.1.150", healthTimeout: 5 };

const GiB = 1024 ** 3;
/** The dev site's box: its three NICs, an NVMe system disk, a SATA data disk and the USB stick it booted from. */
export function devBox(): Identity {
  return {
    links: [
      { name: "enp1s0", permanentAddr: "00:1a:2b:3c:4d:01" },
      { name: "enp2s0", permanentAddr: "00:1a:2b:3c:4d:02" },
      { name: "enp3s0", permanentAddr: "00:1a:2b:3c:4d:03" },
      { name: "wlan0", permanentAddr: "00:1a:2b:3c:4d:99" },
    ],
    disks: [
      nvme("/dev/nvme0n1", 256, "Samsung SSD 980", "S64ANS0T1"),
      {
        dev_path: "/dev/sda",
        size: 2000 * GiB,
        readonly: false,
        cdrom: false,
        model: "WDC WD20",
        serial: "WD-1",
        transport: "sata",
        rotational: true,
      },
      {
        dev_path: "/dev/sdb",
        size: 16 * GiB,
        readonly: false,
        cdrom: false,
        model: "Flash Disk",
        serial: "USB1",
        transport: "usb",
      },
    ],
    certFingerprint: "pLkYHFzO3b0u0VJ1VbOfT1xRjzN3L2H5hD0w6mqf0xU=",
  };
}

export function nvme(path: string, gib: number, model: string, serial: string): Disk {
  return { dev_path: path, size: gib * GiB, readonly: false, cdrom: false, model, serial, transport: "nvme" };
}

export interface Rendered {
  /** The machine configuration as the program renders it (with canary secrets). */
  config: string;
  /** What the health checks expect of the data plane. */
  checks: HealthChecks;
  /** The install identity the program derives from the site. */
  identity: InstallIdentity;
}

/** The dev site rendered, optionally edited (a firewall change, …). */
export function rendered(edit?: (raw: Raw) => void): Rendered {
  const s = devSite(edit);
  const nftRuleset = renderRuleset(s.site, s.plan, s.policy);
  const contributions = [
    ...s.plan.segments.map(renderSegmentHost),
    ...renderDataplaneHost(s.site, s.plan, { nftRuleset }),
    renderRoutingHost(s.site, s.plan),
  ];
  const config = renderMachineConfig({
    site: s.site,
    plan: s.plan,
    secrets: fixtureSecrets(),
    contributions,
    registryPassword: CANARY.registry,
  });
  const sel = diskSelector(s.site.node.installDisk);
  return {
    config,
    checks: {
      dataplane: dataplaneHealth(contributions, s.site.dataplane.metricsPort),
      segments: segmentLinks(s.plan.segments),
      bgp: bgpNeighbourChecks(s.site),
      ospf: ospfAdjacencyCheck(s.site, s.plan),
    },
    identity: {
      macs: s.site.node.nics.map((n) => n.mac),
      diskFilter: renderJq(sel),
      diskCel: renderCel(sel),
      certFingerprint: s.site.node.maintenanceCertFingerprint,
    },
  };
}

/** The site admin's talosconfig: the OS CA of the fixture bundle plus a (canary) client certificate. */
export function talosconfig(): string {
  return renderTalosconfig({
    context: "lab",
    endpoints: [target.address],
    caPem: fixtureSecrets().os.crt as string,
    crtPem: "-----BEGIN CERTIFICATE-----\nadmin\n-----END CERTIFICATE-----\n",
    keyPem: `-----BEGIN PRIVATE KEY-----\n${CANARY.adminKey}\n-----END PRIVATE KEY-----\n`,
  });
}

/** Fake node options for the dev box; `installed` runs the given configuration already. */
export function nodeOptions(over: Partial<NodeOptions> = {}): NodeOptions {
  return {
    managementAddress: target.address,
    maintenanceAddress: target.maintenanceAddress,
    metricsPort: 9430,
    identity: devBox(),
    kubeconfig: "apiVersion: v1\nkind: Config\nclusters: []\n# fake kubeconfig\n",
    rebootMs: 300,
    ...over,
  };
}

/** An edit of the dev site that changes only the firewall ruleset (a multi-document change: it can be tried). */
export function firewallChange(raw: Raw): void {
  raw.firewall.rules = [
    ...raw.firewall.rules,
    { name: "lifecycle-test", from: "trusted", to: "iot", protocol: "tcp", ports: [8443], action: "accept" },
  ];
}

/**
 * An edit of the dev site: eBGP (AS 65010) with two neighbours on its servers segment, 10.50.0.250 (AS 65020, BFD
 * on unless `bfd` is false) and fd12:3456:789a:50::fe (AS 65030).
 */
export function withBgp(raw: Raw, over: { asn?: number; routerId?: string; bfd?: boolean } = {}): void {
  raw.routing = {
    bgp: {
      asn: 65010,
      routerId: over.routerId ?? "10.50.0.1",
      neighbors: [
        { address: "10.50.0.250", asn: over.asn ?? 65020, bfd: over.bfd ?? true, description: "transit" },
        { address: "fd12:3456:789a:50::fe", asn: 65030 },
      ],
      advertise: ["trusted", "servers"],
    },
  };
}

/**
 * An edit of the dev site: OSPF on its servers (lan0.50, 10.50.0.0/24) and trusted (lan0.20) segments, the other
 * segments redistributed.
 */
export function withOspf(raw: Raw): void {
  raw.routing = {
    ...raw.routing,
    ospf: { routerId: "10.10.0.1", segments: ["servers", "trusted"], redistribute: ["connected"] },
  };
}

/** The routers around withOspf's router: one on servers, one on trusted. */
export const OSPF_NEIGHBOURS: OspfNeighbour[] = [
  { routerId: "10.50.0.254", address: "10.50.0.254", interface: "lan0.50" },
  { routerId: "10.20.0.253", address: "10.20.0.253", interface: "lan0.20" },
];

/** The routers on the other side of withBgp's sessions, both answering and expecting this router's AS 65010. */
export const BGP_NEIGHBOURS: BgpNeighbour[] = [
  { address: "10.50.0.250", asn: 65020, peerAsn: 65010, bfd: true, routerId: "10.50.0.250", prefixes: 3 },
  { address: "fd12:3456:789a:50::fe", asn: 65030, peerAsn: 65010, routerId: "10.50.0.254", prefixes: 1 },
];
