#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the router's IDS image: Suricata 7 (bookworm-backports), suricatasc and suricata-update (Python, with the
# interpreter's standard library and the modules they import) from the build machine's Debian packages, and the
# block agent (router-ids-block, beside this script: alerts to the data plane's dynamic blocklist) and the metrics agent
# (router-ids-metrics: alert and drop counts for the node exporter), with
# exactly the shared libraries they need, as an OCI image layout with a reproducible digest (fixed modes, no
# timestamps).
#   build-image.sh STAGE_DIR OUT_DIR
# Output: OUT_DIR/oci (one image) and OUT_DIR/image-digest.
set -euo pipefail

here=$(dirname "$(realpath "$0")")
stage=$(realpath -m "$1")
out=$(realpath -m "$2")
name=router-ids

binaries=(/usr/bin/suricata /usr/bin/python3.11 /usr/bin/busybox)
for b in "${binaries[@]}"; do
	[ -x "$b" ] || { echo "build-image: $b is missing (install: suricata suricata-update from bookworm-backports, python3, busybox)" >&2; exit 1; }
done
python_dirs=(/usr/lib/python3.11 /usr/lib/suricata/python /usr/lib/python3/dist-packages/suricata
	/usr/lib/python3/dist-packages/yaml /usr/lib/python3/dist-packages/_yaml)
data=(/etc/suricata/classification.config /etc/suricata/reference.config /usr/bin/suricatasc /usr/bin/suricata-update)

root="$stage/rootfs"
rm -rf "$stage"
mkdir -p "$root"/{etc,tmp,run,var/lib,usr/bin}
for b in "${binaries[@]}"; do install -D -m 0755 "$b" "$root$b"; done
ln -sf python3.11 "$root/usr/bin/python3"
for d in "${python_dirs[@]}"; do
	[ -e "$d" ] || continue
	mkdir -p "$root$d" && cp -a "$d/." "$root$d/"
done
find "$root/usr/lib" -name __pycache__ -prune -exec rm -rf {} +
for f in "${data[@]}"; do install -D -m 0755 "$f" "$root$f"; done
for agent in router-ids-block router-ids-metrics; do install -D -m 0755 "$here/$agent" "$root/usr/bin/$agent"; done
for tool in sh sleep cat chown cp mv rm mkdir stat; do ln -sf busybox "$root/usr/bin/$tool"; done
ln -sf usr/bin "$root/bin"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

# Every shared library the binaries and Python's extension modules load, at the path the dynamic loader uses.
find "$root" -type f \( -perm -u+x -o -name '*.so*' \) -print0 | xargs -0 -n1 sh -c 'ldd "$0" 2>/dev/null || true' |
	awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | sort -u | while read -r lib; do
	[ -e "$root$lib" ] || install -D -m 0644 "$(realpath "$lib")" "$root$lib"
done
chmod 0755 "$root"/lib64/ld-linux-x86-64.so.2
find "$root" -type d -exec chmod 0755 {} +
chmod 1777 "$root/tmp"
find "$root" -exec touch -h -d @0 {} +

rm -rf "$out/oci"
mkdir -p "$out"
ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet "$ctr" "$root" / >/dev/null
buildah config --label "org.opencontainers.image.title=$name" --env PATH=/usr/bin "$ctr"
buildah commit --quiet --timestamp 0 --format oci --rm "$ctr" "oci:$out/oci:$name" >/dev/null
trap - EXIT
digest=$(jq -r '.manifests[0].digest' "$out/oci/index.json")
echo "$digest" > "$out/image-digest"
echo "$name image: $digest ($out/oci)"
