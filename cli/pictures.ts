/**
 * Pictures of a rendered site for SUMMARY.md: the topology (internet, WAN links, the router, trunks, segments
 * grouped by zone with their addresses and the services the router answers there, port forwards) and the zone
 * matrix (a colour-coded table of verdicts), as Graphviz DOT drawn from the layers' review facts.
 *
 * DOT is always rendered (pure, deterministic text: diffable and in the golden files); SVG is drawn from it by
 * Graphviz's `dot` in the offline render when `dot` is installed. Nothing in the program runs Graphviz, so
 * `pulumi up` on an operator machine without it loses no more than the picture; a layout engine in JavaScript
 * (Graphviz compiled to WASM) would put a multi-megabyte dependency on every install for a review aid.
 */
import { spawnSync } from "node:child_process";
import type { MatrixCellFacts, ReviewModel, SegmentFacts } from "../components/review";

export const TOPOLOGY = "pictures/topology";
export const ZONE_MATRIX = "pictures/zone-matrix";

/** A DOT double-quoted string. */
function q(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/** Text inside a DOT HTML-like label. */
function h(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A DOT identifier from a name (names may hold dots and dashes). */
function id(kind: string, name: string): string {
  return q(`${kind}:${name}`);
}

const FONT = 'fontname="DejaVu Sans"';

function segmentLabel(s: SegmentFacts): string {
  return [`${s.name} — VLAN ${s.vlan} (${s.link})`, s.ipv4, ...(s.ipv6 ? [s.ipv6] : []), `router ${s.gateway4}`].join(
    "\n",
  );
}

/** The topology as DOT: an undirected graph, zones as clusters, forwards as dashed arrows from the internet. */
export function topologyDot(m: ReviewModel): string {
  const node = m.node;
  const fw = m.firewall;
  const out = [
    "graph topology {",
    `  graph [rankdir=LR, ${FONT}, labelloc=t, label=${q(node ? `Site ${node.site} — ${node.fqdn}` : "Site")}];`,
    `  node [${FONT}, fontsize=11, shape=box, style=rounded];`,
    `  edge [${FONT}, fontsize=10];`,
    `  ${id("net", "internet")} [shape=ellipse, label="internet"];`,
    `  ${id("node", "router")} [shape=box3d, label=${q(node ? `${node.hostname}\n${node.managementAddress}` : "router")}];`,
  ];
  for (const l of node?.links ?? []) {
    const members = l.members?.length ? `\nbond of ${l.members.join(", ")}` : "";
    if (l.role === "wan") {
      out.push(
        `  ${id("link", l.name)} [label=${q(`${l.name} (zone ${l.zone}, priority ${l.priority})\n${l.addressing ?? ""}${members}`)}];`,
        `  ${id("net", "internet")} -- ${id("link", l.name)};`,
        `  ${id("link", l.name)} -- ${id("node", "router")};`,
      );
    } else
      out.push(
        `  ${id("link", l.name)} [shape=box, style="rounded,dashed", label=${q(`${l.name} trunk${members}`)}];`,
        `  ${id("node", "router")} -- ${id("link", l.name)};`,
      );
  }
  const zones = (fw?.zones ?? []).filter((z) => !z.wan);
  for (const z of zones) {
    const segs = m.segments.filter((s) => s.zone === z.name);
    if (segs.length === 0) continue;
    const head = `zone ${z.name}${z.management ? " (management)" : ""}\nrouter services: ${z.services.join(", ") || "none"}`;
    out.push(`  subgraph ${q(`cluster_${z.name}`)} {`, `    label=${q(head)}; style=rounded;`);
    for (const s of segs) out.push(`    ${id("seg", s.name)} [label=${q(segmentLabel(s))}];`);
    out.push("  }");
    for (const s of segs) {
      const trunk = node?.links.find((l) => l.role === "trunk" && s.link.startsWith(`${l.name}.`));
      out.push(`  ${trunk ? id("link", trunk.name) : id("node", "router")} -- ${id("seg", s.name)};`);
    }
  }
  for (const f of fw?.forwards ?? []) {
    const seg = m.segments.find((s) => s.zone === f.toZone);
    if (!seg) continue;
    out.push(
      `  ${id("net", "internet")} -- ${id("seg", seg.name)} [dir=forward, style=dashed, label=${q(`${f.protocol}/${f.port} ${f.name} → ${f.to}`)}];`,
    );
  }
  out.push("}", "");
  return out.join("\n");
}

const COLOURS: Record<string, string> = {
  accept: "#c8e6c9",
  drop: "#ffcdd2",
  reject: "#ffe0b2",
  services: "#e0e0e0",
};

function cellHtml(c: MatrixCellFacts | undefined): string {
  if (!c) return "<TD></TD>";
  const rules = c.rules.length ? `<BR/><FONT POINT-SIZE="8">+ ${c.rules.map(h).join("<BR/>+ ")}</FONT>` : "";
  return `<TD BGCOLOR="${COLOURS[c.verdict] ?? "#ffffff"}">${h(c.verdict)}${rules}</TD>`;
}

/** The zone matrix as DOT: one table node, rows from, columns to (zones, then the router). */
export function zoneMatrixDot(m: ReviewModel): string {
  const fw = m.firewall;
  const zones = (fw?.zones ?? []).map((z) => z.name);
  const cols = [...zones, "router"];
  const cell = (from: string, to: string) => fw?.matrix.find((c) => c.from === from && c.to === to);
  const rows = [
    `<TR><TD><B>from \\ to</B></TD>${cols.map((c) => `<TD><B>${h(c)}</B></TD>`).join("")}</TR>`,
    ...zones.map((from) => `<TR><TD><B>${h(from)}</B></TD>${cols.map((to) => cellHtml(cell(from, to))).join("")}</TR>`),
  ];
  return [
    "digraph zone_matrix {",
    `  graph [${FONT}, labelloc=t, label="Zone matrix: new connections from row to column"];`,
    `  node [${FONT}, fontsize=10, shape=plaintext];`,
    `  matrix [label=<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">`,
    ...rows.map((r) => `    ${r}`),
    "  </TABLE>>];",
    "}",
    "",
  ].join("\n");
}

/** The pictures' DOT sources by artifact path. */
export function renderPictures(m: ReviewModel): Map<string, string> {
  return new Map([
    [`${TOPOLOGY}.dot`, topologyDot(m)],
    [`${ZONE_MATRIX}.dot`, zoneMatrixDot(m)],
  ]);
}

/** True when Graphviz's `dot` runs here. */
export function haveGraphviz(): boolean {
  return spawnSync("dot", ["-V"], { stdio: "ignore" }).status === 0;
}

/** SVG of each DOT source, by Graphviz (`.dot` → `.svg`); throws naming the picture when dot rejects one. */
export function drawSvgs(dots: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [path, dot] of dots) {
    const r = spawnSync("dot", ["-Tsvg"], { input: dot, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`graphviz could not draw ${path}: ${r.stderr.trim()}`);
    out.set(path.replace(/\.dot$/, ".svg"), r.stdout);
  }
  return out;
}
