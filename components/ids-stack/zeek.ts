/**
 * Zeek on the router (router:ids.zeek, off by default): protocol logs — conn, dns, http, ssl (TLS), ssh, files —
 * as JSON with the community ID, on the links Suricata watches, one Zeek process per link (AF_PACKET, the plugin
 * upstream's image carries), from the site's upstream image pinned by digest. Zeek is in neither Debian nor npm,
 * so this is rendered and checked structurally only: its runtime is unproven here. Facts from Zeek's script
 * reference: policy/protocols/conn/community-id-logging (Zeek 6.0 and later), LogAscii::use_json,
 * Site::local_nets, Log::default_logdir, `name=value` redefinitions on the command line. Pure.
 */
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IdsPlan } from "./plan";
import type { IdsPaths } from "./suricata";

/** The script's name in the stack's ConfigMap. */
export const ZEEK_SCRIPT = "zeek-local.zeek";

/** Zeek's subnet literal: IPv6 prefixes are written [addr]/len. */
function subnet(prefix: string): string {
  const [addr, len] = prefix.split("/");
  return addr.includes(":") ? `[${addr}]/${len}` : prefix;
}

/** The site policy script: the six logs, JSON, the community ID, the site's own networks. */
export function renderZeekScript(ids: IdsPlan): string {
  return [
    "##! Zeek on the router (rendered from router:ids; do not edit on the node).",
    ...["conn", "dns", "http", "ssl", "ssh"].map((p) => `@load base/protocols/${p}`),
    "@load base/files/hash",
    "@load policy/protocols/conn/community-id-logging",
    "redef LogAscii::use_json = T;",
    // the router's links hand frames to the capture before the NIC computes their checksums
    "redef ignore_checksums = T;",
    `redef Site::local_nets += { ${ids.homeNet.map(subnet).join(", ")} };`,
    "",
  ].join("\n");
}

/** One Zeek container per watched link; none when Zeek is off. */
export function zeekContainers(ids: IdsPlan, paths: IdsPaths): IContainer[] {
  if (!ids.zeekImage) return [];
  return ids.links.map((link) => ({
    name: `zeek-${link.replace(/[^a-z0-9-]/g, "-")}`,
    image: ids.zeekImage,
    command: [
      "zeek",
      ...["-i", `af_packet::${link}`, `${paths.config}/${ZEEK_SCRIPT}`],
      `Log::default_logdir=${paths.logs}/zeek/${link}`,
    ],
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: ["NET_RAW", "NET_ADMIN"] },
    },
    resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "1Gi" } },
    volumeMounts: [
      { name: "config", mountPath: paths.config, readOnly: true },
      { name: "logs", mountPath: paths.logs },
      { name: "tmp", mountPath: "/tmp" },
    ],
  }));
}
