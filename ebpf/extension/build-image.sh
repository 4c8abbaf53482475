#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Assembles the Talos system extension and commits it as an OCI image layout.
#   build-image.sh BUILD_DIR OUT_DIR
# Output: OUT_DIR/oci (image layout, tag router-dataplane-vVERSION) and OUT_DIR/image-digest.
#
# The service's container rootfs carries the loader, the list fetcher, nft, the BPF objects, the
# shared libraries the binaries need (copied as ldd reports them, libcurl's TLS stack included)
# plus the dynamic loader, and the CA bundle for the feed downloads: Talos' own libraries are not
# ABI-compatible with Debian's build, and the extension must be self-contained.
# The digest is reproducible: fixed modes, no timestamps (buildah --timestamp 0), stripped binaries.
set -euo pipefail

build=$(realpath "$1")
out=$(realpath -m "$2")
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's/^  version: "\(.*\)"$/\1/p' "$here/manifest.yaml")
name=router-dataplane
stage="$build/extension"
ctrroot="$stage/rootfs/usr/local/lib/containers/$name"

[ -n "$version" ] || { echo "build-image: no metadata.version in manifest.yaml" >&2; exit 1; }
rm -rf "$stage"
mkdir -p "$stage/rootfs/usr/local/etc/containers" "$ctrroot"
install -m 0644 "$here/manifest.yaml" "$stage/manifest.yaml"
install -m 0644 "$here/rootfs/usr/local/etc/containers/$name.yaml" "$stage/rootfs/usr/local/etc/containers/$name.yaml"

install -D -m 0755 "$build/router-dataplane" "$ctrroot/usr/bin/router-dataplane"
# the loader runs the list fetcher from its own directory, unprivileged
install -D -m 0755 "$build/router-fetch" "$ctrroot/usr/bin/router-fetch"
install -D -m 0755 "$(command -v nft)" "$ctrroot/usr/sbin/nft"
strip --strip-debug "$ctrroot/usr/bin/router-dataplane" "$ctrroot/usr/bin/router-fetch"
# nft resolves protocol and service names (ipv6-icmp, https) through these files (Debian: netbase)
install -D -m 0644 /etc/protocols "$ctrroot/etc/protocols"
install -D -m 0644 /etc/services "$ctrroot/etc/services"
# router-fetch verifies TLS: libcurl's compiled-in CA bundle path (Debian: ca-certificates)
install -D -m 0644 "$(curl-config --ca)" "$ctrroot$(curl-config --ca)"
# mount point of the host's resolv.conf (the rootfs is read-only; Talos gives the service none of its own)
install -D -m 0644 /dev/null "$ctrroot/etc/resolv.conf"
for obj in wan_guard segment_qos; do
	install -D -m 0644 "$build/$obj.bpf.o" "$ctrroot/usr/lib/$name/bpf/$obj.bpf.o"
done

# Shared libraries at the paths the dynamic loader resolves them to.
for bin in "$ctrroot/usr/bin/router-dataplane" "$ctrroot/usr/bin/router-fetch" "$ctrroot/usr/sbin/nft"; do
	ldd "$bin" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}'
done | sort -u | while read -r lib; do
	install -D -m 0644 "$(realpath "$lib")" "$ctrroot$lib"
done
chmod 0755 "$ctrroot"/lib64/ld-linux-x86-64.so.2
find "$stage" -type d -exec chmod 0755 {} +

rm -rf "$out/oci"
mkdir -p "$out"
ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet "$ctr" "$stage/manifest.yaml" /manifest.yaml >/dev/null
buildah copy --quiet "$ctr" "$stage/rootfs" /rootfs >/dev/null
buildah config --label "org.opencontainers.image.title=$name" --label "org.opencontainers.image.version=$version" "$ctr"
buildah commit --quiet --timestamp 0 --format oci --rm "$ctr" "oci:$out/oci:$name-v$version" >/dev/null
trap - EXIT

digest=$(jq -r '.manifests[0].digest' "$out/oci/index.json")
echo "$digest" > "$out/image-digest"
echo "$name v$version image: $digest ($out/oci)"
