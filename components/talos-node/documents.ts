/**
 * The Talos machine configuration as data: one legacy `v1alpha1` document plus named multi-documents. Layers
 * contribute their host-side pieces (a segment's VLAN link, the data plane's service config) as documents and
 * kernel parameters; TalosNode assembles them into the one stream. Each contribution names the configuration
 * layer it belongs to, which a preview shows as its own `router:talos:ConfigLayer` resource.
 */

/** A Talos 1.14 multi-document (`apiVersion: v1alpha1`, `kind`, usually `name`). */
export interface TalosDocument {
  apiVersion: "v1alpha1";
  kind: string;
  name?: string;
  [field: string]: unknown;
}

/**
 * The layers of the machine configuration, in the order a reviewer reads them. `node` is what TalosNode renders
 * itself (identity, Kubernetes, system settings); the others are the layers that contribute host-side pieces. A
 * new layer with host-side documents adds its name here.
 */
export const CONFIG_LAYERS = [
  "node",
  "segments",
  "firewall",
  "dataplane",
  "routing",
  "dns",
  "ids",
  "observability",
] as const;
export type ConfigLayerName = (typeof CONFIG_LAYERS)[number];

/** A file a layer adds to an extension service whose ExtensionServiceConfig another layer contributes. */
export interface ServiceFile {
  /** The extension service (the ExtensionServiceConfig's name). */
  service: string;
  /** Where Talos mounts the file in the service's container. */
  mountPath: string;
  content: string;
}

/** What a layer adds to the node's machine configuration. */
export interface HostContribution {
  /** The configuration layer this comes from (its own ConfigLayer in a preview). */
  layer: ConfigLayerName;
  /** Named documents; a kind+name pair may appear once in the whole stream. */
  documents: TalosDocument[];
  /** Kernel parameters merged into the single SysctlConfig (slash form for per-link keys: net/ipv6/conf/lan0.10/accept_ra). */
  sysctls?: Record<string, string>;
  /** Files appended to another layer's ExtensionServiceConfig (the firewall's ruleset in the data plane's service). */
  serviceFiles?: ServiceFile[];
  /**
   * The documents as a reviewer reads them, where that differs from what is applied: a value derived from other
   * layers' content (a digest over every file of a service) is shown as a placeholder, so that its layer shows a
   * change only when its own content changes. Default: `documents`.
   */
  reviewDocuments?: TalosDocument[];
  /** Destinations of Talos' own service logs (`machine.logging`, which 1.14 keeps in the v1alpha1 document). */
  logging?: { destinations: LoggingDestination[] };
}

/** One `machine.logging.destinations` entry (JSON lines over TCP or UDP). */
export interface LoggingDestination {
  endpoint: string;
  format: "json_lines";
}

/** The merged stream content: documents (service files folded into their ExtensionServiceConfig), sysctls, logs. */
export interface MergedContributions {
  documents: TalosDocument[];
  sysctls: Record<string, string>;
  logging: { destinations: LoggingDestination[] };
}

/** `kind/name`: how a document is identified across the stream. */
export function documentId(d: TalosDocument): string {
  return `${d.kind}/${d.name ?? ""}`;
}

/** Folds service files into the ExtensionServiceConfig of their service; throws naming a missing service or a clash. */
function foldServiceFiles(documents: TalosDocument[], files: readonly ServiceFile[]): TalosDocument[] {
  const byService = new Map<string, ServiceFile[]>();
  for (const f of files) byService.set(f.service, [...(byService.get(f.service) ?? []), f]);
  const out = documents.map((d) => {
    const extra = d.kind === "ExtensionServiceConfig" ? byService.get(d.name ?? "") : undefined;
    if (!extra) return d;
    byService.delete(d.name ?? "");
    const own = (d.configFiles as { mountPath: string; content: string }[] | undefined) ?? [];
    for (const f of extra)
      if (own.some((o) => o.mountPath === f.mountPath))
        throw new Error(`two layers contribute ${f.mountPath} of the extension service ${f.service}`);
    return { ...d, configFiles: [...own, ...extra.map((f) => ({ content: f.content, mountPath: f.mountPath }))] };
  });
  for (const service of byService.keys())
    throw new Error(`a layer adds files to the extension service ${service}, which no layer configures`);
  return out;
}

/** Merges contributions; throws on a duplicate document or a kernel parameter set to two values. */
export function mergeContributions(parts: readonly HostContribution[]): MergedContributions {
  const documents: TalosDocument[] = [];
  const seen = new Set<string>();
  const sysctls: Record<string, string> = {};
  const destinations: LoggingDestination[] = [];
  for (const p of parts) {
    for (const d of p.documents) {
      const id = documentId(d);
      if (seen.has(id)) throw new Error(`two layers contribute the Talos document ${id}`);
      seen.add(id);
      documents.push(d);
    }
    for (const [k, v] of Object.entries(p.sysctls ?? {})) {
      if (k in sysctls && sysctls[k] !== v)
        throw new Error(`kernel parameter ${k} is set to both ${sysctls[k]} and ${v} by different layers`);
      sysctls[k] = v;
    }
    for (const d of p.logging?.destinations ?? []) {
      if (destinations.some((x) => x.endpoint === d.endpoint))
        throw new Error(`two layers send Talos' logs to ${d.endpoint}`);
      destinations.push(d);
    }
  }
  return {
    documents: foldServiceFiles(
      documents,
      parts.flatMap((p) => p.serviceFiles ?? []),
    ),
    sysctls,
    logging: { destinations },
  };
}
