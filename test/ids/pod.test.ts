/**
 * The IDS pod's share of blocking, as rendered for the dev site: Suricata writes alerts to a socket only the block
 * agent reads, the agent runs as the one uid the loader takes requests from, with no capabilities and nothing
 * mounted but the two sockets' directories; with blocking off there is neither the agent nor the alert output.
 */
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { devSite, type Raw } from "../helpers/dev-site";
import { planIds } from "../../components/ids-stack/plan";
import { renderIdsObjects } from "../../components/ids-stack/k8s";
import { ROUTER_IDS_PATHS, suricataFiles } from "../../components/ids-stack/suricata";
import { BLOCK_AGENT_UID, BLOCK_SOCKET, BLOCK_SOCKET_DIR } from "../../components/ids-stack/block";

interface Container {
  name: string;
  command: string[];
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  hostPath?: { path: string };
  emptyDir?: { medium?: string };
}

function render(edit?: (raw: Raw) => void) {
  const { site, plan } = devSite(edit);
  const ids = planIds(site, plan);
  const files = suricataFiles(site, ids);
  const ds = renderIdsObjects(ids, files, "img").find((o) => o.kind === "DaemonSet") as unknown as {
    spec: { template: { spec: { containers: Container[]; initContainers: Container[]; volumes: Volume[] } } };
  };
  const yaml = parse(files.get("suricata.yaml")!.replace(/^%YAML.*\n---\n/, "")) as {
    outputs: { "eve-log"?: { enabled: boolean; filetype: string; filename: string; types: unknown[] } }[];
  };
  const dgram = yaml.outputs.map((o) => o["eve-log"]).find((e) => e?.filetype === "unix_dgram");
  return { pod: ds.spec.template.spec, dgram, severity: site.ids.block.severity };
}

describe("the IDS pod's rule updater", () => {
  const { pod } = render();
  it("gets the root-created rules and data host directories from an init container with CHOWN alone", () => {
    const init = pod.initContainers.find((c) => c.name === "rules-dirs")!;
    // the script (run in test/ids/rules-update.test.ts) takes the directories as arguments
    expect(init.command?.slice(4)).toEqual([ROUTER_IDS_PATHS.rules, ROUTER_IDS_PATHS.data, ROUTER_IDS_PATHS.config]);
    expect(init.command?.[2]).toContain('chown 65534:65534 "$1" "$2"');
    expect(init.volumeMounts).toContainEqual({ name: "config", mountPath: ROUTER_IDS_PATHS.config, readOnly: true });
    expect(init.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"], add: ["CHOWN"] },
    });
    const updater = pod.containers.find((c) => c.name === "rules-update")!;
    expect(updater.securityContext).toMatchObject({ runAsUser: 65534, capabilities: { drop: ["ALL"] } });
  });
});

describe("the IDS pod's block agent", () => {
  const { pod, dgram, severity } = render();
  const agent = pod.containers.find((c) => c.name === "block-agent")!;
  const mounted = (c: Container) => (c.volumeMounts ?? []).map((m) => m.name).sort();

  it("reads the alerts Suricata writes, one datagram each, and passes severe ones to the loader's socket", () => {
    expect(dgram).toMatchObject({
      enabled: true,
      filename: `${ROUTER_IDS_PATHS.alerts}/alerts.sock`,
      types: [{ alert: { "tagged-packets": false } }],
    });
    expect(agent.command).toEqual([
      "router-ids-block",
      ...["--alerts", dgram!.filename, "--loader", BLOCK_SOCKET, "--severity", String(severity)],
    ]);
  });

  it("runs as the loader's agent uid, never root, without capabilities or a writable root", () => {
    expect(agent.securityContext).toEqual({
      runAsUser: BLOCK_AGENT_UID,
      runAsGroup: BLOCK_AGENT_UID,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    // no other container shares its uid: the loader's socket trusts that uid alone
    for (const c of pod.containers.filter((x) => x !== agent))
      expect(c.securityContext?.runAsUser, c.name).not.toBe(BLOCK_AGENT_UID);
  });

  it("mounts only the alert socket's memory directory and the loader's socket directory", () => {
    expect(mounted(agent)).toEqual(["alerts", "block"]);
    const vol = (n: string) => pod.volumes.find((v) => v.name === n);
    expect(vol("alerts")).toMatchObject({ emptyDir: { medium: "Memory" } });
    expect(vol("block")).toMatchObject({ hostPath: { path: BLOCK_SOCKET_DIR } });
    // the loader's socket directory goes to the agent alone
    for (const c of pod.containers.filter((x) => x !== agent)) expect(mounted(c), c.name).not.toContain("block");
  });

  it("is absent, and so is the alert output, when alerts block nothing", () => {
    const off = render((raw) => (raw["ids"].block = { ...raw["ids"].block, enabled: false }));
    expect(off.pod.containers.map((c) => c.name)).not.toContain("block-agent");
    expect(off.pod.volumes.map((v) => v.name)).not.toContain("block");
    expect(off.dgram?.enabled).toBe(false);
  });
});
