/**
 * The install disk selector has one source (an expression tree) and two renderings: the CEL Talos evaluates and the
 * jq filter the install script evaluates before sending anything. They must agree on every disk: checked on random
 * disks and random selectors, CEL evaluated by an independent CEL implementation (@bufbuild/cel) with Talos' disk
 * variables (a DiskSpec message: absent fields are protobuf defaults; size units as uint constants), jq by jq itself.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { run, celUint, celFunc, CelScalar } from "@bufbuild/cel";
import {
  diskSelector,
  parseMatch,
  renderCel,
  renderJq,
  SIZE_UNITS,
  STRING_FIELDS,
} from "../../components/talos-node/disk-selector";
import type { InstallDisk } from "../../components/site/schema";
import type { Disk } from "../helpers/fake-node";
import { tier } from "../helpers/tier";

const jqTier = tier("disk selector in jq", { commands: ["jq"] });

const STRINGS = STRING_FIELDS;

function celDisk(d: Disk): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (const f of STRINGS) m.set(f, (d as unknown as Record<string, string | undefined>)[f] ?? "");
  m.set("size", celUint(BigInt(d.size)));
  m.set("readonly", d.readonly);
  m.set("cdrom", d.cdrom);
  m.set("rotational", d.rotational ?? false);
  return m;
}

/**
 * Talos' disk locator `glob(pattern, string)` (pkg/machinery/cel/celenv/celenv.go, DiskLocator), which calls
 * ryanuber/go-glob's Glob: the pattern is split at `*`; without a `*` the string must equal it; otherwise the first
 * part must begin the string (unless the pattern starts with `*`), each middle part must occur, in order, after
 * the previous one's first occurrence, and the string must end with the last part (unless the pattern ends with `*`).
 */
function goGlob(pattern: string, subject: string): boolean {
  if (pattern === "") return subject === "";
  if (pattern === "*") return true;
  const parts = pattern.split("*");
  if (parts.length === 1) return subject === pattern;
  let rest = subject;
  for (let i = 0; i < parts.length - 1; i++) {
    const at = rest.indexOf(parts[i]);
    if (i === 0 ? !pattern.startsWith("*") && at !== 0 : at < 0) return false;
    rest = rest.slice(at + parts[i].length);
  }
  return pattern.endsWith("*") || rest.endsWith(parts[parts.length - 1]);
}
const GLOB = celFunc("glob", [CelScalar.STRING, CelScalar.STRING], CelScalar.BOOL, (p, s) => goGlob(p, s));

function celMatches(cel: string, d: Disk): boolean {
  const vars: Record<string, unknown> = { disk: celDisk(d) };
  for (const [u, v] of Object.entries(SIZE_UNITS)) vars[u] = celUint(v);
  const r = run(cel, vars as never, { funcs: [GLOB] });
  if (typeof r !== "boolean") throw new Error(`CEL ${cel} gave ${String(r)}`);
  return r;
}

function jqMatches(filter: string, disks: Disk[]): boolean[] {
  // As talosctl prints them: one resource per disk, fields that are empty or false left out (omitempty).
  const input = disks
    .map((d) =>
      JSON.stringify({ spec: Object.fromEntries(Object.entries(d).filter(([, v]) => v !== "" && v !== false)) }),
    )
    .join("\n");
  const r = spawnSync("jq", ["-c", `.spec | ${filter}`], { input, encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as boolean);
}

const GiB = 1024 ** 3;
const word = fc.constantFrom("", "Samsung SSD 980", "WD Black", "Flash Disk", "S3Z", "nvme", "usb", "sata", "mmc", "x");
const disk: fc.Arbitrary<Disk> = fc.record({
  dev_path: fc.constantFrom("/dev/sda", "/dev/sdb", "/dev/nvme0n1", "/dev/mmcblk0"),
  size: fc.integer({ min: 0, max: 4096 }).map((g) => g * GiB),
  readonly: fc.boolean(),
  cdrom: fc.boolean(),
  model: word,
  serial: word,
  wwid: word,
  transport: fc.constantFrom("", "nvme", "usb", "sata", "mmc", "virtio"),
  rotational: fc.boolean(),
});
/** Patterns Talos' glob() matches against the words above: `*` anywhere, and characters a regex would not take literally. */
const pattern = fc.constantFrom("Samsung SSD 9*", "*980", "S*Z", "*", "W*Black*", "Flash*Disk", "nv*e", "x*", "*.*");
const structured: fc.Arbitrary<InstallDisk> = fc.record(
  {
    path: fc.constantFrom("/dev/sda", "/dev/nvme0n1", "/dev/nvme*", "/dev/sd*"),
    model: fc.oneof(
      word.filter((w) => w !== ""),
      pattern,
    ),
    serial: fc.oneof(
      word.filter((w) => w !== ""),
      pattern,
    ),
    type: fc.constantFrom("ssd", "hdd", "nvme", "sd") as fc.Arbitrary<"ssd">,
    minSizeGiB: fc.integer({ min: 1, max: 2048 }),
    maxSizeGiB: fc.integer({ min: 1, max: 4096 }),
  },
  { requiredKeys: [] },
);
const leaf = fc.oneof(
  fc
    .tuple(fc.constantFrom(...STRINGS.slice(0, 5)), fc.constantFrom("==", "!="), word)
    .map(([f, op, v]) => `disk.${f} ${op} ${JSON.stringify(v)}`),
  fc
    .tuple(
      fc.constantFrom("<", "<=", ">", ">=", "==", "!="),
      fc.integer({ min: 0, max: 4096 }),
      fc.constantFrom("", " * GiB", " * MiB", " * TiB"),
    )
    .map(([op, n, u]) => `disk.size ${op} ${n}u${u}`),
  fc.constantFrom("disk.rotational", "!disk.readonly", "disk.cdrom == false"),
  fc
    .tuple(fc.constantFrom("startsWith", "endsWith", "contains"), fc.constantFrom("Sam", "980", "S", ""))
    .map(([m, a]) => `disk.model.${m}(${JSON.stringify(a)})`),
  fc
    .tuple(pattern, fc.constantFrom("model", "serial", "dev_path"))
    .map(([p, f]) => `glob(${JSON.stringify(p)}, disk.${f})`),
);
const match: fc.Arbitrary<string> = fc.letrec((tie) => ({
  expr: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc
      .tuple(tie("expr"), fc.constantFrom("&&", "||"), tie("expr"))
      .map(([a, op, b]) => `(${a as string}) ${op} (${b as string})`),
    tie("expr").map((e) => `!(${e as string})`),
  ),
})).expr as fc.Arbitrary<string>;

describe("the install disk selector", () => {
  it("renders the dev site's selector as before, guards first", () => {
    expect(renderCel(diskSelector({ type: "nvme", minSizeGiB: 100 }))).toBe(
      '!disk.readonly && !disk.cdrom && disk.transport != "usb" && disk.transport == "nvme" && disk.size >= 100u * GiB',
    );
  });

  it("renders a value with * as Talos' glob(), which the operator-side check evaluates the same way", () => {
    expect(renderCel(diskSelector({ model: "Samsung SSD 980*" }))).toBe(
      '!disk.readonly && !disk.cdrom && disk.transport != "usb" && glob("Samsung SSD 980*", disk.model)',
    );
    expect(parseMatch('glob("S*Z", disk.serial)')).toEqual({ kind: "glob", field: "serial", pattern: "S*Z" });
    expect(() => parseMatch('glob("x*", disk.size)')).toThrow(/glob\(\) takes a string field/);
  });

  it("parses only what it can evaluate, naming the column of the first thing it cannot", () => {
    expect(() => parseMatch('disk.model.matches("x")')).toThrow(/unsupported method .* column 12/);
    expect(() => parseMatch("disk.size > 5")).toThrow(/unsigned/);
    expect(() => parseMatch("system_disk")).toThrow(/expected disk.<field> at column 1/);
    expect(() => parseMatch('disk.vendor == "x"')).toThrow(/unknown disk field/);
    expect(() => parseMatch("disk.size >= 1u * PB")).toThrow(/unknown size unit/);
    expect(() => parseMatch('disk.model == "a" &&')).toThrow(/at the end/);
  });

  it.skipIf(!jqTier.ok)("CEL and jq agree on random disks for random structured selectors", () => {
    fc.assert(
      fc.property(structured, fc.array(disk, { minLength: 1, maxLength: 30 }), (sel, disks) => {
        const e = diskSelector(sel);
        const cel = renderCel(e);
        expect(jqMatches(renderJq(e), disks)).toEqual(disks.map((d) => celMatches(cel, d)));
      }),
      { numRuns: 60 },
    );
  });

  it.skipIf(!jqTier.ok)("CEL and jq agree on random disks for random match expressions (which keep the guards)", () => {
    fc.assert(
      fc.property(match, fc.array(disk, { minLength: 1, maxLength: 30 }), (m, disks) => {
        const e = diskSelector({ match: m });
        const cel = renderCel(e);
        const viaCel = disks.map((d) => celMatches(cel, d));
        expect(jqMatches(renderJq(e), disks)).toEqual(viaCel);
        // The guards hold whatever the match says.
        disks.forEach((d, i) => {
          if (d.readonly || d.cdrom || d.transport === "usb") expect(viaCel[i]).toBe(false);
        });
        // And the user's expression means the same in CEL as written and as re-rendered.
        const guarded = '!disk.readonly && !disk.cdrom && disk.transport != "usb"';
        disks.forEach((d, i) => expect(celMatches(`${guarded} && (${m})`, d)).toBe(viaCel[i]));
      }),
      { numRuns: 80 },
    );
  });
});
