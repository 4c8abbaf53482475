/**
 * The semantic part of `npm run diff`: what a change does, in words a reviewer can act on, computed from the two
 * renders' structured data — the review facts every layer publishes (review.json), the resource plan
 * (resources.json) and the machine configuration (talos/*.yaml, parsed) — never from the text of an artifact.
 * Pure: the same two renders give the same lines.
 */
import type { ForwardFacts, MatrixCellFacts, ReviewModel, SegmentFacts } from "../components/review";
import { bgpSessionChanges, talosChanges } from "./talos-changes";
import { OSPF_REFORM_S } from "../components/network-services/probe";
import { OSPF_DEAD_S } from "../components/network-services/bird";

/** A rendered stack: artifact path → content (empty when the stack does not exist on that side). */
export type Render = ReadonlyMap<string, string>;

export interface Section {
  title: string;
  lines: string[];
}

interface Resource {
  urn: string;
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

function json<T>(r: Render, path: string): T | undefined {
  const text = r.get(path);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

/** Items keyed by `key`: added, removed, and pairs that differ. */
function keyed<T>(a: readonly T[], b: readonly T[], key: (x: T) => string) {
  const ma = new Map(a.map((x) => [key(x), x]));
  const mb = new Map(b.map((x) => [key(x), x]));
  return {
    added: [...mb.keys()].filter((k) => !ma.has(k)).map((k) => mb.get(k)!),
    removed: [...ma.keys()].filter((k) => !mb.has(k)).map((k) => ma.get(k)!),
    changed: [...ma.keys()]
      .filter((k) => mb.has(k) && JSON.stringify(ma.get(k)) !== JSON.stringify(mb.get(k)))
      .map((k) => [ma.get(k)!, mb.get(k)!] as const),
  };
}

/** `accept + accept tcp/443 (web)`: a cell's verdict and the rules refining it. */
export function describeCell(c: MatrixCellFacts | undefined): string {
  if (!c) return "no zone";
  return c.rules.length ? `${c.verdict} + ${c.rules.join("; ")}` : c.verdict;
}

function matrix(a: ReviewModel | undefined, b: ReviewModel | undefined): string[] {
  const cell = (m: ReviewModel | undefined, k: string) => m?.firewall?.matrix.find((c) => `${c.from}>${c.to}` === k);
  const keys = [
    ...new Set([...(a?.firewall?.matrix ?? []), ...(b?.firewall?.matrix ?? [])].map((c) => `${c.from}>${c.to}`)),
  ];
  return keys.flatMap((k) => {
    const [before, after] = [describeCell(cell(a, k)), describeCell(cell(b, k))];
    return before === after ? [] : [`${k.replace(">", " → ")}: ${before} → ${after}`];
  });
}

function setDiff(a: readonly string[], b: readonly string[]): { added: string[]; removed: string[] } {
  return { added: b.filter((x) => !a.includes(x)), removed: a.filter((x) => !b.includes(x)) };
}

function describeSegment(s: SegmentFacts): string {
  const v6 = s.ipv6 ? `, ${s.ipv6} (router ${s.gateway6})` : "";
  const pools = s.pools.length ? `; pools ${s.pools.join(", ")}` : "; no DHCP pool";
  return `${s.name} (VLAN ${s.vlan} on ${s.link}, zone ${s.zone}): ${s.ipv4} (router ${s.gateway4})${v6}${pools}`;
}

function segments(a: ReviewModel | undefined, b: ReviewModel | undefined): string[] {
  const d = keyed(a?.segments ?? [], b?.segments ?? [], (s) => s.name);
  const out = [
    ...d.added.map((s) => `added ${describeSegment(s)}`),
    ...d.removed.map((s) => `removed ${describeSegment(s)}`),
  ];
  for (const [x, y] of d.changed) {
    const fields = (Object.keys(y) as (keyof SegmentFacts)[]).filter(
      (f) => JSON.stringify(x[f]) !== JSON.stringify(y[f]),
    );
    const what = (v: unknown) => (Array.isArray(v) ? v.join(", ") || "none" : String(v));
    out.push(`${y.name}: ${fields.map((f) => `${f} ${what(x[f])} → ${what(y[f])}`).join("; ")}`);
  }
  return out;
}

function describeForward(f: ForwardFacts): string {
  const from = f.sources === "any" ? "from anywhere" : `from ${f.sources.join(", ")}`;
  return `${f.name}: ${f.protocol}/${f.port} on ${f.wans.join(", ")} → ${f.to} (${f.toZone ?? "no zone"})${f.ipv6 ? ` and [${f.ipv6}]` : ""}, ${from}`;
}

function forwards(a: ReviewModel | undefined, b: ReviewModel | undefined): string[] {
  const d = keyed(a?.firewall?.forwards ?? [], b?.firewall?.forwards ?? [], (f) => f.name);
  return [
    ...d.added.map((f) => `added ${describeForward(f)}`),
    ...d.removed.map((f) => `removed ${describeForward(f)}`),
    ...d.changed.map(([x, y]) => `changed ${describeForward(x)} → ${describeForward(y)}`),
  ];
}

function served(a: ReviewModel | undefined, b: ReviewModel | undefined): string[] {
  const zones = (m: ReviewModel | undefined, s: string) =>
    (m?.served ?? []).filter((x) => x.service === s).flatMap((x) => x.zones);
  return ["dns", "ntp"].flatMap((s) => {
    const d = setDiff(zones(a, s), zones(b, s));
    return [
      ...d.added.map((z) => `${s.toUpperCase()} now served to zone ${z}`),
      ...d.removed.map((z) => `${s.toUpperCase()} no longer served to zone ${z}`),
    ];
  });
}

function profiles(a: ReviewModel | undefined, b: ReviewModel | undefined): string[] {
  const pa = a?.profiles ?? {};
  const pb = b?.profiles ?? {};
  return [...new Set([...Object.keys(pa), ...Object.keys(pb)])]
    .sort()
    .filter((k) => pa[k] !== pb[k])
    .map((k) => `${k}: ${pa[k] ?? "(none)"} → ${pb[k] ?? "(none)"}`);
}

function ids(a: ReviewModel | undefined, b: ReviewModel | undefined): string[] {
  const key = (p: { from: string; to: string; mode: string }) => `${p.from} → ${p.to} (${p.mode})`;
  const cov = setDiff((a?.ids?.covered ?? []).map(key), (b?.ids?.covered ?? []).map(key));
  const req = setDiff((a?.ids?.required ?? []).map(key), (b?.ids?.required ?? []).map(key));
  return [
    ...cov.added.map((p) => `now inspected: ${p}`),
    ...cov.removed.map((p) => `no longer inspected: ${p}`),
    ...req.added.map((p) => `now required: ${p}`),
    ...req.removed.map((p) => `no longer required: ${p}`),
  ];
}

/** Who reaches each observability endpoint, and the alert receivers with the credential each sends. */
function observability(a: ReviewModel | undefined, b: ReviewModel | undefined): string[] {
  const reach = (m: ReviewModel | undefined) =>
    (m?.observability?.endpoints ?? []).flatMap((e) =>
      e.reachableFrom.map((z) => `${e.name} (tcp/${e.port}) from zone ${z}`),
    );
  const receiver = (m: ReviewModel | undefined) =>
    (m?.observability?.receivers ?? []).map(
      (r) =>
        `${r.name}${r.credential ? ` (sends ${r.credential.key}${r.credential.pulumiSecret ? ", a Pulumi secret" : ", NOT a Pulumi secret"})` : ""}`,
    );
  const ep = setDiff(reach(a), reach(b));
  const rc = setDiff(receiver(a), receiver(b));
  return [
    ...ep.added.map((x) => `now reachable: ${x}`),
    ...ep.removed.map((x) => `no longer reachable: ${x}`),
    ...rc.added.map((x) => `alert receiver added: ${x}`),
    ...rc.removed.map((x) => `alert receiver removed: ${x}`),
  ];
}

/** BIRD's OSPF: whether the change restarts BIRD, and the adjacencies that start, end or must come back. */
function routing(a: ReviewModel | undefined, b: ReviewModel | undefined): string[] {
  const x = a?.routing?.ospf;
  const y = b?.routing?.ospf;
  if (!x && !y) return [];
  if (!x) return [`OSPF starts: BIRD runs in area ${y!.area} on ${y!.segments.join(", ") || "no active segment"}`];
  if (!y) return [`OSPF ENDS: BIRD is removed, and with it every adjacency (${x.segments.join(", ")})`];
  const out: string[] = [];
  if (x.configDigest !== y.configDigest) {
    const held = y.segments.filter((s) => x.segments.includes(s));
    out.push(
      `BIRD RESTARTS with a new configuration: ${held.length ? `every neighbour Full on ${held.join(", ")} must be Full again within ${OSPF_REFORM_S} s, or BIRD is rolled back (the services' rollout gate)` : "no adjacency is held (no segment stays active)"}`,
    );
  }
  if (x.area !== y.area)
    out.push(`OSPF area ${x.area} → ${y.area}: every neighbour must be in the new area, or BIRD is rolled back`);
  const seg = setDiff(x.segments, y.segments);
  out.push(...seg.added.map((s) => `OSPF starts on ${s} (new adjacencies are not held)`));
  out.push(...seg.removed.map((s) => `OSPF adjacencies end on ${s}: no longer an active OSPF segment`));
  const passive = setDiff(x.passive, y.passive);
  out.push(...passive.added.map((s) => `advertised without neighbours (passive): ${s}`));
  out.push(...passive.removed.map((s) => `no longer passive: ${s}`));
  // facts rendered before authentication existed have none: they had none
  const [authA, authB] = [x.authentication ?? "none", y.authentication ?? "none"];
  if (authA !== authB)
    out.push(
      ...(authB === "none"
        ? [`OSPF AUTHENTICATION OFF (was ${authA}): any host on ${y.segments.join(", ")} can speak OSPF to the router`]
        : authA === "none"
          ? [
              `OSPF authentication none → ${authB}: every neighbour needs the same algorithm, key id and key (router:ospfKey), or its adjacency ends (and BIRD is rolled back where it was Full)`,
            ]
          : keyChanges(x.keys ?? [], y.keys ?? [], authA, authB)),
    );
  const red = setDiff(x.redistribute, y.redistribute);
  out.push(...red.added.map((r) => `OSPF now redistributes ${r} routes`));
  out.push(...red.removed.map((r) => `OSPF no longer redistributes ${r} routes`));
  return out;
}

type OspfKey = NonNullable<NonNullable<ReviewModel["routing"]>["ospf"]["keys"]>[number];

/**
 * A change of OSPF keys, read as the steps of a rollover (docs/operations.md, "Change the OSPF key"): a key
 * accepted besides the sent one loses nothing; sending a key that was accepted before needs every neighbour to
 * accept it already; a key no longer accepted needs every neighbour to send the other one already. A sent key
 * that was not held before is a change at once. BIRD takes new keys in place, on a trial that brings the previous
 * ones back when a neighbour Full before is not heard or leaves Full (images/services/router-ospf-status).
 */
function keyChanges(a: readonly OspfKey[], b: readonly OspfKey[], authA: string, authB: string): string[] {
  const name = (k: OspfKey) => `key id ${k.keyId} (${k.algorithm})`;
  const same = (k: OspfKey) => (l: OspfKey) => l.keyId === k.keyId && l.algorithm === k.algorithm;
  const [sentA, sentB] = [a.find((k) => k.sent), b.find((k) => k.sent)];
  // facts rendered before keys existed, or a sent key that is new: a change at once
  if (!sentA || !sentB || !a.some(same(sentB)))
    return [
      `OSPF key changes at once (${authA} → ${authB}): every neighbour needs the new algorithm, key id and key at the same time, or the router brings the previous keys back when its trial fails (without that risk: routing.ospf.authentication.next, docs/operations.md)`,
    ];
  const out: string[] = [];
  if (!same(sentA)(sentB))
    out.push(
      `OSPF now SENDS ${name(sentB)} instead of ${name(sentA)}: every neighbour must already accept ${name(sentB)}, or it drops the router after ${OSPF_DEAD_S} s and the trial brings the previous keys back`,
    );
  for (const k of b.filter((k) => !a.some(same(k))))
    out.push(`OSPF accepts ${name(k)} besides ${name(sentB)}, which it still sends: no adjacency changes`);
  for (const k of a.filter((k) => !b.some(same(k))))
    out.push(
      `OSPF no longer accepts ${name(k)}: a neighbour still sending it is not heard, and the trial brings the previous keys back`,
    );
  return out;
}

/** Resources whose inputs change, by name. */
function resourceChanges(a: Render, b: Render) {
  const list = (r: Render) => json<{ resources: Resource[] }>(r, "resources.json")?.resources ?? [];
  return keyed(list(a), list(b), (r) => r.urn);
}

/** The host: configuration layers, documents, what needs a reboot, what upgrades Talos. */
function host(a: Render, b: Render, ra: ReviewModel | undefined, rb: ReviewModel | undefined): string[] {
  const out: string[] = [];
  const res = resourceChanges(a, b);
  const layers = (xs: readonly Resource[]) =>
    xs.filter((r) => r.type === "router:talos:ConfigLayer").map((r) => String(r.inputs.layer));
  const layerNames = [...layers(res.added), ...layers(res.removed), ...layers(res.changed.map(([, y]) => y))];
  if (layerNames.length) out.push(`configuration layers that change: ${layerNames.join(", ")}`);
  const streams = (r: Render) => [...r.keys()].filter((p) => /^talos\/[^/]+\.yaml$/.test(p)).sort();
  for (const path of [...new Set([...streams(a), ...streams(b)])]) {
    const t = talosChanges(a.get(path) ?? "", b.get(path) ?? "");
    const docs = [
      ...t.added.map((d) => `${d} added`),
      ...t.removed.map((d) => `${d} removed`),
      ...t.changed.map((d) => `${d} changed`),
    ];
    if (docs.length && a.has(path) && b.has(path))
      out.push(`${path}: ${docs.join(", ")} — applied with the try path (checked, confirmed or reverted)`);
    const bgp = bgpSessionChanges(a.get(path) ?? "", b.get(path) ?? "");
    if (bgp.restart.length)
      out.push(
        `${path}: BGP SESSIONS RESTART — ${bgp.restart.map((r) => `${r.neighbour} (${r.why.join(", ")})`).join("; ")} (Talos starts them over; each one established before the change must be established again inside the try window, or the change is not confirmed)`,
      );
    if (bgp.end.length) out.push(`${path}: BGP sessions end (neighbour removed): ${bgp.end.join(", ")}`);
    if (bgp.start.length)
      out.push(`${path}: BGP sessions start (new neighbour, not held by the try): ${bgp.start.join(", ")}`);
    if (t.needsReboot.length)
      out.push(
        `${path}: NEEDS A REBOOT, CANNOT BE TRIED — ${t.needsReboot.join(", ")} (Talos applies these v1alpha1 fields only with a reboot; the try/confirm apply refuses the change and the update fails without changing anything)`,
      );
  }
  const upgraded = [...res.changed.map(([, y]) => y), ...res.added].filter(
    (r) => r.type === "command:local:Command" && /-(installer|extension)$/.test(r.name),
  );
  const version = profiles(ra, rb).filter((l) => l.startsWith("talos.version"));
  if (upgraded.length || version.length)
    out.push(
      `TALOS UPGRADE (reboot into a new installer image, rolled back if unhealthy): ${[...version, ...upgraded.map((r) => `${r.name} rebuilds`)].join("; ")}`,
    );
  return out;
}

function resourcesSection(a: Render, b: Render): string[] {
  const d = resourceChanges(a, b);
  const name = (r: Resource) => `${r.name} (${r.type})`;
  return [
    ...d.added.map((r) => `+ ${name(r)}`),
    ...d.removed.map((r) => `- ${name(r)}`),
    ...d.changed.map(([, r]) => `~ ${name(r)}`),
  ];
}

/** The semantic summary's sections, empty ones left out. */
export function semanticDiff(a: Render, b: Render): Section[] {
  const ra = json<ReviewModel>(a, "review.json");
  const rb = json<ReviewModel>(b, "review.json");
  const wan = setDiff(ra?.firewall?.wanExposure ?? [], rb?.firewall?.wanExposure ?? []);
  const sections: Section[] = [
    { title: "Zone matrix (new connections)", lines: matrix(ra, rb) },
    { title: "Newly reachable from the WAN", lines: wan.added },
    { title: "No longer reachable from the WAN", lines: wan.removed },
    { title: "Segments, addresses and pools", lines: segments(ra, rb) },
    { title: "Port forwards", lines: forwards(ra, rb) },
    { title: "Router services", lines: served(ra, rb) },
    { title: "Observability endpoints and alert receivers", lines: observability(ra, rb) },
    { title: "DNS, IDS and other profiles", lines: [...profiles(ra, rb), ...ids(ra, rb)] },
    { title: "Dynamic routing (OSPF)", lines: routing(ra, rb) },
    { title: "Host (Talos)", lines: host(a, b, ra, rb) },
    { title: "Resources", lines: resourcesSection(a, b) },
  ];
  if ((a.size > 0 && !ra) || (b.size > 0 && !rb))
    sections.unshift({
      title: "Note",
      lines: ["one side has no review.json (rendered by an older version): the semantic summary is partial"],
    });
  return sections.filter((s) => s.lines.length > 0);
}

/** Markdown of the sections (also plain-text readable). */
export function renderSections(sections: readonly Section[]): string {
  return sections.map((s) => [`### ${s.title}`, "", ...s.lines.map((l) => `- ${l}`), ""].join("\n")).join("\n");
}
