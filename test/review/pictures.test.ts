/**
 * Pictures in SUMMARY.md: the topology and the zone matrix as DOT from the review facts (always), drawn as SVG
 * by Graphviz in the offline render, and shown by a real browser (headless Chromium): each picture loads, has
 * its size, is not blank, and the matrix shows its verdict colours. Screenshots are kept under
 * out/test-pictures/ and their paths printed. Without Graphviz the render still succeeds with the DOT only, and
 * the summary stays readable as plain text either way.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderPictures, topologyDot, zoneMatrixDot } from "../../cli/pictures";
import type { ReviewModel } from "../../components/review";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";

const graphics = tier("pictures (Graphviz and headless Chromium)", { commands: ["dot", "chromium"] });

function render(out: string, env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "cli/render.ts"), "--stack", "dev", "--out", out], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 120_000,
    env,
  });
}

/** Chromium as root in a container-like machine: no sandbox, no background traffic, a fresh profile. */
function chromium(args: string[]) {
  const profile = tempDir("review-chromium-");
  return spawnSync(
    "chromium",
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      "--hide-scrollbars",
      ...args,
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
}

/** A page showing the SVG as an image and reporting, once drawn, its size and its pixels by colour. */
function probePage(svg: string): string {
  const src = `data:image/svg+xml;base64,${Buffer.from(svg).toString("base64")}`;
  return `<!doctype html><html><body style="margin:0;background:#fff">
<img id="p" src="${src}"><pre id="result">pending</pre>
<script>
const img = document.getElementById("p");
function report() {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d"); g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const colours = {}; let ink = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) ink++;
    const k = "#" + [d[i], d[i + 1], d[i + 2]].map((x) => x.toString(16).padStart(2, "0")).join("");
    colours[k] = (colours[k] || 0) + 1;
  }
  document.getElementById("result").textContent = JSON.stringify({ width: c.width, height: c.height, ink, colours });
}
if (img.complete && img.naturalWidth) report(); else { img.onload = report; img.onerror = () => document.getElementById("result").textContent = "error"; }
</script></body></html>`;
}

interface Probe {
  width: number;
  height: number;
  ink: number;
  colours: Record<string, number>;
}

function probe(svg: string, name: string, shots: string): Probe {
  const page = join(tempDir("review-page-"), `${name}.html`);
  writeFileSync(page, probePage(svg));
  const dom = chromium(["--virtual-time-budget=10000", "--dump-dom", `file://${page}`]);
  const m = /<pre id="result">([^<]*)<\/pre>/.exec(dom.stdout);
  if (!m || !m[1].startsWith("{"))
    throw new Error(`${name}: the browser did not draw the picture: ${m?.[1] ?? dom.stderr}`);
  const result = JSON.parse(m[1].replace(/&quot;/g, '"')) as Probe;
  const shot = join(shots, `${name}.png`);
  chromium([`--window-size=${result.width + 20},${result.height + 20}`, `--screenshot=${shot}`, `file://${page}`]);
  console.log(`screenshot of ${name}: ${shot}`);
  return result;
}

let review: ReviewModel;

beforeAll(() => {
  review = JSON.parse(readFileSync(join(ROOT, "test/golden/dev/review.json"), "utf8")) as ReviewModel;
});

describe("the site's pictures as DOT", () => {
  it("draw every WAN, trunk, segment (with its addresses and zone) and forward in the topology", () => {
    const dot = topologyDot(review);
    for (const l of ["wan0 (zone wan, priority 10)", "wan1 (zone wan, priority 20)", "lan0 trunk"])
      expect(dot).toContain(l);
    for (const s of review.segments) {
      expect(dot).toContain(`${s.name} — VLAN ${s.vlan} (${s.link})\\n${s.ipv4}`);
      expect(dot).toMatch(new RegExp(`cluster_${s.zone}`));
    }
    for (const f of review.firewall!.forwards) expect(dot).toContain(`${f.protocol}/${f.port} ${f.name} → ${f.to}`);
  });

  it("draw every cell of the zone matrix with its verdict and refining rules", () => {
    const dot = zoneMatrixDot(review);
    const fw = review.firewall!;
    expect(dot.match(/<TD BGCOLOR=/g)).toHaveLength(fw.matrix.length);
    expect(dot).toContain("+ accept tcp/22,443 to @switches (admins-reach-switches)");
    expect([...renderPictures(review).keys()]).toEqual(["pictures/topology.dot", "pictures/zone-matrix.dot"]);
  });
});

describe.skipIf(!graphics.ok)("the pictures in a browser", () => {
  let out: string;
  const shots = join(ROOT, "out/test-pictures");

  beforeAll(() => {
    out = join(tempDir("review-pictures-"), "dev");
    const r = render(out);
    expect(r.status, r.stderr).toBe(0);
    mkdirSync(shots, { recursive: true });
  }, 180_000);

  it("are drawn by Graphviz into the render and show in headless Chromium, not blank", () => {
    for (const name of ["topology", "zone-matrix"]) {
      const svg = readFileSync(join(out, `pictures/${name}.svg`), "utf8");
      expect(svg).toMatch(/^<\?xml/);
      const p = probe(svg, name, shots);
      expect(p.width).toBeGreaterThan(300);
      expect(p.height).toBeGreaterThan(100);
      expect(p.ink / (p.width * p.height)).toBeGreaterThan(0.01);
      expect(existsSync(join(shots, `${name}.png`))).toBe(true);
      // The matrix shows verdicts by colour: accept (green) and drop (red) cells are both there.
      if (name === "zone-matrix") {
        expect(p.colours["#c8e6c9"] ?? 0).toBeGreaterThan(1000);
        expect(p.colours["#ffcdd2"] ?? 0).toBeGreaterThan(1000);
      }
    }
  }, 180_000);

  it("are linked from a summary that stays readable as plain text", () => {
    const summary = readFileSync(join(out, "SUMMARY.md"), "utf8");
    expect(summary).toContain("![Topology of site lab](pictures/topology.svg)");
    expect(summary).toContain("Graphviz source [pictures/zone-matrix.dot](pictures/zone-matrix.dot)");
    expect(summary).not.toMatch(/<svg|<img|data:image|<table/i);
    expect(summary).toMatch(/^## Topology$/m);
    expect(summary).toMatch(/^## Zone matrix/m);
  });
});

describe("a render without Graphviz", () => {
  it("succeeds with the DOT sources only and says so", () => {
    const bin = tempDir("review-nodot-");
    symlinkSync(process.execPath, join(bin, "node"));
    const out = join(tempDir("review-pictures-"), "dev");
    const r = render(out, { ...process.env, PATH: bin });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("Graphviz (dot) is not installed: pictures written as DOT only");
    expect(existsSync(join(out, "pictures/topology.dot"))).toBe(true);
    expect(existsSync(join(out, "pictures/topology.svg"))).toBe(false);
  }, 180_000);
});
