/**
 * What the node's health checks expect of the data plane, from the rendered host contributions: the SHA-256 of the
 * exact router.nft bytes and the loader configuration's `[global] generation`. Plain values (no secret), passed to
 * the scripts. Pure.
 */
import { createHash } from "node:crypto";
import { basename } from "node:path";
import { EXTENSION_NAME } from "../dataplane/loader-config";
import type { HostContribution } from "./documents";
import type { DataplaneHealth } from "./scripts";

/** The `[global] generation` value of a loader configuration, if it has one. */
export function loaderGeneration(conf: string): string | undefined {
  let section = "";
  for (const raw of conf.split("\n")) {
    const line = raw.replace(/[;#].*$/, "").trim();
    const s = /^\[(.+)\]$/.exec(line);
    if (s) section = s[1];
    const kv = /^generation\s*=\s*(\S+)$/.exec(line);
    if (section === "global" && kv) return kv[1];
  }
  return undefined;
}

/**
 * The data plane's expected health, or undefined when the contributions carry no data-plane service (a site
 * without the extension) or its configuration has no ruleset.
 */
export function dataplaneHealth(
  contributions: readonly HostContribution[],
  metricsPort: number,
): DataplaneHealth | undefined {
  const doc = contributions
    .flatMap((c) => c.documents)
    .find((d) => d.kind === "ExtensionServiceConfig" && d.name === EXTENSION_NAME);
  const files = new Map(
    ((doc?.configFiles as { mountPath: string; content: string }[] | undefined) ?? []).map((f) => [
      basename(f.mountPath),
      f.content,
    ]),
  );
  const ruleset = files.get("router.nft");
  if (ruleset === undefined) return undefined;
  const generation = loaderGeneration(files.get("dataplane.conf") ?? "");
  return {
    metricsPort,
    rulesetSha256: createHash("sha256").update(ruleset, "utf8").digest("hex"),
    ...(generation ? { generation } : {}),
  };
}
