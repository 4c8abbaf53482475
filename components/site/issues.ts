/**
 * Problems found in a site's configuration, each tied to the config key path an operator edits.
 */
import type { z } from "zod";

/** One problem: where (`router:segments[2].vlan`) and what was wrong, including what is allowed. */
export interface SiteIssue {
  path: string;
  message: string;
}

/** The Pulumi config namespace of this project. */
export const CONFIG_NAMESPACE = "router";

/** Formats a key and a path below it the way `pulumi config set --path` spells it. */
export function configPath(key: string, path: readonly PropertyKey[] = []): string {
  let out = `${CONFIG_NAMESPACE}:${key}`;
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `.${String(p)}`;
  return out;
}

/** Renders issues one per line, sorted by path so the report reads top to bottom like the config. */
export function formatIssues(issues: readonly SiteIssue[]): string {
  return [...issues]
    .sort((a, b) => a.path.localeCompare(b.path, "en", { numeric: true }) || a.message.localeCompare(b.message))
    .map((i) => `  ${i.path}: ${i.message}`)
    .join("\n");
}

/** Thrown when a site is invalid: carries every issue; the message lists them all. */
export class SiteValidationError extends Error {
  readonly issues: readonly SiteIssue[];
  constructor(issues: readonly SiteIssue[]) {
    super(
      `the site configuration has ${issues.length} problem${issues.length === 1 ? "" : "s"}; nothing was deployed:\n${formatIssues(issues)}`,
    );
    this.name = "SiteValidationError";
    this.issues = issues;
  }
}

function describeType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Walks a zod schema along a path to find the object whose keys are allowed there. */
function objectKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  // zod 4 keeps its structure in `_zod.def`; unwrap wrappers until an object is reached.
  let s: unknown = schema;
  const unwrap = (x: unknown): unknown => {
    for (let i = 0; i < 20; i++) {
      const def = (x as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
      if (!def) return x;
      if (def.type === "optional" || def.type === "default" || def.type === "nullable" || def.type === "prefault")
        x = def.innerType;
      else if (def.type === "pipe") x = def.in;
      else return x;
    }
    return x;
  };
  s = unwrap(s);
  for (const p of path) {
    const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return undefined;
    if (def.type === "array" && typeof p === "number") s = unwrap(def.element);
    else if (def.type === "object" && typeof p === "string") s = unwrap((def.shape as Record<string, unknown>)[p]);
    else return undefined;
  }
  const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
  if (def?.type === "object") return Object.keys(def.shape as Record<string, unknown>);
  return undefined;
}

/** Turns zod issues for one config key into site issues whose messages say what was wrong and what is allowed. */
export function fromZod(key: string, schema: z.ZodType, error: z.ZodError): SiteIssue[] {
  const out: SiteIssue[] = [];
  for (const iss of error.issues) {
    if (iss.code === "unrecognized_keys") {
      const allowed = objectKeysAt(schema, iss.path);
      for (const k of iss.keys) {
        out.push({
          path: configPath(key, [...iss.path, k]),
          message: `unknown key${allowed ? ` (allowed keys here: ${allowed.join(", ")})` : ""}`,
        });
      }
      continue;
    }
    let message = iss.message;
    if (iss.code === "invalid_type") {
      const got = (iss as { input?: unknown }).input;
      // Our schema messages read "expected a string (a VLAN id from 1 to 4094)": the parenthesis says what is
      // allowed. zod's own read "Invalid input: expected string, received number".
      const hint = (
        /\((.+)\)$/.exec(message)?.[1] ?? (iss.expected === "array" ? "a list" : `a ${iss.expected}`)
      ).replace(/^allowed: /, "");
      if (got === undefined) message = `is required (allowed: ${hint})`;
      else if (message.startsWith("expected ") || message.startsWith("Invalid input"))
        message = `expected ${iss.expected}, got ${describeType(got)} (allowed: ${hint})`;
      // Our own wording (e.g. "is not an integer (allowed: …)"): keep it and say what was given.
      else message = `${message}; got ${describeType(got)}`;
    } else if (iss.code === "too_small" && message.startsWith("Too small")) {
      const op = iss.origin === "array" ? "at least" : iss.inclusive === false ? ">" : "≥";
      message = `is too small (allowed: ${op} ${iss.minimum}${
        iss.origin === "array" ? " item(s)" : iss.origin === "string" ? " character(s)" : ""
      })`;
    } else if (iss.code === "too_big" && message.startsWith("Too big")) {
      const op = iss.origin === "array" ? "at most" : iss.inclusive === false ? "<" : "≤";
      message = `is too large (allowed: ${op} ${iss.maximum}${
        iss.origin === "array" ? " item(s)" : iss.origin === "string" ? " character(s)" : ""
      })`;
    } else if (iss.code === "invalid_value" && message.startsWith("Invalid")) {
      message = `is not allowed (allowed: ${iss.values.map((v) => JSON.stringify(v)).join(", ")})`;
    } else if (iss.code === "invalid_union" && message.startsWith("Invalid")) {
      message = "does not match any allowed form";
    }
    out.push({ path: configPath(key, iss.path), message });
  }
  return out;
}
