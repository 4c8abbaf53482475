/**
 * Port dispatch: a zone pair's rules reached through one lookup on the destination port, so that judging a new
 * connection walks only the rules that can match its port instead of all of them.
 *
 * The port line is cut into segments at every rule's port-range boundaries; each segment gets the rules, in
 * their order, that can match a port in it: those whose ports cover it and those with no port match at all.
 * A verdict map (`th dport vmap`, a single-field interval map: a tree lookup) jumps to that list; a packet in
 * no segment, or one without ports, falls through to the rules with no port match. A rule keeps its full match
 * wherever it appears, so first-match order and meaning are those of the plain list — a packet only skips
 * rules that could not have matched it. Identical lists share one chain.
 *
 * Used when it pays: enough rules, and the longest list clearly shorter than the whole. (Concatenated
 * verdict maps over address, protocol and port were measured first: the kernel's set type for them scans a
 * bitmap as long as the map, and 1,000 rules' 27,000 entries cost as much per connection as the plain list.)
 *
 * Pure and deterministic; `test/network/port-dispatch.kernel.test.ts` checks the result against the policy's own
 * `evaluate` in a kernel.
 */
import type { CompiledRule } from "../site/policy";

/** Lists shorter than this stay plain. */
export const MIN_DISPATCH_RULES = 16;
/** Dispatch only when the longest candidate list is at most this share of all the rules. */
const MAX_LIST_SHARE = 0.5;
/** …and the lists together hold at most this many times the rules (overlapping wide ranges repeat rules). */
const MAX_GROWTH = 4;

/** Inclusive port ranges sorted and merged. */
export function mergePorts(ranges: readonly [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** The families a rule applies to: a rule naming addresses of one family only never matches the other. */
export function ruleFamilies(r: CompiledRule): (4 | 6)[] {
  return ([4, 6] as const).filter((f) => (!r.src || r.src[f].length > 0) && (!r.dst || r.dst[f].length > 0));
}

export interface PortDispatch {
  /** Port segments, ascending and disjoint, each with the index of its candidate list. */
  segments: { lo: number; hi: number; list: number }[];
  /** The distinct candidate lists, rules in policy order. */
  lists: CompiledRule[][];
  /** Rules without a port match, in order: all a packet outside every segment can match. */
  unconstrained: CompiledRule[];
}

/**
 * The port dispatch of a chain's rules, or undefined when the plain list is as good (`always`: whenever there
 * are at least `minRules`, however long the lists — for tests).
 */
export function portDispatch(
  rules: readonly CompiledRule[],
  minRules = MIN_DISPATCH_RULES,
  always = false,
): PortDispatch | undefined {
  if (rules.length < minRules) return undefined;
  const ports = rules.map((r) => (r.ports ? mergePorts(r.ports) : undefined));
  const unconstrained = rules.filter((_, i) => !ports[i]);
  // Sweep the port line: at each boundary rules enter or leave the set of rules whose ports cover it.
  const events = new Map<number, { enter: number[]; leave: number[] }>();
  const at = (p: number) => events.get(p) ?? events.set(p, { enter: [], leave: [] }).get(p)!;
  ports.forEach((list, i) =>
    list?.forEach(([a, b]) => {
      at(a).enter.push(i);
      at(b + 1).leave.push(i);
    }),
  );
  const points = [...events.keys()].sort((a, b) => a - b);
  const active = new Set<number>();
  const lists: CompiledRule[][] = [];
  const listIndex = new Map<string, number>();
  const segments: PortDispatch["segments"] = [];
  let longest = 0;
  let total = 0;
  for (const [k, p] of points.entries()) {
    const e = events.get(p)!;
    for (const i of e.leave) active.delete(i);
    for (const i of e.enter) active.add(i);
    const next = points[k + 1];
    if (active.size === 0 || next === undefined) continue;
    const members = rules.map((_, i) => i).filter((i) => !ports[i] || active.has(i));
    const key = members.join(",");
    let list = listIndex.get(key);
    if (list === undefined) {
      list = lists.length;
      listIndex.set(key, list);
      lists.push(members.map((i) => rules[i]));
      longest = Math.max(longest, members.length);
      total += members.length;
    }
    const last = segments[segments.length - 1];
    if (last && last.list === list && last.hi === p - 1) last.hi = next - 1;
    else segments.push({ lo: p, hi: next - 1, list });
  }
  if (segments.length === 0) return undefined;
  if (!always && (longest > rules.length * MAX_LIST_SHARE || total > rules.length * MAX_GROWTH)) return undefined;
  return { segments, lists, unconstrained };
}
