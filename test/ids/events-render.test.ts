/**
 * Where the IDS's events go, as rendered (the real pipeline runs in events.test.ts): with the site's observability
 * stack, Suricata writes EVE to the log collector's socket and alerts and stats to the metrics agent, each process
 * to its own agent socket; without it, nothing of that exists and SUMMARY.md says events are not shipped.
 */
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { IContainer } from "kubernetes-models/v1/Container";
import { devSite, type Raw } from "../helpers/dev-site";
import { planIds } from "../../components/ids-stack/plan";
import { ROUTER_IDS_PATHS, suricataFiles } from "../../components/ids-stack/suricata";
import { renderIdsObjects } from "../../components/ids-stack/k8s";
import { renderIdsSummary } from "../../components/ids-stack/summary";
import { renderSyslogNg } from "../../components/observability-stack/logs";
import { renderObservabilityObjects } from "../../components/observability-stack/k8s";
import { renderStackFiles } from "../../components/observability-stack/files";

type EveOutput = { "eve-log": { filetype: string; filename: string; types: unknown[] } };

function rendered(edit?: (raw: Raw) => void) {
  const { site, plan, policy } = devSite(edit);
  const ids = planIds(site, plan);
  const yaml = parse(suricataFiles(site, ids).get("suricata.yaml")!) as { outputs: EveOutput[] };
  const ds = renderIdsObjects(ids, suricataFiles(site, ids), "img").find((o) => o.kind === "DaemonSet")!;
  const containers = (ds as { spec: { template: { spec: { containers: IContainer[] } } } }).spec.template.spec
    .containers;
  return { site, plan, policy, ids, yaml, containers };
}

/** The EVE outputs a process writes after its `--set outputs.N.eve-log.filename=…` overrides. */
function socketsOf(yaml: { outputs: EveOutput[] }, c: IContainer): string[] {
  const outputs = yaml.outputs.map((o) => ({ ...o["eve-log"] }));
  const argv = c.command!;
  argv.forEach((a, i) => {
    const m = /^outputs\.(\d+)\.eve-log\.filename=(.+)$/.exec(argv[i + 1] ?? "");
    if (a === "--set" && m) outputs[Number(m[1])].filename = m[2];
  });
  return outputs.filter((o) => o.filetype === "unix_dgram").map((o) => o.filename);
}

describe("the IDS's events, rendered", () => {
  it("go to the collector's socket and each process's metrics socket, which the agent binds", () => {
    const { yaml, containers } = rendered();
    const collector = `${ROUTER_IDS_PATHS.events}/eve.sock`;
    const agent = containers.find((c) => c.name === "metrics")!;
    const bound = agent.command!.flatMap((a, i) => (agent.command![i - 1] === "--socket" ? [a] : []));
    expect(bound).toEqual([`ids=${ROUTER_IDS_PATHS.metrics}/ids.sock`, `ips=${ROUTER_IDS_PATHS.metrics}/ips.sock`]);
    for (const run of ["ids", "ips"]) {
      const c = containers.find((x) => x.name === `suricata-${run}`)!;
      expect(socketsOf(yaml, c)).toContain(collector);
      expect(socketsOf(yaml, c)).toContain(`${ROUTER_IDS_PATHS.metrics}/${run}.sock`);
      expect(c.volumeMounts).toContainEqual({ name: "events", mountPath: ROUTER_IDS_PATHS.events, readOnly: true });
    }
    // the collector binds that socket, in the directory it mounts from the same host path
    const { site, plan, policy } = devSite();
    expect(renderSyslogNg(site, plan)).toContain(`unix-dgram("${collector}"`);
    const files = renderStackFiles(site, plan, policy, { webhookToken: false });
    const objs = renderObservabilityObjects(site, plan, files, { own: "o", logs: "l", dashboards: "d" }, {});
    const collectorPod = JSON.stringify(objs.find((o) => o.metadata.name === "log-collector"));
    expect(collectorPod).toContain(`"hostPath":{"path":"${ROUTER_IDS_PATHS.events}"`);
  });

  it("are not shipped without the observability stack: no socket, no agent, and the summary says so", () => {
    const { site, plan, yaml, containers } = rendered((raw) => (raw.observability = { enabled: false }));
    expect(yaml.outputs.map((o) => o["eve-log"].filename)).not.toContain(`${ROUTER_IDS_PATHS.events}/eve.sock`);
    expect(
      yaml.outputs.flatMap((o) => (o["eve-log"].filename.startsWith(ROUTER_IDS_PATHS.metrics) ? [o] : [])),
    ).toEqual([]);
    expect(containers.map((c) => c.name)).not.toContain("metrics");
    expect(JSON.stringify(containers)).not.toContain(ROUTER_IDS_PATHS.events);
    const md = renderIdsSummary(site, planIds(site, plan)).sections[0]!.markdown;
    expect(md).toContain("Events: **not shipped**");
  });

  it("with Zeek, its log files are followed by the collector, read only", () => {
    const { site, plan, policy } = devSite(
      (raw) => (raw.ids.zeek = { enabled: true, image: `docker.io/zeek/zeek:7.0.5@sha256:${"a".repeat(64)}` }),
    );
    expect(renderSyslogNg(site, plan)).toContain(`wildcard-file(base-dir("${ROUTER_IDS_PATHS.logs}/zeek")`);
    const files = renderStackFiles(site, plan, policy, { webhookToken: false });
    const objs = renderObservabilityObjects(site, plan, files, { own: "o", logs: "l", dashboards: "d" }, {});
    const pod = objs.find((o) => o.metadata.name === "log-collector") as unknown as {
      spec: {
        template: { spec: { containers: IContainer[]; volumes: { name: string; hostPath?: { path: string } }[] } };
      };
    };
    const spec = pod.spec.template.spec;
    const vol = spec.volumes.find((v) => v.hostPath?.path === `${ROUTER_IDS_PATHS.logs}/zeek`)!;
    const mount = spec.containers.find((c) => c.name === "syslog-ng")!.volumeMounts!.find((m) => m.name === vol.name);
    expect(mount?.readOnly).toBe(true);
  });
});
