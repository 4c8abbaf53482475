/**
 * The OSPF collector as rendered: on a site with OSPF and the observability stack, the node exporter's pod gains a
 * container that runs router-ospf-metrics on the status file the bird pod writes (its host directory mounted read
 * only), with OSPF's dead interval and the status interval of the render, writing into the textfile directory; it
 * holds no capability. A site without OSPF, or without the stack, has none of it, and the OSPF alert rules follow
 * the site the same way.
 */
import { describe, expect, it } from "vitest";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { alertRules } from "../../components/observability-stack/alerts";
import { TEXTFILE_DIR, type ObsObject } from "../../components/observability-stack/k8s";
import { OSPF_DEAD_S } from "../../components/network-services/bird";
import { OSPF_STATUS_DIR, OSPF_STATUS_FILE, OSPF_STATUS_INTERVAL } from "../../components/network-services/k8s";
import { parse } from "yaml";
import { renderStack } from "../../cli/render";
import type { Raw } from "../helpers/dev-site";
import { devStack } from "../helpers/stacks";
import { nodeExporter, renderedObservability } from "./lib/render";

/** The dev site with OSPF on its servers segment. */
function withOspf(raw: Raw): void {
  raw.routing = { ospf: { routerId: "10.50.0.1", segments: ["servers"] } };
}

function render(edit?: (raw: Raw) => void) {
  const { s, objects } = renderedObservability(edit);
  const ospfAlerts = alertRules(s.site, s.plan)
    .map((r) => r.alert)
    .filter((a) => a.startsWith("Ospf"));
  return { s, pod: nodeExporter(objects).spec!.template.spec!, ospfAlerts };
}

describe("the OSPF collector", () => {
  it("runs on an OSPF site on the bird pod's status, mounted read only, with the render's timers", () => {
    const { s, pod, ospfAlerts } = render(withOspf);
    const c = pod.containers.find((x) => x.name === "ospf-metrics")!;
    expect(c.command).toEqual([
      "router-ospf-metrics",
      "/var/lib/router/routing/ospf.json",
      "40",
      "5",
      `${TEXTFILE_DIR}/ospf.prom`,
      String(parseInt(s.site.observability.scrapeInterval, 10)),
    ]);
    // the same values as the constants the bird pod's status container and bird.conf are rendered from
    expect([OSPF_STATUS_FILE, OSPF_DEAD_S, OSPF_STATUS_INTERVAL]).toEqual(["/var/lib/router/routing/ospf.json", 40, 5]);
    expect(c.image).toBe("own");
    expect(c.securityContext).toMatchObject({
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: [] },
    });
    expect(c.resources).toEqual({ requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "32Mi" } });
    const volume = (mountPath: string) => {
      const m = c.volumeMounts!.find((x) => x.mountPath === mountPath)!;
      return { readOnly: m.readOnly === true, ...pod.volumes!.find((v) => v.name === m.name)! };
    };
    expect(c.volumeMounts!.map((m) => m.mountPath).sort()).toEqual([OSPF_STATUS_DIR, TEXTFILE_DIR].sort());
    expect(volume(OSPF_STATUS_DIR)).toMatchObject({ readOnly: true, hostPath: { path: OSPF_STATUS_DIR } });
    expect(volume(TEXTFILE_DIR)).toMatchObject({ readOnly: false, hostPath: { path: TEXTFILE_DIR } });
    expect(ospfAlerts).toEqual(["OspfNeighbourLost", "OspfNeighbourSilent", "OspfStatusUnreadable"]);
  });

  it("is not there on a site without OSPF, nor are its alerts", () => {
    const { pod, ospfAlerts } = render();
    expect(pod.containers.map((c) => c.name)).not.toContain("ospf-metrics");
    expect(pod.volumes!.some((v) => v.hostPath?.path === OSPF_STATUS_DIR)).toBe(false);
    expect(ospfAlerts).toEqual([]);
  });

  // The whole program offline, with the policy pack enforced (host paths under the state directory, no
  // capability beyond the allow-list): the container is in the node exporter's DaemonSet only with both.
  it.each([
    { name: "with OSPF and the observability stack, the collector", ospf: true, observability: true, present: true },
    { name: "with OSPF but no observability stack, no collector", ospf: true, observability: false, present: false },
    {
      name: "with the observability stack but no OSPF, no collector",
      ospf: false,
      observability: true,
      present: false,
    },
  ])(
    "renders $name (the whole program, policies enforced)",
    async ({ ospf, observability, present }) => {
      const { files } = await renderStack({
        stack: "dev",
        config: devStack((raw) => {
          if (ospf) withOspf(raw);
          if (!observability) raw.observability = { enabled: false };
        }),
        enforcePolicies: true,
      });
      const containers = [...files]
        .filter(([path]) => path.startsWith("k8s/"))
        .map(([, text]) => parse(text) as ObsObject & IDaemonSet)
        .filter((o) => o.kind === "DaemonSet")
        .flatMap((o) => o.spec!.template.spec!.containers.map((c) => `${o.metadata.name}/${c.name}`));
      expect(containers.includes("node-exporter/ospf-metrics")).toBe(present);
      expect(containers.includes("bird/ospf-status")).toBe(ospf);
    },
    120_000,
  );
});
