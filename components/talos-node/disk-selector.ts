/**
 * The install disk selector, as one expression tree rendered two ways: the CEL Talos evaluates
 * (UnattendedInstallConfig.provisioning.diskSelector.match, over the node's Disks resources) and a jq filter the
 * install script evaluates on the operator's side against the disks the node in maintenance mode reports, before
 * anything is sent. A site's structured selector (path, model, type, sizes, …) becomes a tree directly; a raw
 * `match` is parsed from the subset of CEL this module can render both ways (comparisons of `disk.<field>` with a
 * literal, `&&`, `||`, `!`, parentheses, `startsWith`/`endsWith`/`contains`, `glob("pattern", disk.<field>)`,
 * sizes like `100u * GiB`) and always keeps the guards against read-only, optical and USB devices. Pure.
 *
 * A path, model, serial or WWID with `*` is a pattern: Talos' disk locator environment has `glob(pattern, string)`
 * (pkg/machinery/cel/celenv/celenv.go, DiskLocator), ryanuber/go-glob's match — `*` stands for any run of
 * characters, every other character for itself, and the whole string must match.
 *
 * Disk fields follow Talos' DiskSpec (pkg/machinery/resources/block/disk.go): a field the node does not report has
 * its protobuf default (empty string, false, 0), in CEL and in the jq filter alike.
 */
import type { InstallDisk } from "../site/schema";

/** String fields of Talos' DiskSpec a selector may compare. */
export const STRING_FIELDS = [
  "dev_path",
  "model",
  "serial",
  "wwid",
  "transport",
  "modalias",
  "uuid",
  "bus_path",
  "sub_system",
];
const BOOL_FIELDS = ["readonly", "cdrom", "rotational"];
const UINT_FIELDS = ["size"];
/** Size units as Talos' CEL environment declares them (binary multiples). */
export const SIZE_UNITS: Record<string, bigint> = { KiB: 1n << 10n, MiB: 1n << 20n, GiB: 1n << 30n, TiB: 1n << 40n };

type Literal =
  { kind: "string"; value: string } | { kind: "bool"; value: boolean } | { kind: "uint"; value: bigint; unit?: string };
export type Expr =
  | { kind: "and" | "or"; left: Expr; right: Expr }
  | { kind: "not"; expr: Expr }
  | { kind: "field"; field: string }
  | { kind: "compare"; field: string; op: "==" | "!=" | "<" | "<=" | ">" | ">="; value: Literal }
  | { kind: "method"; field: string; method: "startsWith" | "endsWith" | "contains"; arg: string }
  | { kind: "glob"; field: string; pattern: string };

const str = (field: string, value: string, op: "==" | "!=" = "=="): Expr => ({
  kind: "compare",
  field,
  op,
  value: { kind: "string", value },
});
/** A string field equal to a value, or matching it as a pattern when it has `*`. */
const strOrGlob = (field: string, value: string): Expr =>
  value.includes("*") ? { kind: "glob", field, pattern: value } : str(field, value);
const and = (parts: Expr[]): Expr => parts.reduce((left, right) => ({ kind: "and", left, right }));

/** What every selector keeps: never a read-only or optical device, and no USB stick unless a path names it. */
function guards(d: InstallDisk): Expr[] {
  const g: Expr[] = [
    { kind: "not", expr: { kind: "field", field: "readonly" } },
    { kind: "not", expr: { kind: "field", field: "cdrom" } },
  ];
  // The Talos boot medium is often a USB stick that would otherwise match a size or type rule.
  if (!d.path) g.push(str("transport", "usb", "!="));
  return g;
}

/** The selector as an expression tree. Throws (with the position) if `match` is outside the supported subset. */
export function diskSelector(d: InstallDisk): Expr {
  const terms = guards(d);
  if (d.path) terms.push(strOrGlob("dev_path", d.path));
  if (d.model) terms.push(strOrGlob("model", d.model));
  if (d.serial) terms.push(strOrGlob("serial", d.serial));
  if (d.wwid) terms.push(strOrGlob("wwid", d.wwid));
  if (d.type === "nvme") terms.push(str("transport", "nvme"));
  if (d.type === "ssd") terms.push({ kind: "not", expr: { kind: "field", field: "rotational" } });
  if (d.type === "hdd") terms.push({ kind: "field", field: "rotational" });
  if (d.type === "sd") terms.push(str("transport", "mmc"));
  const size = (op: ">=" | "<=", gib: number): Expr => ({
    kind: "compare",
    field: "size",
    op,
    value: { kind: "uint", value: BigInt(gib), unit: "GiB" },
  });
  if (d.minSizeGiB !== undefined) terms.push(size(">=", d.minSizeGiB));
  if (d.maxSizeGiB !== undefined) terms.push(size("<=", d.maxSizeGiB));
  if (d.match) terms.push(parseMatch(d.match));
  return and(terms);
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

function celLiteral(v: Literal): string {
  if (v.kind === "string") return JSON.stringify(v.value);
  if (v.kind === "bool") return String(v.value);
  return v.unit ? `${v.value}u * ${v.unit}` : `${v.value}u`;
}

/** CEL, fully parenthesised below the top level. */
export function renderCel(e: Expr, top = true): string {
  const wrap = (s: string) => (top ? s : `(${s})`);
  switch (e.kind) {
    case "and":
      return wrap(
        flattenAnd(e)
          .map((x) => renderCel(x, false))
          .join(" && "),
      );
    case "or":
      return wrap(`${renderCel(e.left, false)} || ${renderCel(e.right, false)}`);
    case "not":
      return e.expr.kind === "compare" ? `!(${renderCel(e.expr)})` : `!${renderCel(e.expr, false)}`;
    case "field":
      return `disk.${e.field}`;
    case "compare":
      return `disk.${e.field} ${e.op} ${celLiteral(e.value)}`;
    case "method":
      return `disk.${e.field}.${e.method}(${JSON.stringify(e.arg)})`;
    case "glob":
      return `glob(${JSON.stringify(e.pattern)}, disk.${e.field})`;
  }
}

function flattenAnd(e: Expr): Expr[] {
  return e.kind === "and" ? [...flattenAnd(e.left), ...flattenAnd(e.right)] : [e];
}

function jqField(field: string): string {
  const dflt = STRING_FIELDS.includes(field) ? '""' : BOOL_FIELDS.includes(field) ? "false" : "0";
  return `(.${field} // ${dflt})`;
}

function jqLiteral(v: Literal): string {
  if (v.kind === "string") return JSON.stringify(v.value);
  if (v.kind === "bool") return String(v.value);
  return String(v.value * (v.unit ? SIZE_UNITS[v.unit] : 1n));
}

/** A jq filter over one Disks resource spec (talosctl get disks -o json → .spec) that is true when it matches. */
export function renderJq(e: Expr): string {
  switch (e.kind) {
    case "and":
      return `(${renderJq(e.left)} and ${renderJq(e.right)})`;
    case "or":
      return `(${renderJq(e.left)} or ${renderJq(e.right)})`;
    case "not":
      return `(${renderJq(e.expr)} | not)`;
    case "field":
      return `(${jqField(e.field)} == true)`;
    case "compare":
      return `(${jqField(e.field)} ${e.op} ${jqLiteral(e.value)})`;
    case "method": {
      const f = { startsWith: "startswith", endsWith: "endswith", contains: "contains" }[e.method];
      return `(${jqField(e.field)} | ${f}(${JSON.stringify(e.arg)}))`;
    }
    case "glob":
      return `(${jqField(e.field)} | test(${JSON.stringify(globRegex(e.pattern))}))`;
  }
}

/** A glob as a whole-string regular expression: `*` is any run of characters, everything else itself. */
export function globRegex(pattern: string): string {
  const literal = (t: string) => t.replace(/[\\^$.|?*+()[\]{}/-]/g, "\\$&");
  return `\\A${pattern.split("*").map(literal).join(".*")}\\z`;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing the supported subset of CEL

export class MatchSyntaxError extends Error {}

type Token = { t: string; v: string; at: number };

function tokenize(src: string): Token[] {
  const re = /\s*(?:("(?:[^"\\]|\\.)*")|(\d+u?)|(&&|\|\||==|!=|<=|>=|[<>!().*,])|([A-Za-z_][A-Za-z0-9_]*))/y;
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m) throw new MatchSyntaxError(`unexpected character at column ${i + 1}`);
    const at = m.index + m[0].length - (m[1] ?? m[2] ?? m[3] ?? m[4]).length;
    if (m[1]) out.push({ t: "str", v: JSON.parse(m[1]) as string, at });
    else if (m[2]) out.push({ t: "num", v: m[2], at });
    else if (m[3]) out.push({ t: m[3], v: m[3], at });
    else out.push({ t: "id", v: m[4], at });
    i = re.lastIndex;
  }
  return out;
}

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(): Token | undefined {
    return this.toks[this.i];
  }
  private fail(what: string): never {
    const tok = this.peek();
    throw new MatchSyntaxError(tok ? `${what} at column ${tok.at + 1} ('${tok.v}')` : `${what} at the end`);
  }
  private eat(t: string): Token {
    if (this.peek()?.t !== t) this.fail(`expected '${t}'`);
    return this.toks[this.i++];
  }

  parse(): Expr {
    const e = this.or();
    if (this.peek()) this.fail("unexpected token");
    return e;
  }
  private or(): Expr {
    let left = this.and();
    while (this.peek()?.t === "||") {
      this.i++;
      left = { kind: "or", left, right: this.and() };
    }
    return left;
  }
  private and(): Expr {
    let left = this.unary();
    while (this.peek()?.t === "&&") {
      this.i++;
      left = { kind: "and", left, right: this.unary() };
    }
    return left;
  }
  private unary(): Expr {
    if (this.peek()?.t === "!") {
      this.i++;
      return { kind: "not", expr: this.unary() };
    }
    if (this.peek()?.t === "(") {
      this.i++;
      const e = this.or();
      this.eat(")");
      return e;
    }
    if (this.peek()?.t === "id" && this.peek()?.v === "glob") {
      this.i++;
      this.eat("(");
      const pattern = this.eat("str").v;
      this.eat(",");
      const field = this.field();
      if (!STRING_FIELDS.includes(field)) this.fail("glob() takes a string field");
      this.eat(")");
      return { kind: "glob", field, pattern };
    }
    return this.comparison();
  }
  private field(): string {
    if (this.peek()?.v !== "disk") this.fail("expected disk.<field>");
    this.i++;
    this.eat(".");
    const f = this.peek();
    if (f?.t !== "id" || ![...STRING_FIELDS, ...BOOL_FIELDS, ...UINT_FIELDS].includes(f.v))
      this.fail(`unknown disk field (allowed: ${[...STRING_FIELDS, ...BOOL_FIELDS, ...UINT_FIELDS].join(", ")})`);
    this.i++;
    return f.v;
  }
  private comparison(): Expr {
    const field = this.field();
    const next = this.peek();
    if (next?.t === "." && STRING_FIELDS.includes(field)) {
      this.i++;
      const m = this.peek();
      if (m?.t !== "id" || !["startsWith", "endsWith", "contains"].includes(m.v))
        this.fail("unsupported method (allowed: startsWith, endsWith, contains)");
      this.i++;
      this.eat("(");
      const arg = this.eat("str").v;
      this.eat(")");
      return { kind: "method", field, method: m.v as "startsWith", arg };
    }
    if (next && ["==", "!=", "<", "<=", ">", ">="].includes(next.t)) {
      this.i++;
      const op = next.t as "==";
      const value = this.literal(field);
      if (value.kind !== "uint" && !["==", "!="].includes(op)) this.fail("only sizes compare with < <= > >=");
      return { kind: "compare", field, op, value };
    }
    if (BOOL_FIELDS.includes(field)) return { kind: "field", field };
    return this.fail("expected a comparison");
  }
  private literal(field: string): Literal {
    const tok = this.peek();
    if (STRING_FIELDS.includes(field)) return { kind: "string", value: this.eat("str").v };
    if (BOOL_FIELDS.includes(field)) {
      if (tok?.t !== "id" || !["true", "false"].includes(tok.v)) this.fail("expected true or false");
      this.i++;
      return { kind: "bool", value: tok.v === "true" };
    }
    const n = this.eat("num").v;
    if (!n.endsWith("u")) this.fail("sizes are unsigned: write e.g. 100u * GiB");
    const value = BigInt(n.slice(0, -1));
    if (this.peek()?.t !== "*") return { kind: "uint", value };
    this.i++;
    const unit = this.eat("id").v;
    if (!(unit in SIZE_UNITS)) this.fail(`unknown size unit (allowed: ${Object.keys(SIZE_UNITS).join(", ")})`);
    return { kind: "uint", value, unit };
  }
}

/** Parses a `match` expression; throws MatchSyntaxError naming the column when it is outside the subset. */
export function parseMatch(src: string): Expr {
  return new Parser(tokenize(src)).parse();
}
