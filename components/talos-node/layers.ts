/**
 * The machine configuration split by layer, as a reviewer reads it: every document of the stream, every kernel
 * parameter and every extension-service file belongs to exactly one layer (the node's own, segments, firewall,
 * data plane, routing, …), rendered with secrets as placeholders. TalosNode shows each layer as a
 * `router:talos:ConfigLayer` whose inputs are this content, so a preview names the layer a change touches (a
 * firewall rule is a line of the firewall layer's ruleset) instead of one opaque secret stream. Pure.
 */
import { createHash } from "node:crypto";
import {
  CONFIG_LAYERS,
  documentId,
  type ConfigLayerName,
  type HostContribution,
  type TalosDocument,
} from "./documents";
import { FIREWALL_KINDS } from "./firewall";
import { nodeDocuments, routerSysctls, v1alpha1Document, type MachineConfigInput } from "./machine-config";

/** One layer's share of the machine configuration. */
export interface ConfigLayerContent {
  layer: ConfigLayerName;
  /**
   * Documents by `kind/name` (the legacy document as `v1alpha1`; a layer's part of it, such as its log destinations,
   * as `v1alpha1:<field>`), secrets as placeholders.
   */
  documents: Record<string, Record<string, unknown>>;
  /** Kernel parameters the layer sets (Talos gets them merged into one SysctlConfig). */
  sysctls: Record<string, string>;
  /** Files the layer adds to an extension service configured by another layer, by `service:mountPath`. */
  files: Record<string, string>;
}

/** The layers present for these contributions, in reading order: always the node and its backstop firewall. */
export function layerNames(contributions: readonly HostContribution[]): ConfigLayerName[] {
  const present = new Set<ConfigLayerName>(["node", "firewall", ...contributions.map((c) => c.layer)]);
  return CONFIG_LAYERS.filter((l) => present.has(l));
}

function sortedRecord<T>(entries: [string, T][]): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true })));
}

/**
 * Splits the configuration `renderMachineConfig(input)` would render into its layers. Pass redacted secrets:
 * the content is what a preview shows.
 */
export function configLayers(input: MachineConfigInput): ConfigLayerContent[] {
  const contributions = input.contributions ?? [];
  const docs = new Map<ConfigLayerName, [string, Record<string, unknown>][]>();
  const sysctls = new Map<ConfigLayerName, [string, string][]>();
  const files = new Map<ConfigLayerName, [string, string][]>();
  const push = <T>(m: Map<ConfigLayerName, T[]>, layer: ConfigLayerName, v: T) =>
    m.set(layer, [...(m.get(layer) ?? []), v]);

  // A layer's log destinations live in the v1alpha1 document (machine.logging): shown in that layer, not the node's.
  const withoutLogging = contributions.map(({ logging: _logging, ...c }) => c);
  push(docs, "node", ["v1alpha1", v1alpha1Document({ ...input, contributions: withoutLogging })]);
  for (const d of nodeDocuments(input))
    push(docs, FIREWALL_KINDS.has(d.kind) ? "firewall" : "node", [documentId(d), d as TalosDocument]);
  for (const kv of Object.entries(routerSysctls())) push(sysctls, "node", kv);
  for (const c of contributions) {
    for (const d of c.reviewDocuments ?? c.documents) push(docs, c.layer, [documentId(d), d]);
    for (const kv of Object.entries(c.sysctls ?? {})) push(sysctls, c.layer, kv);
    for (const f of c.serviceFiles ?? []) push(files, c.layer, [`${f.service}:${f.mountPath}`, f.content]);
    if (c.logging?.destinations.length) push(docs, c.layer, ["v1alpha1:machine.logging", { ...c.logging }]);
  }
  return layerNames(contributions).map((layer) => ({
    layer,
    documents: sortedRecord(docs.get(layer) ?? []),
    sysctls: sortedRecord(sysctls.get(layer) ?? []),
    files: sortedRecord(files.get(layer) ?? []),
  }));
}

/** SHA-256 of a layer's content: equal exactly when the content is. */
export function layerDigest(l: ConfigLayerContent): string {
  return createHash("sha256").update(JSON.stringify(l)).digest("hex");
}
