#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the router's observability image: Prometheus, Alertmanager, the node exporter, syslog-ng, ulogd2,
# softflowd, nfacctd and jq from the build machine's Debian packages, the stack's metric scripts, and exactly the
# shared libraries and plugin directories they load, as an OCI image layout with a reproducible digest.
#   build-image.sh STAGE_DIR OUT_DIR
# Output: OUT_DIR/oci (one image) and OUT_DIR/image-digest.
set -euo pipefail

stage=$(realpath -m "$1")
out=$(realpath -m "$2")
here=$(cd "$(dirname "$0")" && pwd)
name=router-observability

binaries=(
	/usr/bin/prometheus /usr/bin/prometheus-alertmanager /usr/bin/prometheus-node-exporter
	/usr/sbin/syslog-ng /usr/sbin/ulogd /usr/sbin/softflowd /usr/sbin/nfacctd /usr/bin/busybox /usr/bin/jq
)
for b in "${binaries[@]}"; do
	[ -x "$b" ] || { echo "build-image: $b is missing (install: prometheus prometheus-alertmanager prometheus-node-exporter syslog-ng-core syslog-ng-mod-http ulogd2 ulogd2-json softflowd pmacct busybox jq)" >&2; exit 1; }
done

root="$stage/rootfs"
rm -rf "$stage"
mkdir -p "$root"/{etc,tmp,run,var/lib,usr/bin,usr/local/bin}
for b in "${binaries[@]}"; do install -D -m 0755 "$b" "$root$b"; done
install -m 0755 "$here/router-dhcp-metrics" "$here/router-talker-metrics" "$here/router-bgp-metrics" \
	"$here/router-ospf-metrics" "$root/usr/local/bin/"
# The metric scripts need a shell and a few tools: busybox provides them (jq is Debian's, for the BGP and OSPF
# collectors).
for tool in sh awk sort date sleep mv cat timeout head; do ln -sf busybox "$root/usr/bin/$tool"; done
ln -sf usr/bin "$root/bin"
# Plugins loaded at run time: syslog-ng's modules (network, http, json, csv), ulogd2's.
for dir in /usr/lib/syslog-ng /usr/lib/x86_64-linux-gnu/ulogd /usr/share/syslog-ng; do
	[ -d "$dir" ] && mkdir -p "$root$dir" && cp -a "$dir/." "$root$dir/"
done
# The build machine's CA bundle (Debian ca-certificates): remote write, log forwarding and e-mail verify their
# servers with it (Go's crypto/x509 and libcurl both read this path).
ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || { echo "build-image: $ca is missing (install: ca-certificates)" >&2; exit 1; }
install -D -m 0644 "$ca" "$root$ca"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

# Every shared library the binaries and plugins link against, at the path the dynamic loader uses.
find "$root" -type f \( -perm -u+x -o -name '*.so*' \) -print0 | xargs -0 -n1 sh -c 'ldd "$0" 2>/dev/null || true' |
	awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | sort -u | while read -r lib; do
	[ -e "$root$lib" ] || install -D -m 0644 "$(realpath "$lib")" "$root$lib"
done
[ -e "$root/lib64/ld-linux-x86-64.so.2" ] && chmod 0755 "$root/lib64/ld-linux-x86-64.so.2"
find "$root" -type d -exec chmod 0755 {} +
chmod 1777 "$root/tmp"

rm -rf "$out/oci"
mkdir -p "$out"
ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet "$ctr" "$root" / >/dev/null
buildah config --label "org.opencontainers.image.title=$name" --env PATH=/usr/local/bin:/usr/sbin:/usr/bin "$ctr"
buildah commit --quiet --timestamp 0 --format oci --rm "$ctr" "oci:$out/oci:$name" >/dev/null
trap - EXIT
digest=$(jq -r '.manifests[0].digest' "$out/oci/index.json")
echo "$digest" > "$out/image-digest"
echo "$name image: $digest ($out/oci)"
