#!/usr/bin/env bash
# testbed.sh builds slimoci's real test bed from Debian packages: a bookworm base made with mmdebstrap from the
# host's own apt sources, four sample apps built by podman (node, python, ruby, java), more apps that are not
# benchmarked (web), a fixture image with tricky layers (layers) and two hostile images built on the python
# sample (hostile, hostile-content), each exported as an OCI layout, a docker-archive and an OCI archive; and for
# linux/arm64, under qemu-user: a base, the python sample (OCI layout python-arm64) and an index of both python
# builds (OCI layout python-multi). Idempotent: every step is skipped when its inputs are unchanged.
#
#   testdata/testbed.sh deps     install the Debian packages the test bed and the e2e tests need (root), and syft
#   testdata/testbed.sh build    deps + base + samples + exports (the default)
#   testdata/testbed.sh env      print the variables the e2e tests read
#
# The cache lives outside the checkout: $SLIMOCI_TESTBED, default /var/cache/slimoci-testbed.
# The mirror is never named here: mmdebstrap and the image builds read the host's apt configuration.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SLIMOCI_TESTBED:-/var/cache/slimoci-testbed}
samples=(node python ruby java)
# apps are sample apps for end-to-end tests that the benchmarks leave out (web: busybox httpd through a
# symlinked document root, with a HEALTHCHECK; probes: flask pages for mint's probe options; lines: a TCP
# line protocol beside an HTTP page, for --host-exec; probes and lines are built FROM the python sample, so
# after it).
apps=(web probes lines)
# fixtures are images for tests that are not apps.
fixtures=(layers)
# hostiles attack the sandbox (hostile: attack.py MODE) or whoever reads the image (hostile-content); both are
# built FROM localhost/slimoci/python, so they come after it.
hostiles=(hostile hostile-content)
# zsh, fish, man-db and groff-base: the completion and man page tests (cmd/slimoci/completion_test.go).
# ca-certificates: the CA bundle of slimoci's own image (make image, deploy/image/build.sh). apache2-utils:
# htpasswd, for a test registry that wants a password (testbed.StartAuthRegistry).
# busybox-static: the shell of slimoci's image with a shell (make image-shell: GitLab CI, the Kubernetes fleet).
# qemu-user-static and binfmt-support: foreign platforms (the arm64 base and samples are built, and arm64
# test binaries run, under qemu-user through binfmt_misc). gcc-aarch64-linux-gnu and libseccomp-dev:arm64:
# `make cross` builds slimoci for linux/arm64 with cgo (libcontainer's nsenter, libseccomp).
packages=(podman skopeo ca-certificates apache2-utils busybox-static umoci runc crun docker-registry mmdebstrap buildah uidmap slirp4netns fuse-overlayfs zstd pigz apparmor libseccomp-dev jq zsh fish man-db groff-base
	qemu-user-static binfmt-support gcc-aarch64-linux-gnu libc6-dev-arm64-cross libseccomp-dev:arm64)
# foreign_archs are the dpkg architectures the test bed builds foreign images for (a base-ARCH and
# foreign_samples, under qemu-user) and packages=(...) names packages of (NAME:ARCH).
foreign_archs=(arm64)
# bare_packages are installed without their recommends (linux-source's are a kernel build's toolchain):
# linux-source-6.12 is the kernel source the sensor's syscall tables are generated from, which
# sensor/pathcalls_test.go checks them against.
bare_packages=(linux-source-6.12)

# syft_version is the syft the SBOM tests read images with, as a reader nobody here wrote
# (internal/testbed/syft.go's SyftVersion). deps builds it into $cache/bin with `go install` (about 4 minutes
# with an empty module cache, on 2 cores) and keeps it there: a binary of this version is not rebuilt.
syft_version=v1.57.1

# base_recipe changes whenever the way the base is made changes; with the apt sources, it keys the base's cache.
base_recipe="mmdebstrap minbase bookworm, no apt sources kept, v1"

# host_arch is the machine's dpkg architecture: its base and samples are the test bed's native images.
host_arch=$(dpkg --print-architecture)
# foreign_samples are the samples also built for each of foreign_archs (NAME-ARCH, on base-ARCH, under qemu-user),
# and combined with the native build into an index (NAME-multi).
foreign_samples=(python)

log() { printf 'testbed: %s\n' "$*" >&2; }

# not_installed prints those of the named packages that are not installed, one a line.
not_installed() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}

# install_syft installs syft_version into $cache/bin, unless a binary of that version is there. Its module also holds
# the SPDX 2.3 JSON schema emit/sbom's tests validate against, so the module is downloaded either way (a
# no-op when the module cache has it).
install_syft() {
	local go=go bin="$cache/bin/syft"
	command -v go >/dev/null || go=/usr/local/go/bin/go
	# GOFLAGS is cleared: the Makefile's -tags=seccomp is slimoci's build, not syft's. Run outside the
	# checkout, so that slimoci's go.mod and go.sum are not involved.
	(cd / && GOFLAGS= "$go" mod download "github.com/anchore/syft@$syft_version")
	if [ -x "$bin" ] && [ "$("$go" version -m "$bin" | awk '$1 == "mod" && $2 == "github.com/anchore/syft" { print $3 }')" = "$syft_version" ]; then
		return 0
	fi
	log "building syft $syft_version into $cache/bin"
	mkdir -p "$cache/bin"
	(cd / && GOFLAGS= GOBIN="$cache/bin" "$go" install "github.com/anchore/syft/cmd/syft@$syft_version")
}

deps() {
	local missing bare a
	mapfile -t missing < <(not_installed "${packages[@]}")
	mapfile -t bare < <(not_installed "${bare_packages[@]}")
	if [ ${#missing[@]} -ne 0 ] || [ ${#bare[@]} -ne 0 ]; then
		[ "$(id -u)" -eq 0 ] || { log "missing packages ${missing[*]} ${bare[*]}: run as root"; exit 1; }
		for a in "${foreign_archs[@]}"; do
			dpkg --print-foreign-architectures | grep -qx "$a" || dpkg --add-architecture "$a"
		done
		log "installing ${missing[*]} ${bare[*]}"
		# Another apt on the machine (an engineer's, unattended-upgrades) holds the lock for a while: wait.
		local apt=(apt-get -o DPkg::Lock::Timeout=300)
		"${apt[@]}" update -qq
		[ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "${missing[@]}" >/dev/null
		[ ${#bare[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "${bare[@]}" >/dev/null
	fi
	binfmt
}

# binfmt makes sure the kernel runs arm64 binaries through qemu-user: binfmt_misc mounted, qemu-aarch64's
# handler enabled, with the fix-binary (F) flag, which opens the emulator when the handler is registered, so
# that it runs inside any container or chroot without a file of the host's there. binfmt-support's
# postinst does it on a machine that runs its service; a fresh machine without systemd may have neither
# the mount nor the handler.
binfmt() {
	local dir=/proc/sys/fs/binfmt_misc handler=/proc/sys/fs/binfmt_misc/qemu-aarch64
	if ! grep -q '^enabled' "$handler" 2>/dev/null || ! grep -q '^flags: .*F' "$handler"; then
		[ "$(id -u)" -eq 0 ] || { log "the qemu-aarch64 binfmt_misc handler is not enabled: run as root"; exit 1; }
		[ -f "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir"
		update-binfmts --enable qemu-aarch64
	fi
	grep -q '^flags: .*F' "$handler" || { log "$handler has no F (fix-binary) flag: $(grep '^flags' "$handler")"; exit 1; }
}

# podman needs limits at or under this shell's hard limits, cgroupfs and runc on this kind of machine. The
# settings live in the cache, never in the system's /etc.
podman_conf() {
	mkdir -p "$cache"
	local nofile nproc
	nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
	nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
	cat >"$cache/containers.conf.tmp" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
	mv "$cache/containers.conf.tmp" "$cache/containers.conf"
	export CONTAINERS_CONF="$cache/containers.conf"
}

apt_sources() {
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		echo /etc/apt/sources.list.d/debian.sources
	elif [ -s /etc/apt/sources.list ]; then
		echo /etc/apt/sources.list
	else
		log "no apt sources found in /etc/apt"; exit 1
	fi
}

# stamp NAME INPUT...: true when NAME was built from exactly these inputs.
fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

# base [ARCH]: the bookworm base image for the dpkg architecture ARCH (default: the host's), built with
# mmdebstrap, localhost/slimoci/base for the host's architecture and localhost/slimoci/base-ARCH for a foreign
# one (mmdebstrap runs its maintainer scripts under qemu-user through binfmt_misc: see binfmt).
base() {
	local arch=${1:-$host_arch} name=base src stamp want
	src=$(apt_sources)
	# The host's stamp hashes no architecture, so that a base built before foreign ones existed stays current.
	want=$(printf '%s\n' "$(fingerprint "$src")" "$base_recipe" | sha256sum | cut -d' ' -f1)
	if [ "$arch" != "$host_arch" ]; then
		name=base-$arch
		want=$(printf '%s\n' "$want" "$arch" | sha256sum | cut -d' ' -f1)
	fi
	stamp="$cache/stamps/$name"
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && podman image exists "localhost/slimoci/$name:latest"; then
		return 0
	fi
	log "building the bookworm base for $arch with mmdebstrap"
	mkdir -p "$cache/stamps"
	rm -f "$stamp"
	# The rootfs must not keep the mirror's address: its apt sources are removed, and image builds mount the
	# host's sources instead.
	mmdebstrap --quiet --variant=minbase --mode=root --format=tar --architectures="$arch" \
		--aptopt='Acquire::Check-Valid-Until "false"' \
		--customize-hook='rm -f "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/*' \
		bookworm "$cache/$name.tar.tmp" "$src"
	mv "$cache/$name.tar.tmp" "$cache/$name.tar"
	# The image's platform is the tar's: podman import would otherwise label it with the host's.
	local plat os p_arch variant flags
	plat=$(platform "$arch")
	IFS=/ read -r os p_arch variant <<<"$plat"
	flags=(--os "$os" --arch "$p_arch")
	[ -z "$variant" ] || flags+=(--variant "$variant")
	podman import --quiet "${flags[@]}" --change 'CMD ["/bin/bash"]' "$cache/$name.tar" "localhost/slimoci/$name:latest" >/dev/null
	rm -f "$cache/$name.tar"
	echo "$want" >"$stamp"
}

# platform ARCH: the OCI platform of images built for dpkg architecture ARCH (os/architecture[/variant]).
platform() {
	case "$1" in
	amd64) echo linux/amd64 ;;
	arm64) echo linux/arm64/v8 ;;
	*) log "no OCI platform known for dpkg architecture $1"; exit 1 ;;
	esac
}

# parent NAME: the test-bed image NAME's Containerfile is built FROM (base, or another sample).
parent() {
	sed -n 's|^FROM localhost/slimoci/\([a-z0-9-]*\):latest.*|\1|p' "$here/samples/$1/Containerfile" | head -n1
}

sample() {
	local s=$1 src stamp want from stamps flags=()
	src=$(apt_sources)
	stamp="$cache/stamps/$s"
	from=$(parent "$s")
	# The base's stamp, and the parent sample's when there is one: a rebuilt parent rebuilds its children.
	stamps=("$cache/stamps/base")
	if [ -n "$from" ] && [ "$from" != base ]; then
		[ -f "$cache/stamps/$from" ] || { log "sample $s is built from $from, which is not built"; exit 1; }
		stamps+=("$cache/stamps/$from")
	fi
	want=$(printf '%s\n' "$(cat "${stamps[@]}")" "$(find "$here/samples/$s" -type f | sort | xargs cat | sha256sum)" | sha256sum | cut -d' ' -f1)
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$cache/oci/$s/index.json" ]; then
		return 0
	fi
	# A parent sample whose stamp is current may be gone from podman's storage: its export is the same image.
	if [ -n "$from" ] && [ "$from" != base ] && ! podman image exists "localhost/slimoci/$from:latest"; then
		skopeo copy --quiet "oci:$cache/oci/$from:latest" "containers-storage:localhost/slimoci/$from:latest"
	fi
	# hostile-content's build makes a device node (podman's default capabilities may lack CAP_MKNOD).
	if [ "$s" = hostile-content ]; then flags+=(--cap-add MKNOD); fi
	# HEALTHCHECK exists only in Docker's image format: `podman build --format oci` drops it, and so does a
	# plain skopeo copy to an OCI layout (it converts the config). Such a sample is built as Docker and its
	# layout keeps a Docker schema 2 manifest and config (skopeo --format v2s2); the docker-archive keeps it
	# too, the OCI archive does not. skopeo 1.9 cannot read a Docker manifest back out of an OCI layout ("no
	# descriptor found"), so such a sample's archives are copied from podman's storage.
	local format=oci copyflags=() from_src="oci:$cache/oci/$s:latest"
	if grep -q '^HEALTHCHECK' "$here/samples/$s/Containerfile"; then
		format=docker copyflags=(--format v2s2) from_src="containers-storage:localhost/slimoci/$s:latest"
	fi
	log "building sample $s"
	rm -f "$stamp"
	podman build --quiet --layers --format "$format" --network host "${flags[@]}" \
		-v "$src:/etc/apt/sources.list.d/host.${src##*.}:ro" \
		-t "localhost/slimoci/$s:latest" "$here/samples/$s" >/dev/null
	log "exporting sample $s"
	mkdir -p "$cache/oci" "$cache/archives"
	rm -rf "$cache/oci/$s" "$cache/archives/$s.docker.tar" "$cache/archives/$s.oci.tar"
	skopeo copy --quiet "${copyflags[@]}" "containers-storage:localhost/slimoci/$s:latest" "oci:$cache/oci/$s:latest"
	skopeo copy --quiet "$from_src" "docker-archive:$cache/archives/$s.docker.tar:localhost/slimoci/$s:latest"
	skopeo copy --quiet "$from_src" "oci-archive:$cache/archives/$s.oci.tar:latest"
	echo "$want" >"$stamp"
}

# foreign_sample NAME ARCH: the sample NAME built for ARCH on base-ARCH (its Containerfile's FROM base is
# replaced by --from), its RUN steps under qemu-user, as localhost/slimoci/NAME-ARCH, exported as the OCI
# layout NAME-ARCH. Only samples built FROM the base.
foreign_sample() {
	local s=$1 arch=$2 src stamp want plat
	local name=$s-$arch
	[ "$(parent "$s")" = base ] || { log "sample $s is not built FROM the base: no $arch build"; exit 1; }
	src=$(apt_sources)
	plat=$(platform "$arch")
	stamp="$cache/stamps/$name"
	want=$(printf '%s\n' "$(cat "$cache/stamps/base-$arch")" "$plat" "$(find "$here/samples/$s" -type f | sort | xargs cat | sha256sum)" | sha256sum | cut -d' ' -f1)
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$cache/oci/$name/index.json" ]; then
		return 0
	fi
	log "building sample $s for $plat"
	rm -f "$stamp"
	podman build --quiet --layers --format oci --network host --platform "$plat" \
		--from "localhost/slimoci/base-$arch:latest" \
		-v "$src:/etc/apt/sources.list.d/host.${src##*.}:ro" \
		-t "localhost/slimoci/$name:latest" "$here/samples/$s" >/dev/null
	log "exporting sample $name"
	mkdir -p "$cache/oci"
	rm -rf "$cache/oci/$name"
	skopeo copy --quiet "containers-storage:localhost/slimoci/$name:latest" "oci:$cache/oci/$name:latest"
	echo "$want" >"$stamp"
}

# multi NAME: the OCI layout NAME-multi, an image index (tag latest) of the layouts NAME (the host's platform)
# and NAME-ARCH for each of foreign_archs, each manifest exactly the one in its layout, with its platform
# (podman reads it from the image's config).
multi() {
	local s=$1 stamp want a list="localhost/slimoci/$1-multi:latest" parts=("$1")
	for a in "${foreign_archs[@]}"; do parts+=("$1-$a"); done
	stamp="$cache/stamps/$s-multi"
	want=$(for p in "${parts[@]}"; do cat "$cache/stamps/$p"; done | sha256sum | cut -d' ' -f1)
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$cache/oci/$s-multi/index.json" ]; then
		return 0
	fi
	log "exporting the index $s-multi (${parts[*]})"
	rm -f "$stamp"
	! podman manifest exists "$list" || podman manifest rm "$list" >/dev/null
	podman manifest create "$list" >/dev/null
	for p in "${parts[@]}"; do podman manifest add "$list" "oci:$cache/oci/$p:latest" >/dev/null; done
	rm -rf "$cache/oci/$s-multi"
	# --rm: the list in podman's storage is only the way to the layout.
	podman manifest push --quiet --all --rm "$list" "oci:$cache/oci/$s-multi:latest"
	echo "$want" >"$stamp"
}

envvars() {
	echo "SLIMOCI_TESTBED=$cache"
	echo "CONTAINERS_CONF=$cache/containers.conf"
}

cmd=${1:-build}
case "$cmd" in
deps) deps; install_syft ;;
build)
	deps
	install_syft
	podman_conf
	base
	for s in "${samples[@]}" "${apps[@]}" "${fixtures[@]}" "${hostiles[@]}"; do sample "$s"; done
	for a in "${foreign_archs[@]}"; do
		base "$a"
		for s in "${foreign_samples[@]}"; do foreign_sample "$s" "$a"; done
	done
	for s in "${foreign_samples[@]}"; do multi "$s"; done
	log "ready in $cache"
	;;
env) envvars ;;
*) log "unknown command $cmd (deps, build, env)"; exit 2 ;;
esac
