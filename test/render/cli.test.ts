/** `npm run render` as an operator runs it: deterministic output, and nothing written for an invalid site. */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { join, relative } from "node:path";
import { parse, stringify } from "yaml";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";

function render(args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "cli/render.ts"), ...args], {
    encoding: "utf8",
    cwd: ROOT,
    timeout: 60_000,
  });
}

function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, "utf8"));
    }
  };
  walk(dir);
  return out;
}

describe("npm run render", () => {
  it("renders the same bytes on every run", () => {
    const tmp = tempDir("render-");
    const a = render(["--stack", "dev", "--out", join(tmp, "a")]);
    const b = render(["--stack", "dev", "--out", join(tmp, "b")]);
    expect(a.status, a.stderr).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    expect(a.stdout).toMatch(/rendered stack dev: \d+ files/);
    const sa = snapshot(join(tmp, "a"));
    expect([...sa.keys()]).toEqual(
      expect.arrayContaining(["resources.json", "SUMMARY.md", "talos/lab-rtr1.yaml", "helm/cilium.values.yaml"]),
    );
    expect(snapshot(join(tmp, "b"))).toEqual(sa);
  });

  it("prints every problem of an invalid site, exits non-zero and writes nothing", () => {
    const project = tempDir("project-");
    copyFileSync(join(ROOT, "Pulumi.yaml"), join(project, "Pulumi.yaml"));
    const dev = parse(readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8"));
    dev.config["router:segments"][1].vlan = 10; // a duplicate VLAN would merge two segments on the wire
    dev.config["router:segments"][2].ipv4.cidr = "10.20.0.0/24"; // overlapping subnets make routing ambiguous
    dev.config["router:node"].managementAddress = "10.99.0.1"; // no management path: the router would be unreachable
    writeFileSync(join(project, "Pulumi.broken.yaml"), stringify(dev));
    const out = join(project, "out");
    mkdirSync(out);
    writeFileSync(join(out, "previous.txt"), "an earlier render");
    const r = render(["--dir", project, "--stack", "broken", "--out", join(out, "broken")]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/the site configuration is invalid; nothing was written/);
    expect(r.stderr).toMatch(/router:segments\[1\]\.vlan: duplicate VLAN id 10/);
    expect(r.stderr).toMatch(/router:segments\[2\]\.ipv4\.cidr: 10\.20\.0\.0\/24 overlaps/);
    expect(r.stderr).toMatch(
      /router:node\.managementAddress: 10\.99\.0\.1 is not the router's address on a management segment/,
    );
    expect(existsSync(join(out, "broken"))).toBe(false);
    expect(readdirSync(out)).toEqual(["previous.txt"]);
  });

  it("names the stack file, line and column of a YAML syntax error and what is wrong, without a stack trace", () => {
    const project = tempDir("project-");
    copyFileSync(join(ROOT, "Pulumi.yaml"), join(project, "Pulumi.yaml"));
    const lines = readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8").split("\n");
    const at = lines.findIndex((l) => /^ {4}domain: /.test(l));
    const variant = (name: string, edit: (l: string[]) => void) => {
      const copy = [...lines];
      edit(copy);
      writeFileSync(join(project, `Pulumi.${name}.yaml`), copy.join("\n"));
      return render(["--dir", project, "--stack", name, "--out", join(project, "out")]);
    };
    // A colon in an unquoted value: a nested mapping YAML refuses.
    const colon = variant("colon", (l) => (l[at] = "    domain: lab: home.arpa"));
    // A key given twice: one value would silently win.
    const twice = variant("twice", (l) => l.splice(at + 1, 0, "    name: again"));
    for (const [r, name, line, col, what] of [
      [colon, "colon", at + 1, 13, "Nested mappings are not allowed in compact mappings"],
      [twice, "twice", at + 2, 5, "Map keys must be unique"],
    ] as const) {
      const file = join(project, `Pulumi.${name}.yaml`);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`${file} is not valid YAML (1 problem); nothing was read`);
      expect(r.stderr).toContain(`${file}:${line}:${col}: ${what}`);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
    expect(existsSync(join(project, "out"))).toBe(false);
  });
});
