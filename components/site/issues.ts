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

/** "a" or "an" before a type name (an integer, an object, a string). */
function article(word: string): string {
  return /^[aeiou]/i.test(word) ? `an ${word}` : `a ${word}`;
}

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  keyType?: z.ZodType;
  valueType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  options?: z.ZodType[];
  entries?: Record<string, string>;
  values?: unknown[];
  checks?: { _zod: { def: CheckDef } }[];
  error?: (iss: unknown) => unknown;
}

interface CheckDef {
  check: string;
  value?: number;
  inclusive?: boolean;
  format?: string;
  minimum?: number;
  error?: (iss: unknown) => unknown;
}

function defOf(schema: unknown): Def | undefined {
  return (schema as { _zod?: { def?: Def } })._zod?.def;
}

/** A schema without its optional/default/pipe wrappers. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let i = 0; i < 20; i++) {
    const def = defOf(s);
    if (!def) return s;
    if (["optional", "default", "nullable", "prefault"].includes(def.type)) s = def.innerType!;
    else if (def.type === "pipe") s = def.in!;
    else return s;
  }
  return s;
}

/** The schema at a path below `schema` (through objects and lists), or undefined. */
export function schemaAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = unwrap(schema);
  for (const p of path) {
    const def = s && defOf(s);
    if (!def) return undefined;
    if (def.type === "array" && typeof p === "number") s = unwrap(def.element!);
    else if (def.type === "object" && typeof p === "string" && def.shape![p]) s = unwrap(def.shape![p]);
    else return undefined;
  }
  return s;
}

/** The "what is allowed" part of one of our messages: `… (allowed: X)` or `expected a string (X)`. */
function allowedPart(message: unknown): string | undefined {
  if (typeof message !== "string") return undefined;
  return /\((?:allowed: )?(.+)\)$/.exec(message)?.[1];
}

/** A message a zod error callback gives without an input (our callbacks quote the input in front of the hint). */
function messageOf(error: Def["error"]): unknown {
  try {
    return error?.({ input: undefined, code: "custom" });
  } catch {
    return undefined;
  }
}

function numberHint(def: Def): string {
  let min: number | undefined;
  let max: number | undefined;
  let int = false;
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if (d.check === "number_format" && d.format?.includes("int")) int = true;
    if (d.check === "greater_than") min = d.inclusive === false ? d.value! + (int ? 1 : 0) : d.value;
    if (d.check === "less_than") max = d.inclusive === false ? d.value! - (int ? 1 : 0) : d.value;
  }
  const what = int ? "an integer" : "a number";
  if (min !== undefined && max !== undefined) return `${what} from ${min} to ${max}`;
  if (min !== undefined) return `${what} ≥ ${min}`;
  if (max !== undefined) return `${what} ≤ ${max}`;
  return what;
}

/**
 * What a field allows, in words: the hint its own messages give (`expected a number (a VLAN id from 1 to
 * 4094)`, `… (allowed: dotted form, e.g. 0.0.0.0)`), else what its type and bounds say.
 */
export function hintOf(schema: z.ZodType): string {
  const def = defOf(schema);
  if (!def) return "a value";
  if (["optional", "default", "nullable", "prefault"].includes(def.type)) return hintOf(def.innerType!);
  if (def.type === "pipe") return hintOf(def.in!);
  const own = allowedPart(messageOf(def.error));
  if (own) return own;
  for (const c of def.checks ?? []) {
    const hint = allowedPart(messageOf(c._zod.def.error));
    if (hint) return hint;
  }
  switch (def.type) {
    case "boolean":
      return "true or false";
    case "number":
      return numberHint(def);
    case "string":
      return (def.checks ?? []).some((c) => c._zod.def.check === "min_length") ? "non-empty text" : "text";
    case "enum":
      return `one of ${Object.values(def.entries!).join(", ")}`;
    case "literal":
      return def.values!.map((v) => JSON.stringify(v)).join(" or ");
    case "union":
      return def.options!.map(hintOf).join(", or ");
    case "array":
      return `a list of ${plural(hintOf(def.element!))}`;
    case "record":
      return `a map from ${hintOf(def.keyType!)} to ${hintOf(def.valueType!)}`;
    case "object": {
      const keys = Object.entries(def.shape!);
      const required = keys.filter(([, v]) => !["optional", "default"].includes(defOf(v)!.type)).map(([k]) => k);
      const optional = keys.filter(([k]) => !required.includes(k)).map(([k]) => k);
      return `an object with ${[
        required.length ? required.join(", ") : "",
        optional.length ? `${required.length ? "and " : ""}optionally ${optional.join(", ")}` : "",
      ]
        .filter(Boolean)
        .join(" ")}`;
    }
    default:
      return article(def.type);
  }
}

/** What each item of a list is (hints are written for one value). */
function plural(hint: string): string {
  return `items, each ${hint}`;
}

function typeName(expected: string): string {
  if (expected === "int") return "an integer";
  if (expected === "array") return "a list";
  return article(expected);
}

/** Keys allowed in the object at a path, for an unknown key's message. */
function objectKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  const def = defOf(schemaAt(schema, path));
  return def?.type === "object" ? Object.keys(def.shape!) : undefined;
}

/**
 * Keys an operator coming from another router will reach for and that this one cannot honour, with why and what
 * to do instead: "unknown key" alone would read like a typo.
 */
const UNSUPPORTED_KEYS: Record<string, string> = {
  "router:routing.bgp.redistribute":
    "Talos' BGP (BGPInstanceConfig) advertises only the subnets of the links it is given, so static routes cannot " +
    "be redistributed into it; advertise segments with routing.bgp.advertise, or redistribute static routes " +
    "with routing.ospf.redistribute: [static]",
};

/** Turns zod issues for one config key into site issues whose messages say what was wrong and what is allowed. */
export function fromZod(key: string, schema: z.ZodType, error: z.ZodError): SiteIssue[] {
  const out: SiteIssue[] = [];
  for (const iss of error.issues) {
    if (iss.code === "unrecognized_keys") {
      const allowed = objectKeysAt(schema, iss.path);
      for (const k of iss.keys) {
        const path = configPath(key, [...iss.path, k]);
        const known = allowed ? ` (allowed keys here: ${allowed.join(", ")})` : "";
        const why = UNSUPPORTED_KEYS[path];
        out.push({ path, message: why ? `is not supported: ${why}${known}` : `unknown key${known}` });
      }
      continue;
    }
    const at = schemaAt(schema, iss.path);
    const hint = at ? hintOf(at) : undefined;
    out.push({ path: configPath(key, iss.path), message: messageFor(iss, hint) });
  }
  return out;
}

/** One zod issue in our words: raw zod text ("Invalid input", "Too small", a regex) never reaches an operator. */
function messageFor(iss: z.core.$ZodIssue, hint: string | undefined): string {
  const message = iss.message;
  const allowed = `(allowed: ${hint ?? "see components/site/schema.ts"})`;
  const ours = !/^(Invalid|Too (small|big)|Expected)/.test(message) && /\ballowed\b|^expected /.test(message);
  if (iss.code === "invalid_type") {
    const got = (iss as { input?: unknown }).input;
    if (got === undefined) return `is required ${allowed}`;
    // Our own wording (e.g. "is not an integer (allowed: …)"): keep it and say what was given.
    if (ours && !message.startsWith("expected ")) return `${message}; got ${describeType(got)}`;
    return `expected ${typeName(iss.expected)}, got ${describeType(got)} ${allowed}`;
  }
  if (ours) return message;
  switch (iss.code) {
    case "too_small":
      return `is ${iss.origin === "array" ? "too short" : iss.origin === "string" ? "too short" : "too small"} ${allowed}`;
    case "too_big":
      return `is ${iss.origin === "array" || iss.origin === "string" ? "too long" : "too large"} ${allowed}`;
    case "invalid_value":
      return `is not allowed (allowed: ${iss.values.map((v) => JSON.stringify(v)).join(", ")})`;
    case "invalid_union":
      return `does not match any allowed form ${allowed}`;
    default:
      return `is not valid ${allowed}`;
  }
}
