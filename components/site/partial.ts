/**
 * The part of a site that parsed, as the cross-field rules see it (validate.ts, validate-policy.ts): every key
 * optional; the top-level lists hold the elements that parsed with their config index; nested lists hold the
 * elements that parsed too (their config indices through `indexed`). `incomplete` names what was left out, and
 * the raw config is kept so that a reference to an element that failed to parse is not reported as unknown:
 * the rules stay silent only where the broken part could change their answer. No Pulumi import.
 */
import type { Link, Segment, Site, Zone } from "./schema";

export interface Indexed<T> {
  index: number;
  value: T;
}

export interface PartialSite {
  site?: Site["site"];
  node?: Site["node"];
  talos?: Site["talos"];
  links?: Indexed<Link>[];
  segments?: Indexed<Segment>[];
  zones?: Indexed<Zone>[];
  cluster?: Site["cluster"];
  cilium?: Site["cilium"];
  dns?: Site["dns"];
  ntp?: Site["ntp"];
  registry?: Site["registry"];
  dataplane?: Site["dataplane"];
  firewall?: Site["firewall"];
  portForwards?: Site["portForwards"];
  routes?: Site["routes"];
  routing?: Site["routing"];
  mdns?: Site["mdns"];
  observability?: Site["observability"];
  ids?: Site["ids"];
  /**
   * Paths (config spelling without the namespace: `segments`, `node.nics`, `firewall.rules`, `talos`) of lists
   * that lost elements and of values that were left out because they failed to parse.
   */
  incomplete: Set<string>;
  /** Secret keys that are set (values are never seen here). */
  secretsSet: Set<string>;
  /** The lengths of the secrets given as text, well-formed or not (rules on a key's length: OSPF's). */
  secretLengths: Map<string, number>;
  /** The raw config values by key, as given (never secret keys). */
  raw: Record<string, unknown>;
}

/** True when the value at `path`, or something inside it, failed to parse. */
export function isIncomplete(s: PartialSite, path: string): boolean {
  for (const p of s.incomplete) if (p === path || p.startsWith(`${path}.`) || p.startsWith(`${path}[`)) return true;
  return false;
}

/** The raw elements of a top-level list that failed to parse (those not among the parsed ones). */
export function droppedElements(s: PartialSite, key: "links" | "segments" | "zones"): Record<string, unknown>[] {
  const raw = s.raw[key];
  if (!Array.isArray(raw)) return [];
  const kept = new Set((s[key] ?? []).map((x) => x.index));
  return raw
    .filter((_, i) => !kept.has(i))
    .map((x) => (x !== null && typeof x === "object" && !Array.isArray(x) ? (x as Record<string, unknown>) : {}));
}

/**
 * Names a reference may use: those of the parsed elements, and the names given to elements that failed to
 * parse (a reference to a broken element is not an unknown name). Undefined when the list itself is unusable.
 */
export function knownNames(s: PartialSite, key: "links" | "segments" | "zones"): Set<string> | undefined {
  if (!s[key] && !Array.isArray(s.raw[key])) return undefined;
  const names = new Set<string>((s[key] ?? []).map((x) => x.value.name));
  for (const d of droppedElements(s, key)) if (typeof d.name === "string") names.add(d.name);
  return names;
}

/**
 * The names of a top-level list's elements with their config indices: a parsed element's, or the name text an
 * element that failed to parse was given — so a duplicate name is reported even when its twin is broken.
 */
export function allNames(s: PartialSite, key: "links" | "segments" | "zones"): Indexed<{ name: string }>[] {
  const parsed = new Map((s[key] ?? []).map((x) => [x.index, x.value.name]));
  const raw = s.raw[key];
  if (!Array.isArray(raw)) return [...parsed].map(([index, name]) => ({ index, value: { name } }));
  return raw.flatMap((x: unknown, index) => {
    const name =
      parsed.get(index) ?? (x !== null && typeof x === "object" ? (x as Record<string, unknown>).name : undefined);
    return typeof name === "string" ? [{ index, value: { name } }] : [];
  });
}
