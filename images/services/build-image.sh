#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the router's network-services image: Kea DHCPv4/DHCPv6, radvd, chrony, Avahi and BIRD from the build
# machine's Debian packages, with exactly the shared libraries they need, as an OCI image layout with a
# reproducible digest (fixed modes, no timestamps).
#   build-image.sh STAGE_DIR OUT_DIR
# Output: OUT_DIR/oci (one image) and OUT_DIR/image-digest.
set -euo pipefail

stage=$(realpath -m "$1")
out=$(realpath -m "$2")
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
name=router-services

binaries=(
	/usr/sbin/kea-dhcp4 /usr/sbin/kea-dhcp6 /usr/sbin/kea-lfc
	/usr/sbin/radvd /usr/sbin/chronyd /usr/bin/chronyc /usr/sbin/avahi-daemon
	/usr/sbin/bird /usr/sbin/birdc
	/usr/bin/socat /usr/bin/busybox /usr/bin/rdisc6
)
for b in "${binaries[@]}"; do
	[ -x "$b" ] || { echo "build-image: $b is missing (install: kea-dhcp4-server kea-dhcp6-server radvd chrony avahi-daemon bird2 socat busybox ndisc6)" >&2; exit 1; }
done

root="$stage/rootfs"
rm -rf "$stage"
mkdir -p "$root"/{etc,tmp,run,var/lib,var/run,usr/bin}
chmod 1777 "$root/tmp"

for b in "${binaries[@]}"; do install -D -m 0755 "$b" "$root$b"; done
# The bird pod's start (holds the previous BIRD's routes through a restart) and the ip it moves them with.
[ -x /bin/ip ] || { echo "build-image: /bin/ip is missing (install: iproute2)" >&2; exit 1; }
install -D -m 0755 /bin/ip "$root/usr/sbin/ip"
install -D -m 0755 "$here/bird-start" "$root/usr/bin/bird-start"
# The bird pod's status container (what BIRD says of its OSPF neighbours, written on the node).
install -D -m 0755 "$here/router-ospf-status" "$root/usr/bin/router-ospf-status"
# The segment probe the services' rollout gate runs on the host network (components/network-services/probe.ts), on PATH.
mkdir -p "$stage/probe"
for probe in dhcp4-probe dhcp6-probe; do
	gcc -O2 -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -o "$stage/probe/$probe" "$here/$probe.c"
	install -D -m 0755 "$stage/probe/$probe" "$root/usr/bin/$probe"
done
# The probe scripts, the segment probe, bird-start and router-ospf-status need a shell and a few tools: busybox provides them.
for tool in sh cat grep kill printf mkdir cp mv rm test sed tr sleep awk cut timeout dirname md5sum; do ln -sf busybox "$root/usr/bin/$tool"; done
ln -sf usr/bin "$root/bin"
# Kea loads its hook directory at run time; it comes from the package.
kea_hooks=/usr/lib/x86_64-linux-gnu/kea
[ -d "$kea_hooks" ] && mkdir -p "$root$kea_hooks" && cp -a "$kea_hooks/." "$root$kea_hooks/"
# The users and groups the daemons look up by name: chronyd drops to _chrony (Debian's build default), avahi-daemon
# to avahi; BIRD runs as root (no -u) and looks up no user.
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' '_chrony:x:101:101:chrony:/var/lib/chrony:/bin/sh' \
	'avahi:x:102:102:avahi:/run/avahi-daemon:/bin/sh' > "$root/etc/passwd"
printf '%s\n' 'root:x:0:' '_chrony:x:101:' 'avahi:x:102:' > "$root/etc/group"

copy_libraries "$root"
commit_image "$root" "$name" "$out" /usr/sbin:/usr/bin
