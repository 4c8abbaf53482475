/**
 * Raw sites for the site-model tests: the dev stack's configuration as the program receives it, path-addressed
 * edits in the same spelling as the issues (`segments[2].vlan`), and assertions on parseSite results.
 */
import { resolve } from "node:path";
import { expect } from "vitest";
import type { z } from "zod";
import { readStackConfig } from "../../cli/stack-config";
import { formatIssues, type SiteIssue } from "../../components/site/issues";
import { rawSiteConfig } from "../../components/site/load";
import { parseSite, type ParseResult } from "../../components/site/parse";
import type { Site } from "../../components/site/schema";

/** Repository root. */
export const ROOT = resolve(__dirname, "../..");

/** Raw config values by key, without the `router:` namespace (what `parseSite` takes). */
export type RawSite = Record<string, unknown>;

/**
 * The well-formed shape of a raw site, for edits that keep types right. Edits that break types go through
 * `setAt`, which takes any value.
 */
export type RawSiteView = z.input<typeof Site> & { registryPassword?: string };

/** The dev stack's raw site (Pulumi.yaml defaults overridden by Pulumi.dev.yaml); a fresh copy on every call. */
export function devSiteRaw(): RawSite {
  return structuredClone(devRawCache);
}
const devRawCache = rawSiteConfig(readStackConfig(ROOT, "dev").values);

/** The raw site seen through its well-formed type. */
export function view(raw: RawSite): RawSiteView {
  return raw as unknown as RawSiteView;
}

/** A copy of `raw` changed by `edit`. */
export function edited(raw: RawSite, edit: (site: RawSiteView) => void): RawSite {
  const copy = structuredClone(raw);
  edit(view(copy));
  return copy;
}

type Step = string | number;

/** Splits `router:segments[2].ipv4.cidr` (the `router:` prefix is optional) into `["segments", 2, "ipv4", "cidr"]`. */
export function pathSteps(path: string): Step[] {
  const bare = path.startsWith("router:") ? path.slice("router:".length) : path;
  const steps: Step[] = [];
  for (const m of bare.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) steps.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return steps;
}

function container(raw: RawSite, steps: Step[]): Record<string | number, unknown> {
  let cur: unknown = raw;
  for (const s of steps.slice(0, -1)) {
    const next = (cur as Record<string | number, unknown>)[s];
    if (next === null || typeof next !== "object")
      throw new Error(`site-fixtures: nothing at ${String(s)} while walking ${steps.join(".")}`);
    cur = next;
  }
  return cur as Record<string | number, unknown>;
}

/** The value at a config path, or undefined. */
export function getAt(raw: RawSite, path: string): unknown {
  let cur: unknown = raw;
  for (const s of pathSteps(path)) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[s];
  }
  return cur;
}

/** Sets the value at a config path (its parent must exist), in place; returns `raw`. */
export function setAt(raw: RawSite, path: string, value: unknown): RawSite {
  const steps = pathSteps(path);
  container(raw, steps)[steps[steps.length - 1]] = value;
  return raw;
}

/** Removes the value at a config path (a list element is spliced out), in place; returns `raw`. */
export function deleteAt(raw: RawSite, path: string): RawSite {
  const steps = pathSteps(path);
  const parent = container(raw, steps);
  const last = steps[steps.length - 1];
  if (Array.isArray(parent) && typeof last === "number") parent.splice(last, 1);
  else delete parent[last];
  return raw;
}

/** Lists of a raw site whose elements carry a unique name (`alias` for NICs). */
export type NamedList = "links" | "segments" | "zones" | "node.nics";

/**
 * Index of the element named `name` in a list of the raw site, so tests address the dev site by name and keep
 * working when elements are added or reordered. Throws when there is no such element.
 */
export function indexOf(raw: RawSite, list: NamedList, name: string): number {
  const items = getAt(raw, list);
  const key = list === "node.nics" ? "alias" : "name";
  const i = Array.isArray(items) ? items.findIndex((x) => (x as Record<string, unknown>)?.[key] === name) : -1;
  if (i < 0) throw new Error(`site-fixtures: no element named ${name} in ${list}`);
  return i;
}

/** Parses a raw site that must be valid; fails with every issue listed otherwise. */
export function expectValid(raw: RawSite): Site {
  const r = parseSite(raw);
  if (!r.ok) expect.fail(`expected a valid site, got:\n${formatIssues(r.issues)}`);
  return r.site;
}

/** Every message of a rejected site must say what is allowed: an operator reads the fix in the message. */
export function expectEveryMessageSaysAllowed(issues: readonly SiteIssue[]): void {
  for (const i of issues)
    expect(i.message, `the message at ${i.path} does not say what is allowed`).toMatch(/\ballowed\b/);
}

/**
 * Asserts that a parse failed with an issue at exactly `path` whose message matches `message` (a string must
 * occur literally), and that every message of the result says what is allowed. Returns the matching issue.
 */
export function expectIssue(result: ParseResult, path: string, message: RegExp | string): SiteIssue {
  if (result.ok) return expect.fail(`expected the site to be rejected at ${path}, but it parsed`);
  const all = formatIssues(result.issues);
  const at = result.issues.filter((i) => i.path === path);
  expect(at.length, `no issue at ${path}; the issues were:\n${all}`).toBeGreaterThan(0);
  const matches = (text: string) => (typeof message === "string" ? text.includes(message) : message.test(text));
  const hit = at.find((i) => matches(i.message));
  if (!hit) return expect.fail(`no issue at ${path} matches ${String(message)}; the issues were:\n${all}`);
  expectEveryMessageSaysAllowed(result.issues);
  return hit;
}

/** Parses `raw` and asserts it is rejected at `path` with a message matching `message` (see expectIssue). */
export function expectRejected(raw: RawSite, path: string, message: RegExp | string): SiteIssue {
  return expectIssue(parseSite(raw), path, message);
}
