/**
 * Shipping the data plane: the extension image (built from ebpf/) and a Talos installer that includes it, built
 * with Talos' imager (docker or podman) on the operator's machine and pushed to the site's registry. Pure.
 */
import { PUSH_PRELUDE, q, type ImageBuild, type PushTarget } from "../images";

/** The extension image: built by `make -C ebpf image` into ebpf/out/oci. */
export const EXTENSION_IMAGE: ImageBuild = {
  name: "router-dataplane",
  build: "make -C ebpf image",
  oci: "ebpf/out/oci",
};

/**
 * Builds a Talos installer with the extension (imager `installer` profile) and pushes it; prints
 * `<registry>/<repo>/installer@sha256:…`. EXTENSION_IMAGE comes from the environment (the previous step's output).
 */
export function installerScript(engine: "docker" | "podman", talosVersion: string, t: PushTarget): string {
  const dest = `${t.registry}/${t.repository}/installer`;
  return [
    `REGISTRY=${q(t.registry)}`,
    PUSH_PRELUDE,
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
