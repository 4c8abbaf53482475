/**
 * Render benchmark: wall time and peak memory of `npm run render` for the dev site and for generated sites of
 * 8, 16, 32 and 64 segments, against a floor (the same tsx + Pulumi runtime start with no program) measured in
 * the same run. Medians of RUNS runs. Prints a table and writes bench/results/render.json.
 *
 *   npm run bench:render [-- --runs 5]
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { siteWithSegments } from "./sites";

const ROOT = join(__dirname, "..");
const NODE = process.execPath;

interface Sample {
  seconds: number;
  maxRssMB: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function timed(args: string[]): Sample {
  const start = process.hrtime.bigint();
  const r = spawnSync(NODE, ["--import", "tsx", ...args], { encoding: "utf8", cwd: ROOT });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${args.join(" ")} failed:\n${r.stderr}`);
  const line = r.stderr.split("\n").find((l) => l.startsWith('{"stats"'));
  const maxRssMB = line ? (JSON.parse(line) as { stats: { maxRssMB: number } }).stats.maxRssMB : NaN;
  return { seconds, maxRssMB };
}

function main(): void {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
  const runs = Number(values.runs);
  const project = mkdtempSync(join(tmpdir(), "bench-render-"));
  copyFileSync(join(ROOT, "Pulumi.yaml"), join(project, "Pulumi.yaml"));
  copyFileSync(join(ROOT, "Pulumi.dev.yaml"), join(project, "Pulumi.dev.yaml"));
  const sizes = [8, 16, 32, 64];
  for (const n of sizes) writeFileSync(join(project, `Pulumi.seg${n}.yaml`), siteWithSegments(n));
  const floorScript = join(project, "floor.ts");
  writeFileSync(
    floorScript,
    `import * as pulumi from "${join(ROOT, "node_modules/@pulumi/pulumi")}";\nvoid pulumi;\nconsole.error(JSON.stringify({ stats: { maxRssMB: process.resourceUsage().maxRSS / 1024 } }));\n`,
  );

  const cases: { name: string; segments: number | null; args: string[] }[] = [
    { name: "floor (node + tsx + @pulumi/pulumi, no program)", segments: null, args: [floorScript] },
    {
      name: "dev site",
      segments: 5,
      args: ["cli/render.ts", "--dir", project, "--stack", "dev", "--out", join(project, "out/dev"), "--stats"],
    },
    ...sizes.map((n) => ({
      name: `${n} segments`,
      segments: n,
      args: ["cli/render.ts", "--dir", project, "--stack", `seg${n}`, "--out", join(project, `out/seg${n}`), "--stats"],
    })),
  ];
  // Warm the file cache and tsx's transform cache once, then interleave runs so drift hits every case alike.
  for (const c of cases) timed(c.args);
  const samples = new Map<string, Sample[]>(cases.map((c) => [c.name, []]));
  for (let i = 0; i < runs; i++) for (const c of cases) samples.get(c.name)!.push(timed(c.args));

  const rows = cases.map((c) => {
    const s = samples.get(c.name)!;
    return {
      case: c.name,
      segments: c.segments,
      medianSeconds: median(s.map((x) => x.seconds)),
      medianMaxRssMB: median(s.map((x) => x.maxRssMB)),
      seconds: s.map((x) => x.seconds),
      maxRssMB: s.map((x) => x.maxRssMB),
    };
  });
  const floor = rows[0];
  const dev = rows[1];
  const bySize = (n: number) => rows.find((r) => r.segments === n && r.case.endsWith("segments"))!;
  // Marginal cost per segment in the lower and the upper half of the range: no worse than linear means the
  // upper slope is not much steeper than the lower one.
  const slopeLow = (bySize(32).medianSeconds - bySize(8).medianSeconds) / 24;
  const slopeHigh = (bySize(64).medianSeconds - bySize(32).medianSeconds) / 32;
  const result = {
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: totalmem() / 2 ** 30, node: process.version },
    runs,
    rows,
    goals: {
      devSeconds: { value: dev.medianSeconds, goal: 3, met: dev.medianSeconds <= 3 },
      devMaxRssMB: { value: dev.medianMaxRssMB, goal: 400, met: dev.medianMaxRssMB <= 400 },
      devOverFloorSeconds: dev.medianSeconds - floor.medianSeconds,
      secondsPerSegment: { from8to32: slopeLow, from32to64: slopeHigh },
      linear: {
        ratio: slopeLow > 0 ? slopeHigh / slopeLow : null,
        goal: "≤ 1.5 (upper slope not steeper than the lower)",
        met: slopeHigh <= 1.5 * Math.max(slopeLow, 0.001),
      },
    },
  };
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(join(ROOT, "bench/results/render.json"), `${JSON.stringify(result, null, 2)}\n`);

  console.log(`render benchmark: median of ${runs} runs, ${result.machine.cpus} CPUs (${result.machine.model})\n`);
  console.log("| case | median wall time | × floor | median peak RSS |");
  console.log("|---|---|---|---|");
  for (const r of rows)
    console.log(
      `| ${r.case} | ${r.medianSeconds.toFixed(2)} s | ${(r.medianSeconds / floor.medianSeconds).toFixed(2)} | ${r.medianMaxRssMB.toFixed(0)} MB |`,
    );
  console.log(
    `\ndev site: ${dev.medianSeconds.toFixed(2)} s (goal ≤ 3 s: ${result.goals.devSeconds.met ? "met" : "NOT met"}), ` +
      `${dev.medianMaxRssMB.toFixed(0)} MB (goal ≤ 400 MB: ${result.goals.devMaxRssMB.met ? "met" : "NOT met"})`,
  );
  console.log(
    `per segment: ${(slopeLow * 1000).toFixed(1)} ms (8→32), ${(slopeHigh * 1000).toFixed(1)} ms (32→64); ` +
      `linear growth: ${result.goals.linear.met ? "yes" : "NO"}`,
  );
}

main();
