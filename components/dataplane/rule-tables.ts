/**
 * Decision tables: a run of firewall rules compiled into one verdict-map lookup per address family and key
 * shape, so that judging a new connection costs one lookup for the whole run instead of one match per rule.
 *
 * First match wins in the policy; a verdict map has no order. The two agree when no packet can match two rules
 * of the same table, so a table only ever holds consecutive rules whose matches are pairwise disjoint: a rule
 * that overlaps one already in the run starts the next table. Rules that log (a log statement cannot sit in a
 * map) or whose match would expand into too many entries stay ordinary rules, and so do short runs, which read
 * better as rules and cost no more. The kernel keeps such concatenated interval maps in its pipapo set type,
 * whose lookup time depends on the key length, not on the number of entries.
 *
 * Pure and deterministic; `test/network/rule-tables.kernel.test.ts` checks the result against the policy's own
 * `evaluate` in a kernel.
 */
import type { CompiledRule, Verdict } from "../site/policy";
import { mergePrefixes, parsePrefix } from "../site/ip";

/** Runs shorter than this stay ordinary rules. */
export const MIN_TABLE_RULES = 8;
/** A rule whose match expands into more entries than this stays an ordinary rule (its sets already match it). */
export const MAX_RULE_ENTRIES = 512;
/**
 * Entries of one table at most. The kernel's cost to load a concatenated interval map grows with the square of
 * its size (27,000 entries in one map take 3 s to load, 54,000 take 12 s; in maps of 8,192 they take 1.3 s and
 * 2.5 s), so a long run becomes several tables: a few lookups per new connection instead of one, and a load
 * time that grows linearly.
 */
export const MAX_TABLE_ENTRIES = 8192;

type Family = 4 | 6;

interface Interval {
  first: bigint;
  last: bigint;
}

/** A rule as boxes: per family, the source and destination prefixes it applies to (undefined: any address). */
interface Shape {
  rule: CompiledRule;
  families: Family[];
  src: Record<Family, Interval[] | undefined>;
  dst: Record<Family, Interval[] | undefined>;
  ports?: [number, number][];
  entries: number;
}

export type RuleStep = { kind: "rule"; rule: CompiledRule } | { kind: "table"; rules: CompiledRule[] };

function intervals(prefixes: readonly string[]): Interval[] {
  return prefixes.map((p) => {
    const q = parsePrefix(p.includes("/") ? p : `${p}/${p.includes(":") ? 128 : 32}`);
    return { first: q.first, last: q.last };
  });
}

/** Inclusive port ranges sorted and merged: map entries of one rule must not overlap each other. */
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
export function ruleFamilies(r: CompiledRule): Family[] {
  return ([4, 6] as const).filter((f) => (!r.src || r.src[f].length > 0) && (!r.dst || r.dst[f].length > 0));
}

function shapeOf(r: CompiledRule): Shape {
  const families = ruleFamilies(r);
  const side = (s: CompiledRule["src"]) => ({
    4: s ? intervals(mergePrefixes(s[4])) : undefined,
    6: s ? intervals(mergePrefixes(s[6])) : undefined,
  });
  const src = side(r.src);
  const dst = side(r.dst);
  const ports = r.ports ? mergePorts(r.ports) : undefined;
  const protos = r.protos === "any" ? 1 : r.protos.length;
  const entries = families.reduce(
    (n, f) => n + (src[f]?.length ?? 1) * (dst[f]?.length ?? 1) * protos * (ports?.length ?? 1),
    0,
  );
  return { rule: r, families, src, dst, ports, entries };
}

function meet(a: Interval[] | undefined, b: Interval[] | undefined): boolean {
  if (!a || !b) return true;
  return a.some((x) => b.some((y) => x.first <= y.last && y.first <= x.last));
}

/** True when some packet matches both rules. */
function overlap(a: Shape, b: Shape): boolean {
  const pa = a.rule.protos;
  const pb = b.rule.protos;
  if (pa !== "any" && pb !== "any" && !pa.some((p) => pb.includes(p))) return false;
  if (a.ports && b.ports && !a.ports.some(([x, y]) => b.ports!.some(([u, v]) => x <= v && u <= y))) return false;
  return a.families.some((f) => b.families.includes(f) && meet(a.src[f], b.src[f]) && meet(a.dst[f], b.dst[f]));
}

/** Splits a chain's rules, in order, into ordinary rules and decision tables. */
export function planRuleSteps(rules: readonly CompiledRule[], minRules = MIN_TABLE_RULES): RuleStep[] {
  const steps: RuleStep[] = [];
  let run: Shape[] = [];
  let entries = 0;
  const flush = () => {
    if (run.length >= Math.max(2, minRules)) steps.push({ kind: "table", rules: run.map((s) => s.rule) });
    else for (const s of run) steps.push({ kind: "rule", rule: s.rule });
    run = [];
    entries = 0;
  };
  for (const r of rules) {
    const s = shapeOf(r);
    if (r.log || s.entries > MAX_RULE_ENTRIES || s.families.length === 0) {
      flush();
      steps.push({ kind: "rule", rule: r });
      continue;
    }
    if (entries + s.entries > MAX_TABLE_ENTRIES || run.some((t) => overlap(t, s))) flush();
    run.push(s);
    entries += s.entries;
  }
  flush();
  return steps;
}

export interface TableMap {
  /** Map name within the table. */
  name: string;
  /** The lookup statement of the chain. */
  lookup: string;
  /** The map's definition, one line per element. */
  definition: string[];
}

/**
 * The verdict maps of one decision table: for each family, one map keyed by source . destination . protocol
 * . port for rules with ports and one keyed by source . destination . protocol for the others. Every element
 * carries its rule's name as a comment, so `nft list` says which rule an entry belongs to.
 */
export function tableMaps(rules: readonly CompiledRule[], base: string, verdict: (v: Verdict) => string): TableMap[] {
  const out: TableMap[] = [];
  for (const f of [4, 6] as const) {
    const addr = f === 4 ? "ipv4_addr" : "ipv6_addr";
    const ip = f === 4 ? "ip" : "ip6";
    const anyAddr = f === 4 ? "0.0.0.0/0" : "::/0";
    for (const withPorts of [true, false]) {
      const elements: string[] = [];
      for (const r of rules) {
        if (!ruleFamilies(r).includes(f) || !!r.ports !== withPorts) continue;
        const srcs = r.src ? mergePrefixes(r.src[f]) : [anyAddr];
        const dsts = r.dst ? mergePrefixes(r.dst[f]) : [anyAddr];
        const protos =
          r.protos === "any" ? ["0-255"] : r.protos.map((p) => (p === "icmp" ? (f === 4 ? "icmp" : "ipv6-icmp") : p));
        const ports = r.ports ? mergePorts(r.ports).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)) : [undefined];
        const tail = ` comment ${JSON.stringify(r.name)} : ${verdict(r.action)},`;
        for (const s of srcs)
          for (const d of dsts)
            for (const p of protos)
              for (const port of ports) elements.push(`${s} . ${d} . ${p}${port ? ` . ${port}` : ""}${tail}`);
      }
      if (!elements.length) continue;
      const name = `${base}_${f}${withPorts ? "p" : ""}`;
      const key = `${ip} saddr . ${ip} daddr . meta l4proto${withPorts ? " . th dport" : ""}`;
      out.push({
        name,
        lookup: `${key} vmap @${name}`,
        definition: [
          `map ${name} {`,
          `\ttype ${addr} . ${addr} . inet_proto${withPorts ? " . inet_service" : ""} : verdict`,
          "\tflags interval",
          "\telements = {",
          ...elements.map((e) => `\t\t${e}`),
          "\t}",
          "}",
        ],
      });
    }
  }
  return out;
}
