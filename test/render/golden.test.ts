/**
 * The dev site's offline render, byte for byte. A change to any artifact shows up here as a diff a reviewer
 * reads; refresh with `UPDATE_GOLDEN=1 npx vitest run test/render/golden.test.ts` after checking it.
 */
import { describe, expect, it } from "vitest";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { renderStack } from "../../cli/render";
import { talosSchema } from "../helpers/talos-schema";
import { sourceDigest } from "../../components/images";
import { ROOT } from "../helpers/stacks";

const GOLDEN = join(__dirname, "../golden/dev");

/**
 * Image builds are triggered by the digest of their sources (ebpf/, images/services/): that digest changes with
 * every source edit, which is checked below, so the byte comparison ignores it.
 */
function maskSourceDigests(text: string): string {
  const digests = [sourceDigest(ROOT, ["ebpf"]), sourceDigest(ROOT, ["images/services"])];
  let out = text.replace(/"[0-9a-f]{64}"/g, '"<source digest>"');
  for (const d of digests) out = out.split(d.slice(0, 16)).join("<tag>");
  return out.replace(/(router-dataplane|router-services):[0-9a-f]{16}/g, "$1:<tag>");
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

describe("the dev site's render", () => {
  it("matches the golden files exactly", async () => {
    const { files } = await renderStack({ stack: "dev" });
    if (process.env.UPDATE_GOLDEN === "1") {
      rmSync(GOLDEN, { recursive: true, force: true });
      for (const [p, c] of files) {
        mkdirSync(dirname(join(GOLDEN, p)), { recursive: true });
        writeFileSync(join(GOLDEN, p), c);
      }
    }
    expect([...files.keys()].sort()).toEqual(listFiles(GOLDEN));
    for (const [p, c] of files)
      expect(maskSourceDigests(c), p).toBe(maskSourceDigests(readFileSync(join(GOLDEN, p), "utf8")));
  });

  it("has a machine configuration that validates against the Talos 1.14 schema", () => {
    const problems = talosSchema().validateStream(readFileSync(join(GOLDEN, "talos/lab-rtr1.yaml"), "utf8"));
    expect(problems).toEqual([]);
  });

  it("rebuilds each image exactly when its sources change (the trigger is the sources' digest)", async () => {
    const { run } = await renderStack({ stack: "dev" });
    const trigger = (name: string) => (run.resources.find((r) => r.name === name)!.inputs.triggers as string[])[0];
    expect(trigger("lab-dataplane-extension")).toBe(sourceDigest(ROOT, ["ebpf"]));
    expect(trigger("lab-services-image")).toBe(sourceDigest(ROOT, ["images/services"]));
  });

  it("shows the undecryptable registry password only as a placeholder", () => {
    const resources = readFileSync(join(GOLDEN, "resources.json"), "utf8");
    expect(resources).not.toContain("c2FtcGxlLWNpcGhlcnRleHQ");
    expect(readFileSync(join(GOLDEN, "talos/lab-rtr1.yaml"), "utf8")).toContain(
      'password: "[secret:registryPassword]"',
    );
  });
});
