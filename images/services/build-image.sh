#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the router's network-services image: Kea DHCPv4/DHCPv6, radvd, chrony, Avahi and FRR from the build
# machine's Debian packages, with exactly the shared libraries they need, as an OCI image layout with a
# reproducible digest (fixed modes, no timestamps).
#   build-image.sh STAGE_DIR OUT_DIR
# Output: OUT_DIR/oci (one image) and OUT_DIR/image-digest.
set -euo pipefail

stage=$(realpath -m "$1")
out=$(realpath -m "$2")
here=$(cd "$(dirname "$0")" && pwd)
name=router-services

binaries=(
	/usr/sbin/kea-dhcp4 /usr/sbin/kea-dhcp6 /usr/sbin/kea-lfc
	/usr/sbin/radvd /usr/sbin/chronyd /usr/bin/chronyc /usr/sbin/avahi-daemon
	/usr/bin/vtysh /usr/lib/frr/zebra /usr/lib/frr/staticd /usr/lib/frr/ospfd /usr/lib/frr/watchfrr
	/usr/bin/socat /usr/bin/busybox
)
for b in "${binaries[@]}"; do
	[ -x "$b" ] || { echo "build-image: $b is missing (install: kea-dhcp4-server kea-dhcp6-server radvd chrony avahi-daemon frr socat busybox)" >&2; exit 1; }
done

root="$stage/rootfs"
rm -rf "$stage"
mkdir -p "$root"/{etc,tmp,run,var/lib,var/run,usr/bin}
chmod 1777 "$root/tmp"

for b in "${binaries[@]}"; do install -D -m 0755 "$b" "$root$b"; done
install -D -m 0755 "$here/frr-start" "$root/usr/local/bin/frr-start"
# The probe and start scripts need a shell and a few tools: busybox provides them.
for tool in sh cat grep kill printf mkdir cp test; do ln -sf busybox "$root/usr/bin/$tool"; done
ln -sf usr/bin "$root/bin"
# Kea loads its hook and FRR its module directory at run time; both come from the packages.
for dir in /usr/lib/x86_64-linux-gnu/kea /usr/lib/x86_64-linux-gnu/frr; do
	[ -d "$dir" ] && mkdir -p "$root$dir" && cp -a "$dir/." "$root$dir/"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

# Every shared library the binaries and modules link against, at the path the dynamic loader uses.
find "$root" -type f \( -perm -u+x -o -name '*.so*' \) -print0 | xargs -0 -n1 sh -c 'ldd "$0" 2>/dev/null || true' |
	awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | sort -u | while read -r lib; do
	[ -e "$root$lib" ] || install -D -m 0644 "$(realpath "$lib")" "$root$lib"
done
chmod 0755 "$root"/lib64/ld-linux-x86-64.so.2
find "$root" -type d -exec chmod 0755 {} +
chmod 1777 "$root/tmp"

rm -rf "$out/oci"
mkdir -p "$out"
ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet "$ctr" "$root" / >/dev/null
buildah config --label "org.opencontainers.image.title=$name" --env PATH=/usr/sbin:/usr/bin:/usr/lib/frr "$ctr"
buildah commit --quiet --timestamp 0 --format oci --rm "$ctr" "oci:$out/oci:$name" >/dev/null
trap - EXIT
digest=$(jq -r '.manifests[0].digest' "$out/oci/index.json")
echo "$digest" > "$out/image-digest"
echo "$name image: $digest ($out/oci)"
