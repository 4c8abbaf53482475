/**
 * Which machine-configuration changes the try path can apply and which need a reboot, as Talos' CanApplyImmediate
 * decides (cli/talos-changes.ts cites it): multi-documents apply immediately; v1alpha1 fields outside its list
 * (the trustd token, machine.features.diskQuotaSupport, machine.files) need a reboot.
 */
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { changedPaths, talosChanges } from "../../cli/talos-changes";

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
