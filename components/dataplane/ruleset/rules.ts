/**
 * The policy's rules as nft statements: one statement per address family a rule applies to, and long lists
 * reached by destination port (port-dispatch.ts). Pure.
 */
import { mergePrefixes } from "../../site/ip";
import type { CompiledRule } from "../../site/policy";
import { MIN_DISPATCH_RULES, mergePorts, portDispatch, ruleFamilies } from "../port-dispatch";
import { TAB, VERDICTS, chain, logGroupOf, logStatement, portList, setOf, type Ctx, type Verdicts } from "./common";

/** Match expressions of a rule, one entry per address family it applies to ("" = both families). */
function ruleMatches(r: CompiledRule): string[] {
  const fams: (4 | 6 | 0)[] = !r.src && !r.dst ? [0] : ruleFamilies(r);
  return fams.map((f) => {
    const parts: string[] = [];
    if (f !== 0) {
      const ip = f === 4 ? "ip" : "ip6";
      // Overlapping prefixes in one set are an nft error ("conflicting intervals"): keep the covering ones.
      if (r.src) parts.push(`${ip} saddr ${setOf(mergePrefixes(r.src[f]))}`);
      if (r.dst) parts.push(`${ip} daddr ${setOf(mergePrefixes(r.dst[f]))}`);
    }
    const protos = r.protos;
    if (protos !== "any") {
      const icmp = f === 4 ? ["icmp"] : f === 6 ? ["ipv6-icmp"] : ["icmp", "ipv6-icmp"];
      const l4 = protos.flatMap((p) => (p === "icmp" ? icmp : [p]));
      const ports = r.ports && mergePorts(r.ports);
      if (ports && protos.length === 1 && protos[0] !== "icmp") parts.push(`${protos[0]} dport ${portList(ports)}`);
      else {
        parts.push(`meta l4proto ${setOf(l4)}`);
        if (ports) parts.push(`th dport ${portList(ports)}`);
      }
    }
    return parts.join(" ");
  });
}

function ruleLines(
  r: CompiledRule,
  label: string,
  log: { rate: string; group?: number },
  verdicts: Verdicts,
): string[] {
  const out: string[] = [`# rule ${r.name}`];
  for (const m of ruleMatches(r)) {
    const prefix = m ? `${m} ` : "";
    if (r.log) out.push(`${prefix}${logStatement(log.rate, `router ${label} ${r.name}`, log.group)}`);
    out.push(`${prefix}${verdicts(r.action)}`);
  }
  return out;
}

export interface RuleChain {
  /** The chain's statements, in order. */
  body: string[];
  /** The chains and the verdict map the body dispatches to (they must precede the chain). */
  maps: string[];
}

/**
 * A chain's rules, in order: a long list is reached through a port dispatch (port-dispatch.ts) — one lookup on
 * the destination port jumps to the rules that can match it — and the rules with no port match follow.
 */
export function ruleChain(
  rules: readonly CompiledRule[],
  opts: {
    chain: string;
    label: string;
    logRate: string;
    /** NFLOG group of the log statements (kernel log when undefined). */
    logGroup?: number;
    minDispatchRules?: number;
    /** Dispatch whenever there are enough rules, even where it would not pay (tests). */
    alwaysDispatch?: boolean;
    verdicts?: Verdicts;
  },
): RuleChain {
  const verdicts = opts.verdicts ?? VERDICTS;
  const lines = (list: readonly CompiledRule[]) =>
    list.flatMap((r) => ruleLines(r, opts.label, { rate: opts.logRate, group: opts.logGroup }, verdicts));
  const d = portDispatch(rules, opts.minDispatchRules ?? MIN_DISPATCH_RULES, opts.alwaysDispatch);
  if (!d) return { body: lines(rules), maps: [] };
  const maps: string[] = [];
  d.lists.forEach((list, k) => maps.push(...chain(`${opts.chain}_p${k + 1}`, lines(list))));
  const elements = d.segments.map(
    ({ lo, hi, list }) => `${lo === hi ? lo : `${lo}-${hi}`} : jump ${opts.chain}_p${list + 1}`,
  );
  maps.push(
    `map ${opts.chain}_ports {`,
    `${TAB}type inet_service : verdict`,
    `${TAB}flags interval`,
    `${TAB}elements = {`,
    ...elements.map((e) => `${TAB}${TAB}${e},`),
    `${TAB}}`,
    "}",
  );
  const longest = Math.max(...d.lists.map((l) => l.length));
  const body = [
    `# rules ${rules[0].name} … ${rules[rules.length - 1].name} (${rules.length}): by destination port to the rules that name it`,
    `# (${d.segments.length} port ranges, ${d.lists.length} rule lists of at most ${longest}), then the rules without ports`,
    `th dport vmap @${opts.chain}_ports`,
    ...lines(d.unconstrained),
  ];
  return { body, maps };
}

/** A chain's rules for the ruleset: the body, with any dispatch chains and maps collected into ctx.maps. */
export function rulesInto(ctx: Ctx, rules: readonly CompiledRule[], chainName: string, label: string): string[] {
  const r = ruleChain(rules, {
    chain: chainName,
    label,
    logRate: ctx.model.logRate,
    logGroup: logGroupOf(ctx.contributions),
    minDispatchRules: ctx.minDispatchRules,
  });
  ctx.maps.push(...r.maps);
  return r.body;
}
