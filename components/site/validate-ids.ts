/**
 * Cross-field rules of router:ids: what it names must exist (segments, zones), what it turns on must have what it
 * needs (the XDP guard for blocking, a pinned image for Zeek), and its lists must be unambiguous (one entry per
 * sid, source and pair). Suricata itself checks the rules' syntax (`suricata -T`) before they ship; here only
 * what an operator gets wrong by hand: a rule without a sid, or two rules with one.
 */
import { configPath, type SiteIssue } from "./issues";
import { durationSeconds } from "./duration";
import type { PartialSite } from "./validate";

type Issues = SiteIssue[];

const RULE_ACTIONS = ["alert", "drop", "pass", "reject", "rejectsrc", "rejectdst", "rejectboth"];

/** The sid of a local rule, or why the text is not one rule: action, header, options in parentheses, a sid. */
export function localRuleSid(rule: string): number | string {
  const m = /^\s*(\w+)\s+[^(]+\((.*)\)\s*$/s.exec(rule);
  if (!m || !RULE_ACTIONS.includes(m[1]!))
    return `is not a Suricata rule (allowed: ACTION PROTO SRC PORT -> DST PORT (OPTIONS;) with ACTION one of ${RULE_ACTIONS.join(", ")})`;
  if (rule.includes("\n")) return "spans several lines (allowed: one rule per entry, on one line)";
  const sid = /(?:^|;)\s*sid\s*:\s*(\d+)\s*;/.exec(m[2]!);
  if (!sid) return "has no sid option (allowed: a rule with sid:N; — every rule needs its own signature id)";
  return Number(sid[1]);
}

/** The first index of each duplicated value, and the later ones. */
function repeats<T>(items: readonly T[], key: (t: T) => string): [first: number, later: number, k: string][] {
  const seen = new Map<string, number>();
  const out: [number, number, string][] = [];
  items.forEach((t, i) => {
    const k = key(t);
    const f = seen.get(k);
    if (f === undefined) seen.set(k, i);
    else out.push([f, i, k]);
  });
  return out;
}

function checkReferences(s: PartialSite, out: Issues): void {
  const ids = s.ids!;
  if (s.segments && !s.incomplete.has("segments")) {
    const names = new Set(s.segments.map((x) => x.value.name));
    ids.segments.forEach((n, i) => {
      if (!names.has(n))
        out.push({
          path: configPath("ids", ["segments", i]),
          message: `names no segment "${n}" (allowed: ${[...names].join(", ")})`,
        });
    });
  }
  for (const [f, l, n] of repeats(ids.segments, (x) => x))
    out.push({
      path: configPath("ids", ["segments", l]),
      message: `repeats segment "${n}" (also at segments[${f}]; allowed: each segment once)`,
    });
  if (s.zones && !s.incomplete.has("zones")) {
    const zones = new Set(s.zones.map((z) => z.value.name));
    ids.ips.pairs.forEach((p, i) => {
      for (const side of ["from", "to"] as const)
        if (!zones.has(p[side]))
          out.push({
            path: configPath("ids", ["ips", "pairs", i, side]),
            message: `names no zone "${p[side]}" (allowed: ${[...zones].join(", ")})`,
          });
    });
  }
  for (const [f, l, k] of repeats(ids.ips.pairs, (p) => `${p.from} → ${p.to}`))
    out.push({
      path: configPath("ids", ["ips", "pairs", l]),
      message: `repeats the pair ${k} (also at pairs[${f}]; allowed: each zone pair once)`,
    });
  if (ids.ips.firstQueue + ids.ips.queues - 1 > 65_535)
    out.push({
      path: configPath("ids", ["ips", "queues"]),
      message: `queues ${ids.ips.firstQueue}–${ids.ips.firstQueue + ids.ips.queues - 1} go past 65535 (allowed: firstQueue + queues − 1 ≤ 65535)`,
    });
}

function checkRules(s: PartialSite, out: Issues): void {
  const rules = s.ids!.rules;
  for (const [f, l, n] of repeats(rules.sources, (x) => x.name))
    out.push({
      path: configPath("ids", ["rules", "sources", l, "name"]),
      message: `duplicate rule source "${n}" (also at sources[${f}]; allowed: each name once)`,
    });
  const sids: [index: number, sid: number][] = [];
  rules.local.forEach((r, i) => {
    const sid = localRuleSid(r);
    if (typeof sid === "string") out.push({ path: configPath("ids", ["rules", "local", i]), message: sid });
    else sids.push([i, sid]);
  });
  for (const [f, l, sid] of repeats(sids, ([, sid]) => String(sid)))
    out.push({
      path: configPath("ids", ["rules", "local", sids[l]![0]]),
      message: `uses sid ${sid} again (also local[${sids[f]![0]}]; allowed: a signature id of its own per rule)`,
    });
  for (const [f, l, sid] of repeats(rules.disable, String))
    out.push({
      path: configPath("ids", ["rules", "disable", l]),
      message: `repeats sid ${sid} (also at disable[${f}]; allowed: each sid once)`,
    });
  const interval = durationSeconds(rules.updateInterval);
  if (interval < 3600 || interval > 30 * 86_400)
    out.push({
      path: configPath("ids", ["rules", "updateInterval"]),
      message: `${rules.updateInterval} is outside 1h–720h (allowed: at least an hour, as rule providers ask, and at most 30 days)`,
    });
}

function checkActions(s: PartialSite, out: Issues): void {
  const ids = s.ids!;
  if (ids.enabled && ids.block.enabled && s.dataplane && !s.dataplane.enabled)
    out.push({
      path: configPath("ids", ["block", "enabled"]),
      message:
        "blocks sources in the XDP guard, which router:dataplane.enabled switches off (allowed: block.enabled: false, or enable the data plane)",
    });
  const d = durationSeconds(ids.block.duration);
  if (d < 10 || d > 30 * 86_400)
    out.push({
      path: configPath("ids", ["block", "duration"]),
      message: `${ids.block.duration} is outside 10s–720h (allowed: a block that lasts from 10 seconds to 30 days)`,
    });
  const w = durationSeconds(ids.alertBurst.window);
  if (w < 60 || w > 86_400)
    out.push({
      path: configPath("ids", ["alertBurst", "window"]),
      message: `${ids.alertBurst.window} is outside 1m–24h (allowed: a window from one minute to one day)`,
    });
  if (ids.zeek.enabled && !ids.zeek.image?.includes("@sha256:"))
    out.push({
      path: configPath("ids", ["zeek", "image"]),
      message:
        "must be pinned by digest when Zeek is enabled (allowed: e.g. docker.io/zeek/zeek:7.0.5@sha256:<64 hex>)",
    });
  for (const [key, cpus] of [
    ["workerCpus", ids.cpu.workerCpus],
    ["managementCpus", ids.cpu.managementCpus],
  ] as const)
    for (const [f, l, c] of repeats(cpus, String))
      out.push({
        path: configPath("ids", ["cpu", key, l]),
        message: `repeats CPU ${c} (also at ${key}[${f}]; allowed: each CPU once)`,
      });
}

export function validateIds(s: PartialSite): SiteIssue[] {
  if (!s.ids) return [];
  const out: Issues = [];
  checkReferences(s, out);
  checkRules(s, out);
  checkActions(s, out);
  return out;
}
