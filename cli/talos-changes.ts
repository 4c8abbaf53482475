/**
 * What a machine-configuration change means for the node: applied through the try path without a reboot, or
 * refused by the try path because Talos applies it only with a reboot. Talos decides in CanApplyImmediate
 * (siderolabs/talos internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_runtime.go, read for 1.14): it
 * compares only the legacy `v1alpha1` document, after copying into the new one the fields that may change
 * immediately (listed below); every other document kind (VLANConfig, ExtensionServiceConfig, …) is applied
 * immediately. Any other difference in the v1alpha1 document is refused by `apply-config --mode=try` with
 * InvalidArgument ("this config change can't be applied in immediate mode"), which our apply turns into a
 * failed update that changed nothing. Pure.
 */
import { parseAllDocuments } from "yaml";

/** v1alpha1 fields CanApplyImmediate lets change without a reboot (YAML names of the Go fields it copies). */
export const IMMEDIATE_V1ALPHA1_PATHS = [
  "debug",
  "cluster",
  "machine.ca",
  "machine.acceptedCAs",
  "machine.time",
  "machine.certSANs",
  "machine.install",
  "machine.network",
  "machine.sysfs",
  "machine.sysctls",
  "machine.logging",
  "machine.controlPlane",
  "machine.kubelet",
  "machine.kernel",
  "machine.registries",
  "machine.pods",
  "machine.seccompProfiles",
  "machine.nodeAnnotations",
  "machine.nodeLabels",
  "machine.nodeTaints",
  "machine.features.kubernetesTalosAPIAccess",
  "machine.features.kubePrism",
  "machine.features.hostDNS",
  "machine.features.imageCache",
  "machine.features.nodeAddressSortAlgorithm",
];

/** Documents of a machine-configuration stream by `kind/name` (the legacy document as `v1alpha1`). */
export function documentsOf(stream: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const d of parseAllDocuments(stream)) {
    const v = d.toJS() as Record<string, unknown> | null;
    if (!v) continue;
    out.set(v.kind ? `${String(v.kind)}/${String(v.name ?? "")}` : "v1alpha1", v);
  }
  return out;
}

/** Dotted paths where two values differ (leaves, or a whole subtree that exists on one side only). */
export function changedPaths(a: unknown, b: unknown, path = ""): string[] {
  const isObj = (x: unknown) => !!x && typeof x === "object" && !Array.isArray(x);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
    return keys.flatMap((k) =>
      changedPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k),
    );
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [path];
}

function immediate(path: string): boolean {
  return IMMEDIATE_V1ALPHA1_PATHS.some((p) => path === p || path.startsWith(`${p}.`));
}

export interface TalosChanges {
  /** `kind/name` of documents added, removed or changed (applied through the try path). */
  added: string[];
  removed: string[];
  changed: string[];
  /** v1alpha1 fields that changed and need a reboot: the try path refuses them. */
  needsReboot: string[];
}

/** Classifies the differences between two machine-configuration streams. */
export function talosChanges(before: string, after: string): TalosChanges {
  const a = documentsOf(before);
  const b = documentsOf(after);
  const ids = [...new Set([...a.keys(), ...b.keys()])].sort();
  const out: TalosChanges = { added: [], removed: [], changed: [], needsReboot: [] };
  for (const id of ids) {
    if (!a.has(id)) out.added.push(id);
    else if (!b.has(id)) out.removed.push(id);
    else if (JSON.stringify(a.get(id)) !== JSON.stringify(b.get(id))) out.changed.push(id);
  }
  if (a.has("v1alpha1") && b.has("v1alpha1"))
    out.needsReboot = changedPaths(a.get("v1alpha1"), b.get("v1alpha1")).filter((p) => !immediate(p));
  return out;
}
