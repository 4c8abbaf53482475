/**
 * The Talos machine configuration as data: one legacy `v1alpha1` document plus named multi-documents. Layers
 * contribute their host-side pieces (a segment's VLAN link, the data plane's service config) as documents and
 * kernel parameters; TalosNode assembles them into the one stream.
 */

/** A Talos 1.14 multi-document (`apiVersion: v1alpha1`, `kind`, usually `name`). */
export interface TalosDocument {
  apiVersion: "v1alpha1";
  kind: string;
  name?: string;
  [field: string]: unknown;
}

/** What a layer adds to the node's machine configuration. */
export interface HostContribution {
  /** Named documents; a kind+name pair may appear once in the whole stream. */
  documents: TalosDocument[];
  /** Kernel parameters merged into the single SysctlConfig (slash form for per-link keys: net/ipv6/conf/lan0.10/accept_ra). */
  sysctls?: Record<string, string>;
  /** Destinations of Talos' own service logs (`machine.logging`, which 1.14 keeps in the v1alpha1 document). */
  logging?: { destinations: LoggingDestination[] };
}

/** One `machine.logging.destinations` entry (JSON lines over TCP or UDP). */
export interface LoggingDestination {
  endpoint: string;
  format: "json_lines";
}

/** Merges contributions; throws on a duplicate document or a kernel parameter set to two values. */
export function mergeContributions(parts: readonly HostContribution[]): Required<HostContribution> {
  const documents: TalosDocument[] = [];
  const seen = new Set<string>();
  const sysctls: Record<string, string> = {};
  const destinations: LoggingDestination[] = [];
  for (const p of parts) {
    for (const d of p.documents) {
      const id = `${d.kind}/${d.name ?? ""}`;
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
  return { documents, sysctls, logging: { destinations } };
}
