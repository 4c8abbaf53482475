/**
 * One command for many routers: runs preview, up or a drift check over the project's stacks (one stack is one
 * site) with Pulumi's Automation API — canary stacks first, then waves with bounded concurrency, stopping at the
 * first failure — and prints a table of what happened to each.
 *
 *   npm run fleet -- preview|up|drift [--stacks GLOB[,GLOB…]] [--canary N] [--concurrency K]
 *                    [--timeout DURATION] [--cancel-grace DURATION] [--dir PROJECT_DIR] [--pulumi-root DIR]
 *                    [--inline] [--json FILE]
 *
 * Exit status: 0 when every stack succeeded (and, for drift, matches its router); 1 when a stack failed, timed
 * out or was not run, or on bad usage; 2 when drift found stacks whose router no longer matches and none failed.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { fleetOptions, FleetUsageError } from "./fleet/plan";
import { FleetError, runFleet } from "./fleet/run";
import { renderReport, type FleetReport } from "./fleet/report";

/** The command's exit status for a finished report. */
export function exitStatus(report: FleetReport): number {
  if (report.results.some((r) => r.status !== "ok" && r.status !== "drifted")) return 1;
  return report.results.some((r) => r.status === "drifted") ? 2 : 0;
}

async function main(argv: string[]): Promise<number> {
  let opts;
  try {
    const raw = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        stacks: { type: "string" },
        canary: { type: "string" },
        concurrency: { type: "string" },
        timeout: { type: "string" },
        "cancel-grace": { type: "string" },
        dir: { type: "string" },
        "pulumi-root": { type: "string" },
        inline: { type: "boolean" },
        json: { type: "string" },
      },
    });
    opts = fleetOptions(raw, process.cwd());
  } catch (e) {
    const message = e instanceof FleetUsageError ? e.message : `${(e as Error).message}\n${USAGE_HINT}`;
    process.stderr.write(`fleet: invalid command line:\n${message}\n`);
    return 1;
  }
  try {
    const report = await runFleet(opts, (line) => process.stderr.write(`${line}\n`));
    process.stdout.write(renderReport(report));
    if (opts.json) writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
    return exitStatus(report);
  } catch (e) {
    const message = e instanceof FleetError ? e.message : String((e as Error)?.stack ?? e);
    process.stderr.write(`fleet: ${message}\n`);
    return 1;
  }
}

const USAGE_HINT = "run: npm run fleet -- preview|up|drift [--stacks GLOB] [--canary N] [--concurrency K] …";

if (require.main === module) void main(process.argv.slice(2)).then((code) => process.exit(code));
