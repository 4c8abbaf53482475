/**
 * Scripts that ship images the router runs, at `pulumi up` on the operator's machine: build an OCI image layout
 * from this repository (reproducible digest), push it to the site's registry, print exactly one line on stdout:
 * the pushed reference pinned by digest. Registry credentials arrive in the environment (secret) and reach
 * skopeo through a private auth file, never a command line. The scripts are pure; `shipImage` is the one helper
 * every layer uses to create the resource that runs them.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import type { Site } from "./site/schema";

const REPO_ROOT = join(__dirname, "..");

export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Strict mode, a private work directory, logging to the original stderr, and a registry auth file. */
export const PUSH_PRELUDE = [
  "set -euo pipefail",
  "umask 077",
  'work="$(mktemp -d)"',
  "trap 'rm -rf \"$work\"' EXIT",
  "exec 3>&2",
  "log() { printf '[router] %s\\n' \"$*\" >&3; }",
  // Registry auth file for skopeo and the imager (docker config format), from secret environment variables.
  'printf \'{"auths":{}}\' > "$work/auth.json"',
  'if [ -n "${ROUTER_REGISTRY_USERNAME:-}" ]; then',
  "  printf '%s' \"${ROUTER_REGISTRY_PASSWORD:?registry password missing}\" |",
  '    skopeo login --authfile "$work/auth.json" --username "$ROUTER_REGISTRY_USERNAME" --password-stdin "$REGISTRY" >&2',
  "fi",
].join("\n");

export interface PushTarget {
  /** Registry host[:port]. */
  registry: string;
  /** Repository prefix. */
  repository: string;
}

export interface ImageBuild {
  /** Image name in the registry (under the repository prefix). */
  name: string;
  /** Command (run from the repository root) that writes the OCI layout. */
  build: string;
  /** OCI layout directory relative to the repository root (holding one image). */
  oci: string;
}

/** Builds an image from the repository and pushes it; prints `<registry>/<repo>/<name>@sha256:…`. */
export function buildAndPushScript(image: ImageBuild, t: PushTarget, tag: string): string {
  const dest = `${t.registry}/${t.repository}/${image.name}`;
  return [
    `REGISTRY=${q(t.registry)}`,
    PUSH_PRELUDE,
    // Pulumi runs the program, and so these commands, from the project directory.
    '[ -f Pulumi.yaml ] || { log "run pulumi from the project directory (no Pulumi.yaml in $PWD)"; exit 1; }',
    `log ${q(`building ${image.name} (${image.build})`)}`,
    `${image.build} >&2`,
    `log ${q(`pushing it to ${dest}:${tag}`)}`,
    // --preserve-digests: skopeo would otherwise gzip the uncompressed layer on the way, and the registry would hold
    // (and the node pull) a manifest whose digest depends on the operator's skopeo rather than the reproducible one.
    `skopeo copy --quiet --preserve-digests --authfile "$work/auth.json" --digestfile "$work/digest" ${q(`oci:${image.oci}`)} ${q(`docker://${dest}:${tag}`)} >&2`,
    `printf '%s@%s\\n' ${q(dest)} "$(cat "$work/digest")"`,
  ].join("\n");
}

/**
 * Digest of the files an image is built from (build output excluded): a change to any of them rebuilds and
 * re-pushes the image; an unchanged tree does nothing.
 */
export function sourceDigest(repoRoot: string, dirs: string[]): string {
  const h = createHash("sha256");
  const walk = (root: string, dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const rel = relative(root, p);
      if (rel === "build" || rel === "out" || name.startsWith(".")) continue;
      if (statSync(p).isDirectory()) walk(root, p);
      else
        h.update(`${relative(repoRoot, p)}\0`)
          .update(readFileSync(p))
          .update("\0");
    }
  };
  for (const d of dirs) walk(join(repoRoot, d), join(repoRoot, d));
  return h.digest("hex");
}

/** Registry credentials for the push scripts, as one secret environment (empty when the registry needs none). */
export function registryEnvironment(
  site: Site,
  registryPassword: pulumi.Input<string> | undefined,
): pulumi.Output<Record<string, string>> {
  return pulumi.secret(
    pulumi.output(registryPassword ?? "").apply((password): Record<string, string> => ({
      ROUTER_REGISTRY_USERNAME: site.registry?.username ?? "",
      ROUTER_REGISTRY_PASSWORD: password,
    })),
  );
}

/** Where a site pushes its images; a ResourceError naming the fix when the site has no registry. */
export function pushTarget(site: Site, what: string, parent: pulumi.Resource): PushTarget {
  if (!site.registry)
    throw new pulumi.ResourceError(
      `${what} is built at pulumi up and must be pushed to a registry the router pulls from: set router:registry ` +
        "(server, repository, and username with the secret registryPassword if it needs a login)",
      parent,
    );
  return { registry: site.registry.server, repository: site.registry.repository };
}

export interface ShipImageArgs {
  /** The validated site (its registry is the destination). */
  site: Site;
  /** What to build and where its OCI layout lands. */
  image: ImageBuild;
  /** Repository folders the image is built from: a change in any of them rebuilds and re-pushes it. */
  sources: string[];
  /** Password of router:registry (secret), when the registry needs one. */
  registryPassword?: pulumi.Input<string>;
}

/**
 * Ships an image the router runs: builds it from the repository at `pulumi up`, pushes it to the site's registry
 * and returns the pushed reference pinned by digest. Rebuilt only when its sources change.
 */
export function shipImage(parent: pulumi.Resource, name: string, args: ShipImageArgs): pulumi.Output<string> {
  const target = pushTarget(args.site, `the image ${args.image.name}`, parent);
  const digest = sourceDigest(REPO_ROOT, args.sources);
  const build = new command.local.Command(
    name,
    {
      interpreter: ["/bin/bash", "-c"],
      environment: registryEnvironment(args.site, args.registryPassword),
      create: buildAndPushScript(args.image, target, digest.slice(0, 16)),
      triggers: [digest],
    },
    { parent },
  );
  return build.stdout.apply((s) => s.trim());
}

/**
 * Resolves an upstream image's tag to its digest (skopeo inspect, at `pulumi up`) and prints the reference pinned
 * by it: `<ref>@sha256:…`. The digest is kept in state, so a retagged upstream image never changes what runs.
 */
export function pinImageScript(ref: string): string {
  return [
    "set -euo pipefail",
    `digest="$(skopeo inspect --no-tags --format '{{.Digest}}' ${q(`docker://${ref}`)})"`,
    '[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "[router] no digest for the image: $digest" >&2; exit 1; }',
    `printf '%s@%s\\n' ${q(ref)} "$digest"`,
  ].join("\n");
}

/** An upstream image pinned by digest: as given when the reference has one, else resolved once at `pulumi up`. */
export function pinImage(parent: pulumi.Resource, name: string, ref: string): pulumi.Output<string> {
  if (/@sha256:[0-9a-f]{64}$/.test(ref)) return pulumi.output(ref);
  const pin = new command.local.Command(
    name,
    { interpreter: ["/bin/bash", "-c"], create: pinImageScript(ref), triggers: [ref] },
    { parent },
  );
  return pin.stdout.apply((s) => s.trim());
}
