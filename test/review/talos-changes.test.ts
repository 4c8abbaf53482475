/**
 * Which machine-configuration changes the try path can apply and which need a reboot, as Talos' CanApplyImmediate
 * decides (cli/talos-changes.ts cites it): multi-documents apply immediately; v1alpha1 fields outside its list
 * (the trustd token, machine.features.diskQuotaSupport, machine.files) need a reboot.
 */
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { bgpSessionChanges, changedPaths, talosChanges } from "../../cli/talos-changes";
import { renderRoutingHost } from "../../components/network-services/routing";
import { devSite, type Raw } from "../helpers/dev-site";

const v1 = (machine: Record<string, unknown>, cluster: Record<string, unknown> = {}) =>
  stringify({ version: "v1alpha1", machine: { type: "controlplane", ...machine }, cluster });
const doc = (kind: string, name: string, body: Record<string, unknown>) =>
  stringify({ apiVersion: "v1alpha1", kind, name, ...body });
const stream = (...docs: string[]) => docs.join("---\n");

describe("machine-configuration changes", () => {
  it("lists documents added, removed and changed, all through the try path when v1alpha1 keeps its fields", () => {
    const before = stream(
      v1({ certSANs: ["a"] }),
      doc("VLANConfig", "lan0.10", { vlanID: 10 }),
      doc("LinkConfig", "wan0", { up: true }),
    );
    const after = stream(
      v1({ certSANs: ["a", "b"] }, { etcd: { advertisedSubnets: ["10.0.0.0/24"] } }),
      doc("VLANConfig", "lan0.10", { vlanID: 11 }),
      doc("VLANConfig", "lan0.20", { vlanID: 20 }),
    );
    expect(talosChanges(before, after)).toEqual({
      added: ["VLANConfig/lan0.20"],
      removed: ["LinkConfig/wan0"],
      changed: ["VLANConfig/lan0.10", "v1alpha1"],
      needsReboot: [],
    });
  });

  it("says which v1alpha1 fields need a reboot (the try path refuses them)", () => {
    const before = stream(v1({ token: "t1", features: { diskQuotaSupport: true, kubePrism: { enabled: true } } }));
    const after = stream(
      v1({
        token: "t2",
        features: { diskQuotaSupport: false, kubePrism: { enabled: false } },
        files: [{ path: "/var/f" }],
      }),
    );
    expect(talosChanges(before, after).needsReboot).toEqual([
      "machine.features.diskQuotaSupport",
      "machine.files",
      "machine.token",
    ]);
  });

  it("compares nested values by path", () => {
    expect(changedPaths({ a: { b: 1, c: [1] } }, { a: { b: 2, c: [1] }, d: 1 })).toEqual(["a.b", "d"]);
  });
});

/** The BGPInstanceConfig the program renders for the dev site with these BGP settings. */
function bgpStream(bgp: Record<string, unknown>): string {
  const s = devSite((raw: Raw) => {
    raw.routing = { bgp };
  });
  return stream(v1({}), ...renderRoutingHost(s.site, s.plan).documents.map((d) => stringify(d)));
}

describe("BGP sessions a change restarts, ends or starts", () => {
  const base = {
    asn: 65010,
    routerId: "10.50.0.1",
    neighbors: [
      { address: "10.50.0.250", asn: 65020, bfd: true },
      { address: "fd12:3456:789a:50::fe", asn: 65030 },
    ],
    advertise: ["servers"],
  };

  it("a neighbour's AS or BFD restarts its session only; what the router advertises restarts none", () => {
    const after = {
      ...base,
      neighbors: [
        { address: "10.50.0.250", asn: 65021, bfd: true, description: "now described" },
        { address: "fd12:3456:789a:50::fe", asn: 65030, bfd: true },
      ],
      advertise: ["servers", "trusted"],
    };
    expect(bgpSessionChanges(bgpStream(base), bgpStream(after))).toEqual({
      restart: [
        { neighbour: "10.50.0.250", why: ["peerASN 65020 → 65021"] },
        { neighbour: "fd12:3456:789a:50::fe", why: ["bfd unset → {}"] },
      ],
      end: [],
      start: [],
    });
  });

  it("a new router id or AS restarts every session of the instance; removed and added neighbours end and start", () => {
    const after = {
      ...base,
      routerId: "10.50.0.2",
      neighbors: [base.neighbors[0], { address: "10.50.0.251", asn: 65040 }],
    };
    expect(bgpSessionChanges(bgpStream(base), bgpStream(after))).toEqual({
      restart: [{ neighbour: "10.50.0.250", why: ["routerID 10.50.0.1 → 10.50.0.2"] }],
      end: ["fd12:3456:789a:50::fe"],
      start: ["10.50.0.251"],
    });
  });

  it("turning BGP on starts every session, turning it off ends them, an unchanged site touches none", () => {
    const none = stream(v1({}));
    expect(bgpSessionChanges(none, bgpStream(base))).toEqual({
      restart: [],
      end: [],
      start: ["10.50.0.250", "fd12:3456:789a:50::fe"],
    });
    expect(bgpSessionChanges(bgpStream(base), none).end).toEqual(["10.50.0.250", "fd12:3456:789a:50::fe"]);
    expect(bgpSessionChanges(bgpStream(base), bgpStream(base))).toEqual({ restart: [], end: [], start: [] });
  });
});
