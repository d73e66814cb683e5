#!/usr/bin/env bash
# build.sh builds slimoci's image (deploy/image/Containerfile) with podman from this checkout: `make image`.
#
#   IMAGE=localhost/slimoci:latest VERSION=... deploy/image/build.sh
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
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
go=${GO:-go}
command -v "$go" >/dev/null || go=/usr/local/go/bin/go

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
chmod 0755 "$ctx"
rootfs=$ctx/rootfs
install -d -m 0755 "$rootfs" "$rootfs/usr" "$rootfs/usr/local" "$rootfs/usr/local/bin" "$rootfs/etc" \
	"$rootfs/etc/ssl" "$rootfs/etc/ssl/certs" "$rootfs/home" "$ctx/home"
install -d -m 1777 "$rootfs/tmp"

# slimoci is linked statically (cgo is required by libcontainer's nsenter; libseccomp.a comes from
# libseccomp-dev), so the image needs no C library: netgo and osusergo keep glibc's NSS out of it.
flags=(-trimpath -buildvcs=false)
"$go" build "${flags[@]}" -tags 'netgo osusergo seccomp' \
	-ldflags "-s -w -buildid= -X main.version=$version -linkmode external -extldflags -static" \
	-o "$rootfs/usr/local/bin/slimoci" ./cmd/slimoci
CGO_ENABLED=0 "$go" build "${flags[@]}" -ldflags '-s -w -buildid=' \
	-o "$rootfs/usr/local/bin/slimoci-sensor" ./cmd/slimoci-sensor

# The CA bundle is the Mozilla set Debian's ca-certificates package installs, concatenated in a fixed order
# (as update-ca-certificates does), not the host's /etc/ssl/certs: a machine's local CAs stay out of the image.
mapfile -t certs < <(dpkg-query -L ca-certificates | grep '^/usr/share/ca-certificates/.*\.crt$' | LC_ALL=C sort)
[ ${#certs[@]} -gt 0 ] || { echo "build.sh: no certificates in the ca-certificates package (apt-get install ca-certificates)" >&2; exit 1; }
cat "${certs[@]}" >"$rootfs/etc/ssl/certs/ca-certificates.crt"

printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'slimoci:x:1000:1000:slimoci:/home/slimoci:/sbin/nologin' >"$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'slimoci:x:1000:' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/ssl/certs/ca-certificates.crt"

podman build --quiet --format oci --layers=false --no-cache --timestamp "$SOURCE_DATE_EPOCH" \
	--build-arg "VERSION=$version" \
	--build-arg "REVISION=$(git rev-parse HEAD)" \
	--build-arg "CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)" \
	-f deploy/image/Containerfile -t "$image" "$ctx" >/dev/null
podman image inspect --format '{{.Id}} {{.Digest}} {{.Size}}' "$image" | {
	read -r id digest size
	echo "$image: id sha256:$id, digest $digest, $size bytes"
}
