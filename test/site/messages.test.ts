/**
 * The words of every message zod's own checks produce, over the whole schema: each field of each config key is
 * given a value of the wrong type and values its checks refuse, and the issue at that field must say what is
 * allowed there in the field's own terms (its units, range or form), in English an operator can act on — never
 * zod's raw text ("Invalid input", "Too small", a regular expression) and never "a object".
 */
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { fromZod, hintOf, type SiteIssue } from "../../components/site/issues";
import { siteKeys } from "../../components/site/schema";
import { parseSite } from "../../components/site/parse";
import { devSiteRaw, expectRejected, indexOf, setAt } from "../helpers/site-fixtures";

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  checks?: unknown[];
  entries?: unknown;
}
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    const d = defOf(s);
    if (["optional", "default", "nullable", "prefault"].includes(d.type)) s = d.innerType!;
    else if (d.type === "pipe") s = d.in!;
    else return s;
  }
}

interface Leaf {
  key: string;
  path: (string | number)[];
  schema: z.ZodType;
}

/** Every field below a config key: objects are walked into, a list's first element stands for all. */
function leaves(key: string, schema: z.ZodType, path: (string | number)[] = []): Leaf[] {
  const u = unwrap(schema);
  const d = defOf(u);
  if (d.type === "object") return Object.entries(d.shape!).flatMap(([k, v]) => leaves(key, v, [...path, k]));
  if (d.type === "array") return [{ key, path, schema }, ...leaves(key, d.element!, [...path, 0])];
  return [{ key, path, schema }];
}

const ALL = Object.entries(siteKeys).flatMap(([k, s]) => leaves(k, s as z.ZodType));

/** A config value for `key` that holds `value` at `path` and nothing else. */
function valueWith(path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (typeof head === "number") return [valueWith(rest, value)];
  return { [head]: valueWith(rest, value) };
}

function issuesAt(leaf: Leaf, value: unknown): SiteIssue[] {
  const schema = siteKeys[leaf.key as keyof typeof siteKeys] as z.ZodType;
  const r = schema.safeParse(valueWith(leaf.path, value), { reportInput: true });
  if (r.success) return [];
  const at = `router:${leaf.key}${leaf.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("")}`;
  return fromZod(leaf.key, schema, r.error).filter((i) => i.path === at);
}

/** A value of another type than the field's. */
function wrongType(leaf: Leaf): unknown {
  const t = defOf(unwrap(leaf.schema)).type;
  if (t === "union") return true;
  return t === "string" || t === "enum" || t === "literal" ? 12345 : t === "boolean" ? "yes" : "12";
}

const RAW_ZOD =
  /Invalid (input|string|option)|must match pattern|Too (small|big)|expected (int|string|number|array)\b[^,]|received /;
const BAD_ARTICLE = /\ba [aeiou]\w/i;

describe("every field's messages", () => {
  it("walks a schema of some size, so the checks below cover the site model", () => {
    expect(ALL.length).toBeGreaterThan(150);
  });

  it.each(ALL.map((l) => [`${l.key}${l.path.map((p) => (typeof p === "number" ? "[0]" : `.${p}`)).join("")}`, l]))(
    "%s: a value of the wrong type is reported there with the field's own hint",
    (_name, leaf) => {
      const found = issuesAt(leaf as Leaf, wrongType(leaf as Leaf));
      expect(found.length, "no issue at the field").toBeGreaterThan(0);
      const hint = hintOf((leaf as Leaf).schema);
      for (const i of found) {
        expect(i.message).toContain(`(allowed: ${hint})`);
        expect(i.message).not.toMatch(RAW_ZOD);
        expect(i.message).not.toMatch(BAD_ARTICLE);
      }
    },
  );

  it("gives every constrained field a hint of its own, not just its type", () => {
    const generic = new Set(["text", "non-empty text", "a number", "an integer", "true or false"]);
    const vague = ALL.filter((l) => {
      const d = defOf(unwrap(l.schema));
      const constrained = (d.checks?.length ?? 0) > 0 || d.type === "enum";
      return constrained && generic.has(hintOf(l.schema));
    }).map((l) => `${l.key}.${l.path.join(".")}: ${hintOf(l.schema)}`);
    expect(vague).toEqual([]);
  });

  it("never shows zod's raw text or 'a object' for values the checks refuse", () => {
    const samples: Record<string, unknown[]> = {
      string: ["", "!!", "x".repeat(300)],
      number: [-1e12, 1e12, 0.5],
      enum: ["nope"],
      union: ["nope", -1, 0.5],
      array: [[]],
      object: ["x", {}],
      boolean: [1],
      record: [{ "99": 1, x: 1 }],
    };
    const bad: string[] = [];
    for (const leaf of ALL)
      for (const v of samples[defOf(unwrap(leaf.schema)).type] ?? [])
        for (const i of issuesAt(leaf, v))
          if (RAW_ZOD.test(i.message) || BAD_ARTICLE.test(i.message) || !/\ballowed\b/.test(i.message))
            bad.push(`${i.path} ← ${JSON.stringify(v).slice(0, 20)}: ${i.message}`);
    expect(bad).toEqual([]);
  });
});

describe("messages that used to mislead", () => {
  const dev = devSiteRaw();
  const NAS_HTTPS = (dev.portForwards as { name: string }[]).findIndex((f) => f.name === "nas-https");

  it("says a quoted port is a quoted number, not which regular expression a range must match", () => {
    const r = parseSite(setAt(devSiteRaw(), `portForwards[${NAS_HTTPS}].port`, "443"));
    const issue = expectRejected(
      setAt(devSiteRaw(), `portForwards[${NAS_HTTPS}].port`, "443"),
      `router:portForwards[${NAS_HTTPS}].port`,
      '"443" is a quoted number (allowed: a port from 1 to 65535 written without quotes',
    );
    expect(issue.message).not.toMatch(RAW_ZOD);
    if (!r.ok) expect(r.issues.filter((i) => i.path === issue.path)).toHaveLength(1);
  });

  it("keeps the OSPF area's form in its type error: an area given as a number", () => {
    const raw = setAt(devSiteRaw(), "routing", { ospf: { routerId: "10.10.0.1", area: 5, segments: ["mgmt"] } });
    expectRejected(
      raw,
      "router:routing.ospf.area",
      "expected a string, got number 5 (allowed: dotted form, e.g. 0.0.0.0)",
    );
  });

  it("gives a number's unit in its type error: a lease time in seconds", () => {
    const i = indexOf(dev, "segments", "guest");
    expectRejected(
      setAt(devSiteRaw(), `segments[${i}].dhcp.leaseTime`, "1h"),
      `router:segments[${i}].dhcp.leaseTime`,
      "(allowed: a lease time in seconds from 60 to 7776000)",
    );
  });

  it("says which keys a missing object needs, with the right article", () => {
    const raw = setAt(devSiteRaw(), "dns.upstreams[0]", undefined);
    expectRejected(
      raw,
      "router:dns.upstreams[0]",
      "is required (allowed: an object with address and optionally protocol, tlsServerName)",
    );
  });
});
