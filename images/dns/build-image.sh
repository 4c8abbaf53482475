#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the router's DNS image: dnsdist, Unbound, Knot (and its kdig, the rollout gate's DoT/DoH probe), Kea's
# DHCP-DDNS daemon and tinycdb from the build machine's Debian packages, the stack's own programs (router-dns-stats, dns-feeds, and the data plane's
# router-fetch), the DNSSEC root trust anchor and the CA bundle, with exactly the shared libraries they need, as
# an OCI image layout with a reproducible digest (fixed modes, no timestamps).
#   build-image.sh STAGE_DIR OUT_DIR STATS_BINARY ROUTER_FETCH
# Output: OUT_DIR/oci (one image) and OUT_DIR/image-digest.
set -euo pipefail

stage=$(realpath -m "$1")
out=$(realpath -m "$2")
stats=$(realpath "$3")
fetch=$(realpath "$4")
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
name=router-dns

binaries=(
	/usr/bin/dnsdist /usr/sbin/unbound /usr/sbin/unbound-control /usr/sbin/knotd /usr/sbin/knotc
	/usr/sbin/kea-dhcp-ddns /usr/bin/cdb /usr/bin/socat /usr/bin/busybox /usr/bin/kdig
)
for b in "${binaries[@]}"; do
	[ -x "$b" ] || { echo "build-image: $b is missing (install: dnsdist unbound knot kea-dhcp-ddns-server tinycdb socat busybox knot-dnsutils)" >&2; exit 1; }
done
data=(/usr/share/dns/root.key /etc/ssl/certs/ca-certificates.crt)
for f in "${data[@]}"; do
	[ -s "$f" ] || { echo "build-image: $f is missing (install: dns-root-data ca-certificates)" >&2; exit 1; }
done

root="$stage/rootfs"
rm -rf "$stage"
mkdir -p "$root"/{etc,tmp,run,var/lib,usr/bin,usr/local/bin}
for b in "${binaries[@]}"; do install -D -m 0755 "$b" "$root$b"; done
for f in "${data[@]}"; do install -D -m 0644 "$f" "$root$f"; done
install -m 0755 "$stats" "$root/usr/local/bin/router-dns-stats"
install -m 0755 "$here/dns-feeds" "$root/usr/local/bin/dns-feeds"
install -m 0755 "$fetch" "$root/usr/local/bin/router-fetch"
# The probes, the feeds job and the rollout gate's DNS probe (nslookup) need a shell and a few tools: busybox
# provides them.
for tool in sh cat grep kill printf mkdir cp test wget find chown sed awk sort wc tr mv date sleep touch rm nslookup tail stat; do
	ln -sf busybox "$root/usr/bin/$tool"
done
ln -sf usr/bin "$root/bin"
ln -sf usr/sbin "$root/sbin"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

copy_libraries "$root"
commit_image "$root" "$name" "$out" /usr/local/bin:/usr/sbin:/usr/bin
