/**
 * Shared plumbing of the benchmarks that run the virtual appliance: medians, ratios taken round by round, and a
 * description of the machine the figures come from.
 */
import { execFileSync } from "node:child_process";
import { cpus, loadavg, totalmem } from "node:os";

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * The median over rounds of a[i] / b[i]: the configurations of a round ran back to back, so this is less sensitive to
 * drift in the machine's load than a ratio of medians, and reported beside it.
 */
export function pairedMedian(a: number[], b: number[]): number {
  return median(a.map((x, i) => x / b[i]));
}

/** The machine, as the results files record it (load averages at the start, given, and now). */
export function machine(loadAverageAtStart: number[]) {
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    memoryGiB: totalmem() / 2 ** 30,
    kernel: execFileSync("uname", ["-r"], { encoding: "utf8" }).trim(),
    iperf3: execFileSync("iperf3", ["--version"], { encoding: "utf8" }).split("\n")[0],
    loadAverageAtStart,
    loadAverageAtEnd: loadavg(),
    node: process.version,
  };
}
