/**
 * Zeek's rendering, structurally (components/ids-stack/zeek.ts): Zeek is in neither Debian nor npm, so nothing
 * here runs it. Off by default; on, the site's pinned image runs one Zeek per watched link on AF_PACKET with the
 * site policy script from the stack's ConfigMap and its logs in a directory per link, and the script loads the
 * six logs, JSON output and the community ID, with the site's networks (HOME_NET) as Zeek's local networks.
 */
import { describe, expect, it } from "vitest";
import { devSite, type Raw } from "../helpers/dev-site";
import { planIds } from "../../components/ids-stack/plan";
import { renderIdsObjects } from "../../components/ids-stack/k8s";
import { ROUTER_IDS_PATHS as P, suricataFiles } from "../../components/ids-stack/suricata";
import { ZEEK_SCRIPT, renderZeekScript } from "../../components/ids-stack/zeek";
import { idsArtifacts } from "../../components/ids-stack";

const IMAGE = `docker.io/zeek/zeek:7.0.5@sha256:${"a".repeat(64)}`;

interface Container {
  name: string;
  image: string;
  command: string[];
  securityContext: { capabilities: { add?: string[] } };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}

function render(edit?: (raw: Raw) => void) {
  const { site, plan } = devSite(edit);
  const ids = planIds(site, plan);
  const ds = renderIdsObjects(ids, suricataFiles(site, ids), "img").find((o) => o.kind === "DaemonSet")!;
  const containers = ds.spec!.template.spec!.containers as Container[];
  return { site, ids, zeek: containers.filter((c) => c.name.startsWith("zeek-")), artifacts: idsArtifacts(site, ids) };
}

const on = (raw: Raw) => (raw["ids"].zeek = { enabled: true, image: IMAGE });

describe("Zeek", () => {
  it("is off by default: no container, no script", () => {
    const r = render();
    expect(r.site.ids.zeek.enabled).toBe(false);
    expect(r.zeek).toEqual([]);
    expect(Object.keys(r.artifacts)).not.toContain(`ids/${ZEEK_SCRIPT}`);
  });

  it("runs the pinned image once per watched link, on AF_PACKET, with the script and a log directory per link", () => {
    const r = render(on);
    expect(r.zeek.map((c) => c.command[2])).toEqual(r.ids.links.map((l) => `af_packet::${l}`));
    for (const [i, c] of r.zeek.entries()) {
      const link = r.ids.links[i];
      expect(c.image).toBe(IMAGE);
      expect(c.command).toEqual([
        "zeek",
        "-i",
        `af_packet::${link}`,
        `${P.config}/${ZEEK_SCRIPT}`,
        `Log::default_logdir=${P.logs}/zeek/${link}`,
      ]);
      expect(c.securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["NET_RAW", "NET_ADMIN"] });
      expect(c.volumeMounts.find((m) => m.name === "config")).toEqual({
        name: "config",
        mountPath: P.config,
        readOnly: true,
      });
    }
    expect(new Set(r.zeek.map((c) => c.name)).size).toBe(r.zeek.length);
    expect(r.artifacts[`ids/${ZEEK_SCRIPT}`]).toBe(renderZeekScript(r.ids));
  });

  it("loads the six logs as JSON with the community ID, and knows the site's networks", () => {
    const r = render(on);
    const lines = renderZeekScript(r.ids).split("\n");
    for (const p of ["conn", "dns", "http", "ssl", "ssh"]) expect(lines).toContain(`@load base/protocols/${p}`);
    expect(lines).toContain("@load base/files/hash");
    expect(lines).toContain("@load policy/protocols/conn/community-id-logging");
    expect(lines).toContain("redef LogAscii::use_json = T;");
    const nets = /^redef Site::local_nets \+= \{ (.+) \};$/.exec(lines.find((l) => l.startsWith("redef Site::"))!)![1];
    const want = r.ids.homeNet.map((p) => (p.includes(":") ? `[${p.split("/")[0]}]/${p.split("/")[1]}` : p));
    expect(nets.split(", ")).toEqual(want);
    expect(want.some((n) => n.startsWith("["))).toBe(true);
  });
});
