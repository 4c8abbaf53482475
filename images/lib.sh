# SPDX-License-Identifier: Apache-2.0
#
# What every image build of images/ shares (sourced by their build-image.sh): copying the shared libraries a
# root needs, and committing a root as an OCI image with a reproducible digest (fixed modes, no timestamps).

# copy_libraries ROOT: every shared library the executables and modules under ROOT load, at the path the
# dynamic loader uses, then fixed directory modes.
copy_libraries() {
	local root=$1
	find "$root" -type f \( -perm -u+x -o -name '*.so*' \) -print0 | xargs -0 -n1 sh -c 'ldd "$0" 2>/dev/null || true' |
		awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | sort -u | while read -r lib; do
		[ -e "$root$lib" ] || install -D -m 0644 "$(realpath "$lib")" "$root$lib"
	done
	chmod 0755 "$root"/lib64/ld-linux-x86-64.so.2
	find "$root" -type d -exec chmod 0755 {} +
	chmod 1777 "$root/tmp"
}

# commit_image ROOT NAME OUT_DIR PATH: ROOT as the only layer of image NAME in OUT_DIR/oci, its digest in
# OUT_DIR/image-digest.
commit_image() {
	local root=$1 name=$2 out=$3 path=$4 ctr digest
	rm -rf "$out/oci"
	mkdir -p "$out"
	ctr=$(buildah from --quiet scratch)
	trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
	buildah copy --quiet "$ctr" "$root" / >/dev/null
	buildah config --label "org.opencontainers.image.title=$name" --env "PATH=$path" "$ctr"
	buildah commit --quiet --timestamp 0 --format oci --rm "$ctr" "oci:$out/oci:$name" >/dev/null
	trap - EXIT
	digest=$(jq -r '.manifests[0].digest' "$out/oci/index.json")
	echo "$digest" > "$out/image-digest"
	echo "$name image: $digest ($out/oci)"
}
