/**
 * Reads a stack's configuration the way the Pulumi CLI would hand it to the program, without the CLI: the
 * project defaults from Pulumi.yaml, overridden key by key by Pulumi.<stack>.yaml. `secure:` values cannot be
 * decrypted offline; they become placeholders and are reported as secret keys.
 */
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

export interface StackConfig {
  project: string;
  stack: string;
  /** Full keys (`router:segments`) to the text Pulumi would give the program (JSON for objects). */
  values: Record<string, string>;
  /** Full keys of secret values. */
  secretKeys: string[];
}

/** Placeholder for a secret that cannot be decrypted offline. */
export function securePlaceholder(key: string): string {
  return `[secure:${key}]`;
}

function asText(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** True for the `{secure: …}` form of an encrypted value. */
function isSecure(v: unknown): v is { secure: string } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && "secure" in v;
}

/** Loads project defaults and stack values; throws with the file name when a file is missing or malformed. */
export function readStackConfig(dir: string, stack: string): StackConfig {
  const projectFile = join(dir, "Pulumi.yaml");
  const project = parse(readFileSync(projectFile, "utf8")) as { name: string; config?: Record<string, unknown> };
  if (!project?.name) throw new Error(`${projectFile}: no project name`);
  const values: Record<string, string> = {};
  const secretKeys: string[] = [];
  const fullKey = (k: string) => (k.includes(":") ? k : `${project.name}:${k}`);

  for (const [k, decl] of Object.entries(project.config ?? {})) {
    // Project config is either a plain value or a declaration with `value`/`default` (objects must use `value`).
    let v: unknown = decl;
    if (typeof decl === "object" && decl !== null && !Array.isArray(decl)) {
      const d = decl as Record<string, unknown>;
      if ("value" in d) v = d.value;
      else if ("default" in d) v = d.default;
      else continue;
    }
    values[fullKey(k)] = asText(v);
  }

  const stackFile = join(dir, `Pulumi.${stack}.yaml`);
  if (!existsSync(stackFile)) throw new Error(`${stackFile}: no such stack file (stack "${stack}")`);
  const stackDoc = parse(readFileSync(stackFile, "utf8")) as { config?: Record<string, unknown> } | null;
  for (const [k, v] of Object.entries(stackDoc?.config ?? {})) {
    const key = fullKey(k);
    if (isSecure(v)) {
      values[key] = securePlaceholder(key);
      secretKeys.push(key);
    } else {
      values[key] = asText(v);
    }
  }
  return { project: project.name, stack, values, secretKeys: secretKeys.sort() };
}
