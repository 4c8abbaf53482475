/**
 * The observability area's flow proof (lib/areas/observability.ts registers it): a segment's client sends a
 * known number of bytes over TCP to the internet host; the rendered softflowd on the segment's link exports the
 * flow over IPFIX to the rendered nfacctd, whose per-window aggregate the rendered top-talker script turns into
 * router_flow_top_talker_bytes for the node exporter; Prometheus has the client's bytes on that segment within
 * 5 %. softflowd exports a finished flow at its next expiry check (up to a minute later): the test asks it to
 * export at once (`softflowctl expire-all` on the pod's control socket, what an operator runs to flush), which
 * changes when the record leaves, not what it counts.
 */
import { readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { expect } from "vitest";
import { TALKERS_CSV, TALKERS_WINDOW } from "../../../../components/observability-stack/flows";
import { durationSeconds } from "../../../../components/site/duration";
import { compilePolicy, evaluate } from "../../../../components/site/policy";
import type { SegmentPlan } from "../../../../components/site/plan";
import { waitFor } from "../../../helpers/wait";
import type { Appliance, Host } from "../appliance";
import { INTERNET } from "../internet";
import type { SuiteContext } from "../suite";
import { query } from "./observability-metrics";

/** Bytes the client sends: 20 MB. */
const FLOW_BYTES = 20_000_000;
/** The tolerance the flow's count must meet. */
const TOLERANCE = 0.05;

/** Segments whose connections to the internet go through no IDS queue (an inline pair would hold them). */
function uninspected(ctx: Pick<SuiteContext, "site" | "plan">): SegmentPlan[] {
  const inline = new Set(ctx.site.ids.enabled ? ctx.site.ids.ips.pairs.flatMap((p) => [p.from, p.to]) : []);
  return ctx.plan.segments.filter((s) => !inline.has(s.zone) && s.ipv4);
}

/** Ports of the internet host the flow may use (other servers of the appliance skipped). */
const PORTS = { first: 47001, last: 47099 };

/**
 * The first segment (by name) and port whose connection from `source` (an address of the segment) to the
 * internet host the zone policy accepts.
 */
function flowPath(
  ctx: Pick<SuiteContext, "site" | "plan">,
  source: (seg: SegmentPlan) => string | undefined,
  busy: ReadonlySet<number> = new Set(),
): { seg: SegmentPlan; src: string; port: number } | undefined {
  const model = compilePolicy(ctx.site, ctx.plan);
  const wanZone = [...ctx.plan.wans].sort((a, b) => a.priority - b.priority)[0].zone;
  for (const seg of uninspected(ctx).sort((a, b) => a.name.localeCompare(b.name))) {
    const src = source(seg);
    if (!src) continue;
    for (let port = PORTS.first; port <= PORTS.last; port++) {
      if (busy.has(port)) continue;
      const d = evaluate(model, { from: seg.zone, to: wanZone, proto: "tcp", port, src, dst: INTERNET.server4 });
      if (d.verdict === "accept") return { seg, src, port };
    }
  }
  return undefined;
}

/** Whether some segment may reach the internet host over TCP (its gateway's address standing in for a client's). */
export function flowTestApplies(ctx: Pick<SuiteContext, "site" | "plan">): boolean {
  return !!flowPath(ctx, (seg) => seg.ipv4?.gateway);
}

/** nfacctd's aggregate on the host: the flows pod's emptyDir at the CSV's directory. */
function talkersCsv(app: Appliance): string {
  const pod = app.pods.specs.find((p) => p.command[0] === "nfacctd");
  if (!pod) throw new Error("no nfacctd pod");
  const dir = dirname(TALKERS_CSV);
  return join(app.pods.emptyDir(pod.name, dir), basename(TALKERS_CSV));
}

/** The rendered softflowd pod of a link and its control socket (its `-c` argument) on the host. */
function softflowdOf(app: Appliance, link: string): { pod: string; ctl: string } {
  const pod = app.pods.specs.find((p) => {
    const i = p.command.indexOf("-i");
    return p.command[0] === "softflowd" && i >= 0 && p.command[i + 1]?.split(":").pop() === link;
  });
  if (!pod) throw new Error(`no softflowd pod captures ${link}`);
  const ctl = pod.command[pod.command.indexOf("-c") + 1];
  const dir = ctl.slice(0, ctl.lastIndexOf("/"));
  return { pod: pod.name, ctl: `${app.pods.emptyDir(pod.name, dir)}${ctl.slice(dir.length)}` };
}

/** Sends FLOW_BYTES from a client to the internet host and finds them in the top-talker metric. */
export async function flowCounted(ctx: SuiteContext): Promise<void> {
  const app = ctx.app;
  const mainClient = (seg: SegmentPlan): Host | undefined =>
    app.hosts.find((h) => h.role === "client" && h.segment.name === seg.name);
  const path = flowPath(ctx, (seg) => mainClient(seg)?.addr4, new Set(app.opts.ports.tcp));
  if (!path)
    throw new Error(
      `no segment's client may open a TCP connection to the internet host on ports ${PORTS.first}–${PORTS.last}`,
    );
  const { seg, port } = path;
  const client = mainClient(seg)!;
  const sf = softflowdOf(app, seg.link);
  await waitFor(
    `softflowd on ${seg.link} (pod ${sf.pod})`,
    () => app.pods.running.get(sf.pod)?.log().includes("starting"),
    10_000,
    200,
  );
  const sink = app.shell.daemon(`${app.inet}-flow-sink`, app.inet, [
    "socat",
    "-u",
    `TCP-LISTEN:${port},bind=${INTERNET.server4},reuseaddr`,
    "OPEN:/dev/null",
  ]);
  try {
    await waitFor(
      `the flow sink on ${INTERNET.server4}:${port}`,
      () => app.exec(app.inet, ["ss", "-Htln", `sport = :${port}`]).stdout.trim(),
      5000,
      100,
    );
    const sent = await app.run(client.ns, [
      "sh",
      "-c",
      // from the client's own address (its link also holds the probe sources, the first of them is the default)
      `head -c ${FLOW_BYTES} /dev/zero | socat -u - TCP:${INTERNET.server4}:${port},bind=${client.addr4}`,
    ]);
    expect(sent.status, sent.stderr).toBe(0);
    app.exec(app.router, ["softflowctl", "-c", sf.ctl, "expire-all"]);
    const exportedAt = Date.now();
    const metric = `router_flow_top_talker_bytes{kind="segment",name="${seg.name}",address="${client.addr4}"}`;
    const flowLogs = (): string =>
      app.pods.specs
        .filter((p) => p.daemonSet === "flows")
        .map((p) => `--- ${p.name}\n${app.pods.running.get(p.name)?.log().slice(-800) ?? "(not running)"}`)
        .join("\n");
    // The metric is a gauge of the last window: the client's earlier traffic (a test before this one) may have a
    // value there already. Wait for the first window nfacctd writes after the export that holds the client,
    // then for a sample of the metric scraped after the talker script has read that window.
    const csv = talkersCsv(app);
    const windowAt = await waitFor(
      `a flow window written after the export that holds ${client.addr4} (${csv})`,
      () => {
        const st = statSync(csv, { throwIfNoEntry: false });
        if (!st || st.mtimeMs <= exportedAt) return undefined;
        return readFileSync(csv, "utf8").includes(`,${client.addr4},`) ? st.mtimeMs : undefined;
      },
      (TALKERS_WINDOW + 10) * 1000,
      500,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${flowLogs()}`);
    });
    const interval = durationSeconds(ctx.site.observability.scrapeInterval);
    // the script reads the window within one interval; a scrape after that sees it
    const after = windowAt / 1000 + interval + 1;
    const got = await waitFor(
      `${metric} scraped after ${new Date(after * 1000).toISOString()}`,
      async () => (await query(app, `${metric} and timestamp(${metric}) > ${after.toFixed(3)}`))[0],
      (2 * interval + 10) * 1000,
      1000,
    ).catch(async (e: Error) => {
      const seen = (await query(app, metric))[0];
      throw new Error(`${e.message} (last value seen: ${seen?.value[1] ?? "none"})\n${flowLogs()}`);
    });
    const bytes = Number(got.value[1]);
    console.log(
      `${ctx.title}: ${FLOW_BYTES} bytes from ${client.addr4} on ${seg.name} counted as ${bytes} (${(((bytes - FLOW_BYTES) / FLOW_BYTES) * 100).toFixed(2)} %) ${((Date.now() - exportedAt) / 1000).toFixed(0)} s after the export`,
    );
    expect(Math.abs(bytes - FLOW_BYTES) / FLOW_BYTES).toBeLessThanOrEqual(TOLERANCE);
  } finally {
    await sink.stop();
  }
}
