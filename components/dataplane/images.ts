/**
 * Scripts that ship the data plane to a router at `pulumi up`, on the operator's machine: build the extension
 * image from ebpf/ (reproducible digest), push it to the site's registry, and build a Talos installer that
 * includes it with Talos' imager (docker or podman). Each script prints exactly one line on stdout: the pushed
 * image reference pinned by digest. Registry credentials arrive in the environment (secret) and go to skopeo
 * and the imager through a private auth file, never on a command line. Pure.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/** OCI layout the ebpf build writes, and the tag inside it. */
export const EXTENSION_OCI = "ebpf/out/oci";
export const EXTENSION_OCI_TAG = "router-dataplane";

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const PRELUDE = [
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

/** Builds the extension image from the repository and pushes it; prints `<registry>/<repo>/router-dataplane@sha256:…`. */
export function extensionScript(repoRoot: string, t: PushTarget, tag: string): string {
  const dest = `${t.registry}/${t.repository}/router-dataplane`;
  return [
    `REGISTRY=${q(t.registry)}`,
    PRELUDE,
    `cd ${q(repoRoot)}`,
    'log "building the router-dataplane extension image (make -C ebpf image)"',
    "make -C ebpf image >&2",
    `log "pushing it to ${dest}:${tag}"`,
    `skopeo copy --quiet --authfile "$work/auth.json" --digestfile "$work/digest" ${q(`oci:${EXTENSION_OCI}:${EXTENSION_OCI_TAG}`)} ${q(`docker://${dest}:${tag}`)} >&2`,
    `printf '%s@%s\\n' ${q(dest)} "$(cat "$work/digest")"`,
  ].join("\n");
}

/**
 * Builds a Talos installer with the extension (imager `installer` profile) and pushes it; prints
 * `<registry>/<repo>/installer@sha256:…`. EXTENSION_IMAGE comes from the environment (the previous step's output).
 */
export function installerScript(engine: "docker" | "podman", talosVersion: string, t: PushTarget): string {
  const dest = `${t.registry}/${t.repository}/installer`;
  return [
    `REGISTRY=${q(t.registry)}`,
    PRELUDE,
    ': "${EXTENSION_IMAGE:?the extension image reference is missing}"',
    `log "building a Talos ${talosVersion} installer with $EXTENSION_IMAGE (imager through ${engine})"`,
    `${engine} run --rm -v "$work:/out" -v "$work/auth.json:/root/.docker/config.json:ro" ${q(`ghcr.io/siderolabs/imager:${talosVersion}`)} installer --arch amd64 --system-extension-image "$EXTENSION_IMAGE" >&2`,
    // The tag names the Talos version and the extension digest, so a new extension is a new installer tag.
    `tag=${q(talosVersion)}-"$(printf '%s' "$EXTENSION_IMAGE" | sed -e 's/.*sha256://' | cut -c1-12)"`,
    `log "pushing it to ${dest}:$tag"`,
    `skopeo copy --quiet --authfile "$work/auth.json" --digestfile "$work/digest" "docker-archive:$work/installer-amd64.tar" ${q(`docker://${dest}`)}":$tag" >&2`,
    `printf '%s@%s\\n' ${q(dest)} "$(cat "$work/digest")"`,
  ].join("\n");
}

/**
 * Digest of the data plane's sources (ebpf/ minus build output): a change to any source file rebuilds and
 * re-pushes the extension; an unchanged tree does nothing.
 */
export function sourceDigest(repoRoot: string): string {
  const root = join(repoRoot, "ebpf");
  const h = createHash("sha256");
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const rel = relative(root, p);
      if (rel === "build" || rel === "out" || name.startsWith(".")) continue;
      if (statSync(p).isDirectory()) walk(p);
      else h.update(`${rel}\0`).update(readFileSync(p)).update("\0");
    }
  };
  walk(root);
  return h.digest("hex");
}
