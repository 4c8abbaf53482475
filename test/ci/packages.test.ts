/**
 * Nothing the build or the tests use comes from a hand install: every system header the C and BPF sources
 * include, every shared library the built programs load, every tool the build scripts and test tiers run, and
 * every daemon and data file the services, observability, DNS and IDS images copy belongs to a Debian package that
 * `.ci/run` installs (directly or as a dependency of one it installs), or to Debian's required base. A machine where
 * something was once installed by hand (gcc-multilib, whose /usr/include/asm clang's BPF target needs) passes its
 * own tests and fails CI; this test fails on that machine instead.
 *
 * Ownership is dpkg's (`dpkg -S`), dependencies apt's (`apt-cache depends --recurse`); the lists of headers and
 * libraries come from the compilers (`-M`) and the dynamic loader (`ldd`), not from a list kept by hand.
 */
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, readFileSync, readdirSync, realpathSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { tier } from "../helpers/tier";
import { BUILD_COMMANDS, buildEbpf } from "../ebpf/lib";
import { APPLIANCE_COMMANDS } from "../e2e/lib/appliance";
import { buildStats, STATS_BIN } from "../dns/lib/fixtures";

const ROOT = resolve(__dirname, "../..");
const EBPF = join(ROOT, "ebpf");
const t = tier("Debian packages behind the build and the tests", {
  commands: ["dpkg", "dpkg-query", "apt-cache", "clang-19", "gcc", "ldd"],
});

/** Programs the machine kind itself provides outside Debian's packages (the developer guide's toolchain). */
const PROVIDED_BY_THE_MACHINE = new Set(["node", "npm", "npx", "go"]);

function sh(cmd: string, args: string[], cwd = ROOT): string {
  const r = spawnSync(cmd, args, {
    cwd: cmd === "clang-19" || cmd === "gcc" ? EBPF : cwd,
    encoding: "utf8",
    maxBuffer: 256 << 20,
  });
  if (r.error) throw r.error;
  return `${r.stdout}`;
}

/**
 * The package names `.ci/run` installs: the lines of `.ci/packages` (one package a line, `#` comments, `[suite]`
 * lines starting another suite's packages), every suite's.
 */
export function ciPackages(text = readFileSync(join(ROOT, ".ci/packages"), "utf8")): string[] {
  const out: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || /^\[.*\]$/.test(line)) continue;
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(line)) throw new Error(`.ci/packages: "${line}" is not a package name`);
    out.push(line);
  }
  return out;
}

/** Everything the packages pull in (Depends and Pre-Depends, recursively), plus Debian's required base. */
function allowedPackages(direct: string[]): Set<string> {
  const out = new Set(direct);
  const deps = sh("apt-cache", [
    "depends",
    "--recurse",
    "--no-recommends",
    "--no-suggests",
    "--no-conflicts",
    "--no-breaks",
    "--no-replaces",
    "--no-enhances",
    ...direct,
  ]);
  for (const line of deps.split("\n")) {
    const m = /^\s*(?:\|?(?:Pre)?Depends:\s*)?<?([a-z0-9][a-z0-9+.-]+)(?::[a-z0-9]+)?>?\s*$/.exec(line);
    if (m) out.add(m[1]);
  }
  for (const line of sh("dpkg-query", ["-W", "-f", "${Package} ${Essential} ${Priority}\n"]).split("\n")) {
    const [pkg, essential, priority] = line.split(" ");
    if (pkg && (essential === "yes" || priority === "required")) out.add(pkg);
  }
  return out;
}

/** Candidate paths dpkg may know a file by: itself, its /usr-merged alias, its real path. */
function candidates(path: string): string[] {
  const out = new Set<string>([path]);
  const m = /^\/usr(\/(?:s?bin|lib|lib64)\/.*)$/.exec(path);
  if (m) out.add(m[1]);
  if (existsSync(path)) out.add(realpathSync(path));
  return [...out];
}

/** Symlinks on the way to a path (a header reached through /usr/include/asm needs that link's package too). */
function linksOnTheWay(path: string): string[] {
  const links: string[] = [];
  // Not the merged-/usr links at the top (/lib, /bin, …): dpkg counts every package with files below them.
  for (let dir = path; dirname(dir) !== "/"; dir = dirname(dir))
    if (existsSync(dir) && lstatSync(dir).isSymbolicLink()) links.push(dir);
  return links;
}

/** dpkg's owners of many paths at once (one dpkg call): path → packages. */
function dpkgOwners(paths: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const text = sh("dpkg", ["-S", ...paths]);
  for (const line of text.split("\n")) {
    if (!line.includes(": ") || line.startsWith("diversion by")) continue;
    const i = line.lastIndexOf(": ");
    const file = line.slice(i + 2);
    const pkgs = line
      .slice(0, i)
      .split(", ")
      .map((x) => x.split(":")[0]);
    out.set(file, [...(out.get(file) ?? []), ...pkgs]);
  }
  return out;
}

/** The packages owning each path, or "unowned" when dpkg knows none of its names. */
function owners(paths: string[]): Map<string, { packages: string[]; unowned: boolean }> {
  const all = [...new Set(paths.flatMap((p) => [...candidates(p), ...linksOnTheWay(p)]))];
  const known = dpkgOwners(all);
  const result = new Map<string, { packages: string[]; unowned: boolean }>();
  for (const p of paths) {
    const own = candidates(p).flatMap((c) => known.get(c) ?? []);
    const viaLinks = linksOnTheWay(p).flatMap((l) => known.get(l) ?? []);
    result.set(p, { packages: [...new Set([...own, ...viaLinks])], unowned: own.length === 0 });
  }
  return result;
}

/** System headers the compilers read for every C and BPF source of the build and the test tools. */
function headers(): string[] {
  const out = new Set<string>();
  const deps = (cmd: string, args: string[]) => {
    const text = sh(cmd, args).replace(/\\\n/g, " ");
    for (const w of text.split(/\s+/)) if (w.startsWith("/usr/")) out.add(w);
  };
  const bpf = readdirSync(join(EBPF, "src")).filter((f) => f.endsWith(".bpf.c"));
  for (const f of bpf)
    for (const extra of [[], ["-DBENCH_RANDOM_SRC"]])
      deps("clang-19", ["-O2", "-target", "bpf", "-mcpu=v3", "-Isrc", ...extra, "-M", "-MG", `src/${f}`]);
  const c = [
    ...["loader", "fetcher", "test"].flatMap((dir) =>
      readdirSync(join(EBPF, dir))
        .filter((f) => f.endsWith(".c"))
        .map((f) => `${dir}/${f}`),
    ),
  ];
  for (const f of c)
    deps("gcc", ["-std=gnu11", "-D_GNU_SOURCE", "-Ibuild", "-Iloader", "-Ifetcher", "-Itest", "-M", "-MG", f]);
  deps("gcc", ["-std=gnu11", "-D_GNU_SOURCE", "-M", "-MG", join(ROOT, "test/e2e/tools/netprobe.c")]);
  const stats = join(ROOT, "images/dns/stats");
  for (const f of readdirSync(stats).filter((x) => x.endsWith(".c")))
    deps("gcc", ["-std=gnu11", "-D_GNU_SOURCE", "-Iloader", "-M", "-MG", join(stats, f)]);
  return [...out].sort();
}

/** Shared libraries the built programs load. */
function libraries(): string[] {
  const bins = [
    join(EBPF, "build/router-dataplane"),
    join(EBPF, "build/router-fetch"),
    ...readdirSync(join(EBPF, "build/test")).map((f) => join(EBPF, "build/test", f)),
    STATS_BIN,
  ];
  const out = new Set<string>();
  for (const b of bins.filter((x) => existsSync(x))) {
    for (const line of sh("ldd", [b]).split("\n")) {
      const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s*\(/.exec(line);
      if (m) out.add(m[1]);
    }
  }
  return [...out].sort();
}

/** Every tool a test tier names, the build scripts run, and the images copy. */
function tools(): string[] {
  const names = new Set<string>([...BUILD_COMMANDS, ...APPLIANCE_COMMANDS]);
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts"))
        for (const m of readFileSync(p, "utf8").matchAll(/commands:\s*\[([^\]]*)\]/g))
          for (const s of m[1].matchAll(/"((?:\/usr)?\/s?bin\/)?([a-z0-9][a-z0-9_.+-]*)"/g))
            names.add((s[1] ?? "") + s[2]);
    }
  };
  walk(join(ROOT, "test"));
  for (const tool of ["clang", "llvm-strip-19", "bpftool", "buildah", "skopeo", "umoci", "jq", "tar", "ar"])
    names.add(tool);
  const paths: string[] = [];
  for (const n of names) {
    if (PROVIDED_BY_THE_MACHINE.has(n)) continue;
    const p = sh("sh", ["-c", `command -v ${n} || true`]).trim();
    paths.push(p || `<not on PATH: ${n}>`);
  }
  // The daemons and data the images copy from the build machine.
  for (const image of ["services", "observability", "dns", "ids"]) {
    const script = readFileSync(join(ROOT, `images/${image}/build-image.sh`), "utf8");
    for (const list of ["binaries", "data"]) {
      const found = new RegExp(`${list}=\\(([\\s\\S]*?)\\)`).exec(script)?.[1] ?? "";
      // The CA bundle is generated by ca-certificates (update-ca-certificates): dpkg owns no such file.
      paths.push(...found.split(/\s+/).filter((p) => p.startsWith("/") && p !== "/etc/ssl/certs/ca-certificates.crt"));
    }
  }
  return [...new Set(paths)].sort();
}

describe.skipIf(!t.ok)("the build and the tests use only what .ci/run installs", () => {
  it("reads the package list of .ci/run (.ci/packages)", () => {
    const pkgs = ciPackages();
    expect(pkgs).toContain("gcc-multilib");
    expect(pkgs).toContain("clang-19");
    expect(pkgs).toContain("suricata");
    expect(ciPackages("# eBPF\nmake\njq\n\n[bookworm-backports]\n# IDS\nsuricata\n")).toEqual([
      "make",
      "jq",
      "suricata",
    ]);
  });

  it("every header, library and tool belongs to a package .ci/run installs or to Debian's required base", () => {
    buildEbpf("loader");
    buildEbpf("tests");
    buildStats();
    const allowed = allowedPackages(ciPackages());
    const problems: string[] = [];
    const used = [...headers(), ...libraries(), ...tools()];
    expect(used.filter((p) => p.includes("/include/")).length).toBeGreaterThan(20);
    const owned = owners(used.filter((p) => !p.startsWith("<")));
    for (const path of used) {
      if (path.startsWith("<not on PATH")) {
        problems.push(path);
        continue;
      }
      const o = owned.get(path)!;
      if (o.unowned) problems.push(`${path}: no Debian package owns it (installed by hand?)`);
      for (const p of o.packages)
        if (!allowed.has(p)) problems.push(`${path}: from package ${p}, which .ci/run does not install`);
    }
    expect(problems, problems.join("\n")).toEqual([]);
  }, 600_000);
});
