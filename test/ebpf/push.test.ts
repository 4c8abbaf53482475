/**
 * The script `pulumi up` runs to ship the data-plane extension (components/images.ts buildAndPushScript with
 * EXTENSION_IMAGE), run for real: it builds the extension image with make, logs in with the credentials from its
 * environment and pushes with skopeo to a real registry (the distribution registry, TLS with a test CA, htpasswd
 * auth). What the operator relies on: the printed reference is pinned to the image's reproducible digest, the
 * registry serves exactly that manifest, bad credentials stop the run with the registry's reason, and the password
 * shows up in no output.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildAndPushScript } from "../../components/images";
import { EXTENSION_IMAGE, installerScript } from "../../components/dataplane/images";
import { tier } from "../helpers/tier";
import { REGISTRY_COMMANDS, startRegistry, type TestRegistry } from "../helpers/registry";
import { BUILD_COMMANDS, EBPF, buildEbpf, tempDir } from "./lib";

const t = tier("ebpf-push", {
  root: true,
  commands: [...BUILD_COMMANDS, "buildah", "skopeo", ...REGISTRY_COMMANDS],
});

const REPO = resolve(EBPF, "..");
const USER = "site-a-push";
const PASSWORD = "p4ss-Nobody-Guesses-7f3c";
const REPOSITORY = "router/site-a";

function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe.skipIf(!t.ok)("extension push to a registry (the pulumi up step, run for real)", () => {
  let dir: string;
  let registry: TestRegistry | undefined;
  let server: string;
  let env: NodeJS.ProcessEnv;
  let oci: string;

  /** Runs the push script as Pulumi's command provider does (bash -c, from the project directory). */
  function push(tag: string, creds: { user?: string; password?: string }) {
    const script = buildAndPushScript(
      {
        ...EXTENSION_IMAGE,
        // the real build command, into a private output tree and serialised with the other eBPF tests' builds
        build: `flock ebpf/Makefile ${EXTENSION_IMAGE.build} -s OUT=${dir}/out`,
        oci,
      },
      { registry: server, repository: REPOSITORY },
      tag,
    );
    return spawnSync("/bin/bash", ["-c", script], {
      cwd: REPO,
      encoding: "utf8",
      env: { ...env, ROUTER_REGISTRY_USERNAME: creds.user ?? "", ROUTER_REGISTRY_PASSWORD: creds.password ?? "" },
      maxBuffer: 64 << 20,
      timeout: 600_000,
    });
  }

  /** GET from the registry's API with the push credentials; returns status and body. */
  function api(path: string, accept?: string): { status: number; body: Buffer } {
    const out = join(dir, "api.out");
    const args = ["-s", "-o", out, "-w", "%{http_code}", "--cacert", join(dir, "ca.pem"), "-u", `${USER}:${PASSWORD}`];
    if (accept) args.push("-H", `Accept: ${accept}`);
    const code = run("curl", [...args, `https://${server}${path}`]);
    return { status: Number(code), body: readFileSync(out) };
  }

  beforeAll(async () => {
    buildEbpf("all");
    dir = tempDir("dp-push-");
    oci = join(dir, "out/oci");
    registry = await startRegistry(dir, { user: USER, password: PASSWORD });
    server = registry.server;
    env = registry.env;
  }, 900_000);

  afterAll(async () => {
    await registry?.stop();
  });

  let first: ReturnType<typeof push>;
  it("builds the image, pushes it and prints one reference pinned to the layout's digest", () => {
    first = push("t1", { user: USER, password: PASSWORD });
    expect(first.status, first.stderr).toBe(0);
    const index = JSON.parse(readFileSync(join(oci, "index.json"), "utf8"));
    expect(index.manifests).toHaveLength(1);
    const digest: string = index.manifests[0].digest;
    expect(first.stdout).toBe(`${server}/${REPOSITORY}/${EXTENSION_IMAGE.name}@${digest}\n`);
    // the steps are logged on stderr for the operator
    expect(first.stderr).toContain(`[router] pushing it to ${server}/${REPOSITORY}/${EXTENSION_IMAGE.name}:t1`);
  }, 900_000);

  it("leaves exactly that manifest in the registry, under the tag and by digest, with every blob", () => {
    const digest = first.stdout.trim().split("@")[1];
    const name = `/v2/${REPOSITORY}/${EXTENSION_IMAGE.name}`;
    const byTag = api(`${name}/manifests/t1`, "application/vnd.oci.image.manifest.v1+json");
    expect(byTag.status).toBe(200);
    expect(`sha256:${createHash("sha256").update(byTag.body).digest("hex")}`).toBe(digest);
    const manifest = JSON.parse(byTag.body.toString("utf8"));
    for (const blob of [manifest.config, ...manifest.layers]) {
      const b = api(`${name}/blobs/${blob.digest}`);
      expect(b.status, blob.digest).toBe(200);
      expect(`sha256:${createHash("sha256").update(b.body).digest("hex")}`).toBe(blob.digest);
    }
    expect(JSON.parse(api(`${name}/tags/list`).body.toString("utf8")).tags).toEqual(["t1"]);
  });

  it("pushes an unchanged tree to the same digest", () => {
    const again = push("t2", { user: USER, password: PASSWORD });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout.trim().split("@")[1]).toBe(first.stdout.trim().split("@")[1]);
  }, 900_000);

  it("stops on a wrong password with the registry's reason, and pushes nothing", () => {
    const r = push("bad", { user: USER, password: `${PASSWORD}-wrong` });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/unauthorized|invalid username\/password/i);
    const tags = JSON.parse(api(`/v2/${REPOSITORY}/${EXTENSION_IMAGE.name}/tags/list`).body.toString("utf8")).tags;
    expect(tags).not.toContain("bad");
  }, 900_000);

  it("stops when the registry needs credentials and none are configured", () => {
    const r = push("anon", {});
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/unauthorized|authentication required/i);
  }, 900_000);

  it("never prints the password", () => {
    expect(first.stdout + first.stderr).not.toContain(PASSWORD);
  });

  /*
   * The installer step that follows. Talos' imager cannot run here (no container engine, and its image is on
   * ghcr.io), so `docker` is a shim that records how it was called and plays the imager's part of the contract:
   * an installer archive in the mounted /out. Everything else is real: the auth file handed to the imager, the
   * tag, the push of the archive and the printed reference.
   */
  it("runs the imager with the pushed extension and the registry login, and pushes the installer it writes", () => {
    const ext = first.stdout.trim();
    const bin = join(dir, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(
      join(bin, "docker"),
      [
        "#!/bin/bash",
        "set -euo pipefail",
        `printf '%s\\n' "$@" > ${dir}/docker.args`,
        'out=""',
        "for ((i = 1; i <= $#; i++)); do",
        '  a="${!i}"',
        '  case "$a" in *:/out) out="${a%:/out}" ;; *:/root/.docker/config.json:ro) cp "${a%%:*}" ' +
          dir +
          "/imager-auth.json ;; esac",
        "done",
        `skopeo copy --quiet oci:${oci} "docker-archive:$out/installer-amd64.tar"`,
        "",
      ].join("\n"),
    );
    chmodSync(join(bin, "docker"), 0o755);
    const r = spawnSync(
      "/bin/bash",
      ["-c", installerScript("docker", "v1.14.6", { registry: server, repository: REPOSITORY })],
      {
        cwd: REPO,
        encoding: "utf8",
        env: {
          ...env,
          PATH: `${bin}:${env.PATH}`,
          EXTENSION_IMAGE: ext,
          ROUTER_REGISTRY_USERNAME: USER,
          ROUTER_REGISTRY_PASSWORD: PASSWORD,
        },
        timeout: 300_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const args = readFileSync(join(dir, "docker.args"), "utf8").trim().split("\n");
    expect(args.slice(args.indexOf("ghcr.io/siderolabs/imager:v1.14.6"))).toEqual([
      "ghcr.io/siderolabs/imager:v1.14.6",
      "installer",
      "--arch",
      "amd64",
      "--system-extension-image",
      ext,
    ]);
    // the imager can pull the extension from the private registry: the login reached it
    expect(Object.keys(JSON.parse(readFileSync(join(dir, "imager-auth.json"), "utf8")).auths)).toContain(server);
    const tag = `v1.14.6-${ext.split("sha256:")[1].slice(0, 12)}`;
    const m = r.stdout.match(new RegExp(`^${server}/${REPOSITORY}/installer@(sha256:[0-9a-f]{64})\\n$`));
    expect(m, r.stdout).not.toBeNull();
    const name = `/v2/${REPOSITORY}/installer`;
    expect(JSON.parse(api(`${name}/tags/list`).body.toString("utf8")).tags).toEqual([tag]);
    const manifest = api(
      `${name}/manifests/${tag}`,
      "application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json",
    );
    expect(manifest.status).toBe(200);
    expect(`sha256:${createHash("sha256").update(manifest.body).digest("hex")}`).toBe(m![1]);
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  }, 300_000);
});
