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

/** What a change does to the node's BGP sessions, by neighbour address. */
export interface BgpSessionChanges {
  /** Sessions Talos starts over, each with why (`neighbour …: peerASN 65020 → 65021`, `router id …`). */
  restart: { neighbour: string; why: string[] }[];
  /** Neighbours removed: their sessions end. */
  end: string[];
  /** Neighbours added: new sessions. */
  start: string[];
}

interface BgpDoc {
  name?: string;
  localASN?: number;
  routerID?: string;
  multipath?: boolean;
  maxPaths?: number;
  vrf?: string;
  neighbors?: Record<string, unknown>[];
}

/**
 * Instance-wide fields whose change recreates Talos' GoBGP server, so that every session of the instance starts over
 * (internal/app/machined/pkg/controllers/network/internal/bgp/bgp.go ServerKey, instance.go EnsureServer).
 */
const SERVER_FIELDS = ["localASN", "routerID", "multipath", "maxPaths", "vrf"] as const;
/**
 * Neighbour fields whose change deletes and re-adds the peer, restarting its session (bgp.go PeerKey, instance.go
 * reconcilePeers). Anything else of a neighbour is not part of its session.
 */
const PEER_FIELDS = ["peerASN", "localASN", "passive", "holdTime", "bfd"] as const;

/**
 * The BGP sessions a machine-configuration change restarts, ends or starts, from its BGPInstanceConfig documents
 * (by instance name, neighbours by address).
 */
export function bgpSessionChanges(before: string, after: string): BgpSessionChanges {
  const instances = (stream: string) =>
    new Map(
      [...documentsOf(stream).values()]
        .filter((d) => (d as { kind?: string }).kind === "BGPInstanceConfig")
        .map((d) => [(d as BgpDoc).name ?? "default", d as BgpDoc]),
    );
  const a = instances(before);
  const b = instances(after);
  const out: BgpSessionChanges = { restart: [], end: [], start: [] };
  const text = (v: unknown) => (v === undefined ? "unset" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const differs = (x: Record<string, unknown>, y: Record<string, unknown>, fields: readonly string[]) =>
    fields
      .filter((f) => JSON.stringify(x[f]) !== JSON.stringify(y[f]))
      .map((f) => `${f} ${text(x[f])} → ${text(y[f])}`);
  const byAddress = (d: BgpDoc | undefined) =>
    new Map((d?.neighbors ?? []).map((n) => [String(n.address ?? `link/${String(n.link)}`), n]));
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const na = byAddress(a.get(name));
    const nb = byAddress(b.get(name));
    const server =
      a.has(name) && b.has(name)
        ? differs(a.get(name) as Record<string, unknown>, b.get(name) as Record<string, unknown>, SERVER_FIELDS)
        : [];
    for (const [address, n] of nb) {
      const old = na.get(address);
      if (!old) {
        out.start.push(address);
        continue;
      }
      const why = [...server, ...differs(old, n, PEER_FIELDS)];
      if (why.length) out.restart.push({ neighbour: address, why });
    }
    for (const address of na.keys()) if (!nb.has(address)) out.end.push(address);
  }
  return out;
}
