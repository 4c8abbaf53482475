/**
 * The BGP collector as rendered: on a site with BGP, the node exporter's pod gains a container that runs
 * router-bgp-metrics with talosctl from the talosctl image (an image volume) and the talosconfig of a Talos
 * ServiceAccount limited to os:reader, and the machine configuration lets exactly that namespace have exactly that
 * role (a KubeTalosAPIAccessConfig document, which Talos' own validation accepts: test/talos/talos-validate.test.ts
 * on the branch site); a site without BGP has none of it.
 */
import { describe, expect, it } from "vitest";
import { talosctlImage, TEXTFILE_DIR } from "../../components/observability-stack/k8s";
import { observabilityHost } from "../../components/observability-stack/host";
import { devSite, type Raw } from "../helpers/dev-site";
import { nodeExporter, renderedObservability } from "./lib/render";
import { withBgp } from "../helpers/lifecycle-fixtures";

const PINNED = `ghcr.io/siderolabs/talosctl:v1.14.1@sha256:${"d".repeat(64)}`;

function render(edit?: (raw: Raw) => void) {
  const { s, files, objects } = renderedObservability(edit, (site) => (site.routing.bgp ? { talosctl: PINNED } : {}));
  const access = observabilityHost(s.site).documents.filter((d) => d.kind === "KubeTalosAPIAccessConfig");
  return { s, files, objects, access };
}

describe("the BGP collector", () => {
  it("runs on a BGP site with talosctl from its image and a read-only Talos service account", () => {
    const { s, files, objects, access } = render(withBgp);
    expect(talosctlImage(s.site.talos.version)).toBe(`ghcr.io/siderolabs/talosctl:${s.site.talos.version}`);
    expect(files.configMaps.bgp).toEqual({ "bgp-neighbours": "10.50.0.250 65020 1\nfd12:3456:789a:50::fe 65030 0\n" });

    const sa = objects.filter((o) => o.apiVersion === "talos.dev/v1alpha1");
    expect(sa).toEqual([
      expect.objectContaining({
        kind: "ServiceAccount",
        metadata: expect.objectContaining({ name: "bgp-metrics", namespace: "router-observability" }),
        spec: { roles: ["os:reader"] },
      }),
    ]);
    // Talos lets pods of that namespace, and only those, take that role, and no other.
    expect(access).toEqual([
      {
        apiVersion: "v1alpha1",
        kind: "KubeTalosAPIAccessConfig",
        allowedRoles: ["os:reader"],
        allowedKubernetesNamespaces: ["router-observability"],
      },
    ]);

    const pod = nodeExporter(objects).spec!.template.spec!;
    const c = pod.containers.find((x) => x.name === "bgp-metrics")!;
    expect(c.command).toEqual([
      "router-bgp-metrics",
      "/etc/router-obs-bgp/bgp-neighbours",
      s.plan.managementAddress,
      `${TEXTFILE_DIR}/bgp.prom`,
      String(parseInt(s.site.observability.scrapeInterval, 10)),
    ]);
    expect(c.image).toBe("own");
    expect(c.securityContext).toMatchObject({
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: [] },
    });
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ TALOSCTL: "/opt/talosctl/talosctl", TALOSCONFIG: "/var/run/secrets/talos.dev/config" });
    const volume = (mountPath: string) => {
      const m = c.volumeMounts!.find((x) => x.mountPath === mountPath)!;
      return { readOnly: m.readOnly === true, ...pod.volumes!.find((v) => v.name === m.name)! };
    };
    expect(volume("/opt/talosctl")).toMatchObject({ readOnly: true, image: { reference: PINNED } });
    expect(volume("/var/run/secrets/talos.dev")).toMatchObject({
      readOnly: true,
      secret: { secretName: "bgp-metrics", items: [{ key: "config", path: "config" }], defaultMode: 0o400 },
    });
    expect(volume(TEXTFILE_DIR)).toMatchObject({ readOnly: false, hostPath: { path: TEXTFILE_DIR } });
  });

  it("is not there on a site without BGP, and Talos API access stays off", () => {
    const { files, objects, access } = render();
    expect(files.configMaps.bgp).toBeUndefined();
    expect(objects.filter((o) => o.apiVersion === "talos.dev/v1alpha1")).toEqual([]);
    expect(nodeExporter(objects).spec!.template.spec!.containers.map((c) => c.name)).not.toContain("bgp-metrics");
    expect(access).toEqual([]);
  });

  it("gives no Talos API access when the observability stack is off", () => {
    const s = devSite((raw) => {
      withBgp(raw);
      raw.observability = { enabled: false };
    });
    expect(observabilityHost(s.site).documents).toEqual([]);
  });
});
