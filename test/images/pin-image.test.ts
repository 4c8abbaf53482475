/**
 * `pinImage` (components/images.ts): an upstream image the site names by tag (VictoriaLogs, Grafana) is resolved
 * to a digest once, at `pulumi up`, and every workload runs that digest. Run for real: the program's Command
 * (under Pulumi's mocks, whose Command runs its `create` script with bash as the command provider does) asks a real
 * registry (Debian's distribution registry, TLS with a test CA) through skopeo. What the operator relies on: the
 * pinned reference is the digest the registry serves under the tag — for a multi-platform image its index, so an
 * arm64 router pinned from an amd64 workstation still pulls its own image —, the pin keeps naming the old content
 * after the tag moves upstream, a missing tag stops `pulumi up` with the registry's reason, and a reference that
 * is already pinned runs no command at all.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pinImage, pinImageScript } from "../../components/images";
import { REGISTRY_COMMANDS, startRegistry, type TestRegistry } from "../helpers/registry";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";

const t = tier("image pinning", { root: true, commands: ["buildah", "skopeo", "bash", ...REGISTRY_COMMANDS] });

let dir = "";
let registry: TestRegistry;
/** Commands the program registered: name → inputs. */
const commands = new Map<string, Record<string, unknown>>();

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A one-file image for one architecture, as an OCI layout; returns its manifest descriptor. */
function image(arch: string, content: string): { layout: string; digest: string; size: number } {
  const layout = join(dir, `${arch}-${createHash("sha256").update(content).digest("hex").slice(0, 8)}`);
  writeFileSync(join(dir, "file"), content);
  const ctr = run("buildah", ["from", "--quiet", "--arch", arch, "scratch"]).trim();
  run("buildah", ["copy", "--quiet", ctr, join(dir, "file"), "/file"]);
  run("buildah", ["config", "--arch", arch, ctr]);
  run("buildah", ["commit", "--quiet", "--timestamp", "0", "--format", "oci", "--rm", ctr, `oci:${layout}:x`]);
  const d = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")).manifests[0];
  return { layout, digest: d.digest, size: d.size };
}

/** An OCI layout holding one image index (tag `x`) over the given per-architecture images. */
function multiPlatform(images: { arch: string; layout: string; digest: string; size: number }[]): string {
  const layout = join(dir, "multi");
  mkdirSync(join(layout, "blobs/sha256"), { recursive: true });
  for (const i of images)
    for (const b of readdirSync(join(i.layout, "blobs/sha256")))
      copyFileSync(join(i.layout, "blobs/sha256", b), join(layout, "blobs/sha256", b));
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: images.map((i) => ({
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: i.digest,
        size: i.size,
        platform: { architecture: i.arch, os: "linux" },
      })),
    }),
  );
  const digest = createHash("sha256").update(index).digest("hex");
  writeFileSync(join(layout, "blobs/sha256", digest), index);
  writeFileSync(join(layout, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.index.v1+json",
          digest: `sha256:${digest}`,
          size: index.length,
          annotations: { "org.opencontainers.image.ref.name": "x" },
        },
      ],
    }),
  );
  return layout;
}

function push(layout: string, ref: string): void {
  run("skopeo", ["copy", "--quiet", "--all", "--preserve-digests", `oci:${layout}:x`, `docker://${ref}`], registry.env);
}

/** The digest the registry serves for a reference (of the manifest or index under a tag), from its API. */
function servedDigest(repo: string, tag: string): string {
  const accept = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
  ].join(",");
  const headers = run("curl", [
    "-sfI",
    "--cacert",
    registry.ca,
    "-H",
    `Accept: ${accept}`,
    `https://${registry.server}/v2/${repo}/manifests/${tag}`,
  ]);
  return /docker-content-digest:\s*(\S+)/i.exec(headers)![1];
}

/**
 * The pinned reference as skopeo takes it: `name@digest`. The pin keeps the tag for the reader (`name:tag@digest`,
 * which distribution's reference grammar allows and the kubelet pulls by its digest); skopeo refuses both at once.
 */
function byDigest(pinned: string): string {
  const [name, digest] = pinned.split("@");
  return `${name.replace(/:[^:/]+$/, "")}@${digest}`;
}

/** pinImage under the mocks; resolves to its output (the Command's stdout, from the real script). */
async function pin(name: string, ref: string): Promise<string> {
  const parent = new pulumi.ComponentResource("test:images:Pins", `${name}-parent`, {});
  const out = pinImage(parent, name, ref);
  return new Promise((resolve) => out.apply(resolve));
}

beforeAll(async () => {
  if (!t.ok) return;
  dir = tempDir("pin-image-");
  registry = await startRegistry(dir);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        if (args.type !== "command:local:Command") return { id: undefined, state: args.inputs };
        commands.set(args.name, args.inputs);
        // The command provider runs `create` with the interpreter on the operator's machine.
        const [shell, flag] = args.inputs.interpreter as string[];
        const r = spawnSync(shell, [flag, args.inputs.create as string], { encoding: "utf8", env: registry.env });
        if (r.status !== 0) throw new Error(`command ${args.name} failed (exit ${r.status}): ${r.stderr}`);
        return { id: `${args.name}-id`, state: { ...args.inputs, stdout: r.stdout, stderr: r.stderr } };
      },
      call: (args) => args.inputs,
    },
    "router",
    "pin-test",
    false,
  );
}, 120_000);

afterAll(async () => {
  await registry?.stop();
});

describe.skipIf(!t.ok)("pinning an upstream image by digest at pulumi up", () => {
  it("pins a multi-platform tag to the index the registry serves, from which an arm64 router pulls its own image", async () => {
    const amd = image("amd64", "amd64 v1");
    const arm = image("arm64", "arm64 v1");
    const ref = `${registry.server}/upstream/victoria-logs:v1.52.2`;
    push(
      multiPlatform([
        { arch: "amd64", ...amd },
        { arch: "arm64", ...arm },
      ]),
      ref,
    );
    const pinned = await pin("logs-image", ref);
    expect(pinned).toBe(`${ref}@${servedDigest("upstream/victoria-logs", "v1.52.2")}`);
    const forArm = JSON.parse(
      run("skopeo", ["inspect", "--override-arch", "arm64", `docker://${byDigest(pinned)}`], registry.env),
    ) as { Architecture: string };
    expect(forArm.Architecture).toBe("arm64");
    expect(commands.get("logs-image")?.triggers).toEqual([ref]);
  });

  it("keeps naming the content it pinned after the tag moves upstream", async () => {
    const ref = `${registry.server}/upstream/grafana:11.6.0`;
    const first = image("amd64", "grafana first");
    push(first.layout, ref);
    const pinned = await pin("dash-image", ref);
    push(image("amd64", "grafana retagged").layout, ref);
    expect(servedDigest("upstream/grafana", "11.6.0")).not.toBe(pinned.split("@")[1]);
    // what the pin names is still there, unchanged: the router keeps running what was reviewed
    const layers = JSON.parse(run("skopeo", ["inspect", `docker://${byDigest(pinned)}`], registry.env)) as {
      Layers: string[];
    };
    const built = JSON.parse(run("skopeo", ["inspect", `oci:${first.layout}:x`])) as { Layers: string[] };
    expect(layers.Layers).toEqual(built.Layers);
  });

  it("stops with the registry's reason when the tag does not exist, printing no reference", () => {
    const r = spawnSync("bash", ["-c", pinImageScript(`${registry.server}/upstream/victoria-logs:v9.9.9`)], {
      encoding: "utf8",
      env: registry.env,
    });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/manifest unknown|not found/i);
  });

  it("uses a reference already pinned by digest as it is, without a command", async () => {
    const ref = `docker.io/victoriametrics/victoria-logs:v1.52.2@sha256:${"ab".repeat(32)}`;
    expect(await pin("given-image", ref)).toBe(ref);
    expect(commands.has("given-image")).toBe(false);
  });
});
