# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared by .ci/run and .ci/fresh-build-check (sourced): the package list and the apt sources it needs.

# ci_packages SECTION: the packages of .ci/packages in SECTION ("bookworm" for those before any [section] line,
# else the section's name), one per line.
ci_packages() {
	awk -v want="$1" '
		/^\[.*\]$/ { section = substr($0, 2, length($0) - 2); next }
		/^#/ || NF == 0 { next }
		(section == "" ? "bookworm" : section) == want { print $1 }
	' "$(dirname "${BASH_SOURCE[0]}")/packages"
}

# ci_backports_source ROOT: adds bookworm-backports (same mirror, Debian's archive key) to ROOT's apt sources.
ci_backports_source() {
	cat > "$1/etc/apt/sources.list.d/bookworm-backports.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
}
