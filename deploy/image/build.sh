#!/usr/bin/env bash
# build.sh builds slimoci's image (deploy/image/Containerfile) with podman from this checkout: `make image`.
#
#   IMAGE=localhost/slimoci:latest LAYOUT=bin/slimoci-image VERSION=... deploy/image/build.sh
#
# Multi-platform: one image for linux/amd64 and one for linux/arm64, each tagged IMAGE-ARCH, and IMAGE a
# manifest list of the two (podman run IMAGE on this host runs the amd64 one). The arm64 binaries are cross
# compiled (Debian's aarch64-linux-gnu-gcc, glibc's and libseccomp's arm64 static libraries: `make deps`), and
# the Containerfile only COPYs, so `podman build --platform linux/arm64` runs nothing under emulation. The list
# is also exported, as an OCI index, to the layout LAYOUT (replaced), which skopeo and `slimoci info` read.
#
# Reproducible: the same checkout (and the same Go, C library, libseccomp and ca-certificates packages)
# gives the same digest. The binaries are built with -trimpath and an empty build id, every file and the
# image are dated SOURCE_DATE_EPOCH (default: the last commit's date) by `podman build --timestamp`, and the
# build context is made here with fixed modes, so the umask and the checkout's path do not leak in.
set -euo pipefail
umask 022

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
image=${IMAGE:-localhost/slimoci:latest}
layout=${LAYOUT:-bin/slimoci-image}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
go=${GO:-go}
command -v "$go" >/dev/null || go=/usr/local/go/bin/go

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
chmod 0755 "$ctx"

# The CA bundle is the Mozilla set Debian's ca-certificates package installs, concatenated in a fixed order
# (as update-ca-certificates does), not the host's /etc/ssl/certs: a machine's local CAs stay out of the image.
# The same file serves both platforms.
mapfile -t certs < <(dpkg-query -L ca-certificates | grep '^/usr/share/ca-certificates/.*\.crt$' | LC_ALL=C sort)
[ ${#certs[@]} -gt 0 ] || { echo "build.sh: no certificates in the ca-certificates package (apt-get install ca-certificates)" >&2; exit 1; }

# slimoci is linked statically (cgo is required by libcontainer's nsenter; libseccomp.a comes from
# libseccomp-dev, and for arm64 from libseccomp-dev:arm64, with glibc's libc.a from libc6-dev-arm64-cross), so
# the image needs no C library: netgo and osusergo keep glibc's NSS out of it.
# The host's own architecture builds with gcc, the other with Debian's cross compiler and its architecture's
# pkg-config directory (for libseccomp).
declare -A triple=([amd64]=x86_64-linux-gnu [arm64]=aarch64-linux-gnu) cc pkgconfig
host=$("$go" env GOHOSTARCH)
for arch in amd64 arm64; do
	cc[$arch]=${triple[$arch]}-gcc pkgconfig[$arch]=/usr/lib/${triple[$arch]}/pkgconfig:/usr/share/pkgconfig
done
cc[$host]=gcc pkgconfig[$host]=${PKG_CONFIG_LIBDIR:-$(pkg-config --variable pc_path pkg-config)}
flags=(-trimpath -buildvcs=false)
build() { # build ARCH: the context $ctx/ARCH, then the image IMAGE-ARCH
	local arch=$1 dir=$ctx/$1
	local rootfs=$dir/rootfs
	install -d -m 0755 "$dir" "$rootfs" "$rootfs/usr" "$rootfs/usr/local" "$rootfs/usr/local/bin" "$rootfs/etc" \
		"$rootfs/etc/ssl" "$rootfs/etc/ssl/certs" "$rootfs/home" "$dir/home"
	install -d -m 1777 "$rootfs/tmp"
	GOOS=linux GOARCH=$arch CGO_ENABLED=1 CC=${cc[$arch]} PKG_CONFIG_LIBDIR=${pkgconfig[$arch]} \
		"$go" build "${flags[@]}" -tags 'netgo osusergo seccomp' \
		-ldflags "-s -w -buildid= -X main.version=$version -linkmode external -extldflags -static" \
		-o "$rootfs/usr/local/bin/slimoci" ./cmd/slimoci
	GOOS=linux GOARCH=$arch CGO_ENABLED=0 "$go" build "${flags[@]}" -ldflags '-s -w -buildid=' \
		-o "$rootfs/usr/local/bin/slimoci-sensor" ./cmd/slimoci-sensor
	cat "${certs[@]}" >"$rootfs/etc/ssl/certs/ca-certificates.crt"
	printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'slimoci:x:1000:1000:slimoci:/home/slimoci:/sbin/nologin' >"$rootfs/etc/passwd"
	printf '%s\n' 'root:x:0:' 'slimoci:x:1000:' >"$rootfs/etc/group"
	chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/ssl/certs/ca-certificates.crt"
	podman build --quiet --format oci --layers=false --no-cache --timestamp "$SOURCE_DATE_EPOCH" \
		--platform "linux/$arch" \
		--build-arg "VERSION=$version" \
		--build-arg "REVISION=$(git rev-parse HEAD)" \
		--build-arg "CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)" \
		-f deploy/image/Containerfile -t "$image-$arch" "$dir" >/dev/null
	podman image inspect --format '{{.Id}} {{.Digest}} {{.Size}}' "$image-$arch" | {
		read -r id digest size
		echo "$image-$arch: linux/$arch, id sha256:$id, digest $digest, $size bytes"
	}
}
build amd64
build arm64

# IMAGE becomes the list: what held the name before (a list, or a single image from an older build.sh) lets go
# of it; the images themselves stay until podman image prune, since a running container may use them.
if podman manifest exists "$image" 2>/dev/null; then
	podman manifest rm "$image" >/dev/null
elif podman image exists "$image"; then
	podman untag "$image" "$image"
fi
podman manifest create "$image" >/dev/null
for arch in amd64 arm64; do
	podman manifest add "$image" "containers-storage:$(podman image inspect --format '{{.Id}}' "$image-$arch")" >/dev/null
done
# The layout is written afresh, so it holds this index and nothing older; gzip's output is the same for the
# same layers, so the index digest is too.
rm -rf "$layout"
mkdir -p "$(dirname "$layout")"
podman manifest push --quiet --all --format oci "$image" "oci:$layout:latest"
index=$(jq -r '.manifests[0].digest' "$layout/index.json")
echo "$image: manifest list of linux/amd64 and linux/arm64; $layout: OCI index $index"
