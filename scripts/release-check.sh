#!/usr/bin/env bash
# release-check: make release is reproducible and its binaries say what they are.
#
# Builds the release twice, from two clean clones of HEAD at different paths, and fails
# unless both SHA256SUMS are the same bytes; then checks that each binary is an ELF for
# its platform, static (no cgo), built with -trimpath from HEAD unmodified, and that
# `version` names that commit.
#
# RELEASE_CHECK_COLD=1 gives the second build an empty Go build cache (nothing reused
# from the first: slow, ~15 minutes on 2 cores) instead of the shared one.
set -euo pipefail

repo=$(git rev-parse --show-toplevel)
head=$(git -C "$repo" rev-parse HEAD)
work=$(mktemp -d "${TMPDIR:-/tmp}/farewell-release.XXXXXX")
trap 'rm -rf "$work"' EXIT

build() { # side
	local tree="$work/$1/src/farewell"
	git clone -q "$repo" "$tree"
	git -C "$tree" checkout -q --detach "$head"
	local env=()
	if [ "$1" = b ] && [ "${RELEASE_CHECK_COLD:-}" = 1 ]; then
		env=(GOCACHE="$work/b/gocache")
	fi
	local start=$SECONDS
	env "${env[@]}" make -s -C "$tree" release RELEASE_DIR="$work/$1/dist" >/dev/null
	echo "build $1 (in $tree): $((SECONDS - start))s"
}
build a
build b

if ! diff -u "$work/a/dist/SHA256SUMS" "$work/b/dist/SHA256SUMS"; then
	echo "release-check: two builds of ${head:0:12} differ" >&2
	exit 1
fi
echo "reproducible: the two builds' SHA256SUMS match"
(cd "$work/a/dist" && sha256sum --quiet -c SHA256SUMS)
cat "$work/a/dist/SHA256SUMS"

# e_machine of an ELF file: 3e00 x86-64, b700 AArch64.
machine() { od -An -tx1 -j18 -N2 "$1" | tr -d ' \n'; }
declare -A want=([amd64]=3e00 [arm64]=b700)
native=$(go env GOARCH)
for bin in "$work"/a/dist/farewell-linux-* "$work"/a/dist/farewell-node-linux-*; do
	arch=${bin##*-}
	if [ "$(machine "$bin")" != "${want[$arch]}" ]; then
		echo "release-check: $bin is not an ELF for $arch (e_machine $(machine "$bin"))" >&2
		exit 1
	fi
	settings=$(go version -m "$bin")
	for s in CGO_ENABLED=0 -trimpath=true vcs.revision=$head vcs.modified=false; do
		if ! grep -q -- "build[[:space:]]*$s\$" <<<"$settings"; then
			echo "release-check: $bin was not built with $s:" >&2
			echo "$settings" >&2
			exit 1
		fi
	done
	if [ "$arch" = "$native" ]; then
		out=$("$bin" version)
		echo "$(basename "$bin") version: ${out%%$'\n'*}"
		if ! grep -q "commit ${head:0:12}" <<<"$out" || grep -q "modified" <<<"$out"; then
			echo "release-check: $bin does not name commit ${head:0:12}, unmodified: $out" >&2
			exit 1
		fi
	fi
done
echo "release-check: ok"
