/**
 * Reads a stack's configuration the way the Pulumi CLI would hand it to the program, without the CLI: the
 * project defaults from Pulumi.yaml, overridden key by key by Pulumi.<stack>.yaml. `secure:` values cannot be
 * decrypted offline; they become placeholders and are reported as secret keys.
 */
import { readFileSync, existsSync } from "node:fs";
import { join, relative } from "node:path";
import { parseDocument } from "yaml";

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

/** A stack or project file that cannot be read: the message names the file, and each problem's line and column. */
export class StackFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StackFileError";
  }
}

/**
 * Parses a YAML file, or throws a StackFileError listing every syntax error as `file:line:column: what is wrong`,
 * with the offending line and a caret under the column.
 */
export function readYamlFile(file: string): unknown {
  const text = readFileSync(file, "utf8");
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length === 0) return doc.toJS();
  const lines = text.split("\n");
  const rel = relative(process.cwd(), file);
  const name = rel && !rel.startsWith("..") ? rel : file;
  const problems = doc.errors.map((e) => {
    const pos = e.linePos?.[0];
    const what = e.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, "").replace(/\.$/, "");
    if (!pos) return `${name}: ${what}`;
    const src = lines[pos.line - 1] ?? "";
    return `${name}:${pos.line}:${pos.col}: ${what}\n    ${src}\n    ${" ".repeat(Math.max(pos.col - 1, 0))}^`;
  });
  throw new StackFileError(
    `${name} is not valid YAML (${problems.length} problem${problems.length === 1 ? "" : "s"}); nothing was read:\n${problems.join("\n")}`,
  );
}

/** Loads project defaults and stack values; throws with the file name when a file is missing or malformed. */
export function readStackConfig(dir: string, stack: string): StackConfig {
  const projectFile = join(dir, "Pulumi.yaml");
  const project = readYamlFile(projectFile) as { name: string; config?: Record<string, unknown> } | null;
  if (!project?.name) throw new StackFileError(`${projectFile}: no project name (allowed: a name: key at the top)`);
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
  if (!existsSync(stackFile)) throw new StackFileError(`${stackFile}: no such stack file (stack "${stack}")`);
  const stackDoc = readYamlFile(stackFile) as { config?: Record<string, unknown> } | null;
  if (stackDoc !== null && (typeof stackDoc !== "object" || Array.isArray(stackDoc)))
    throw new StackFileError(`${stackFile}: is not a mapping (allowed: a config: key holding the stack's values)`);
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
