# slimoci: build, test, demo. `make test` and `make demo` set up everything they need on a fresh Debian
# machine as root (apt packages, Go modules, the test bed). The test bed cache lives outside the checkout.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
export SLIMOCI_TESTBED ?= /var/cache/slimoci-testbed
export CONTAINERS_CONF ?= $(SLIMOCI_TESTBED)/containers.conf
# libcontainer applies seccomp profiles through libseccomp only when built with this tag (as runc is).
export GOFLAGS := -tags=seccomp

GO ?= go
BIN := bin/slimoci
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build deps testbed test unit e2e fuzz lint demo man image image-shell bench-unpack bench-sensor bench-build clean

all: build

# build makes bin/slimoci and, beside it, the static sensor it runs as PID 1 inside its sandbox.
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/slimoci
	CGO_ENABLED=0 $(GO) build -o bin/slimoci-sensor ./cmd/slimoci-sensor

# image builds slimoci's own image, $(IMAGE), with podman (deploy/image/Containerfile): both binaries static,
# CA certificates, user 1000, nothing else. Multi-platform: $(IMAGE) is a manifest list of $(IMAGE)-amd64 and
# $(IMAGE)-arm64 (cross compiled, as cross is), exported as an OCI index to $(IMAGE_LAYOUT). Reproducible:
# the same checkout gives the same digests, the index's included.
IMAGE ?= localhost/slimoci:latest
IMAGE_LAYOUT ?= bin/slimoci-image
image:
	IMAGE=$(IMAGE) LAYOUT=$(IMAGE_LAYOUT) VERSION=$(VERSION) GO=$(GO) deploy/image/build.sh

# image-shell builds $(IMAGE_SHELL): $(IMAGE) plus Debian's static busybox as /bin/sh (docs/ci/shell.Containerfile),
# for what runs a script: GitLab CI jobs and the Kubernetes fleet. Dated by the last commit, as image is.
IMAGE_SHELL ?= localhost/slimoci:shell
image-shell: image
	@ctx=$$(mktemp -d) && trap 'rm -rf "$$ctx"' EXIT && install -m 0755 /bin/busybox "$$ctx/busybox" && \
	podman build --quiet --format oci --layers=false --no-cache --timestamp "$$(git log -1 --format=%ct)" \
		--build-arg BASE=$(IMAGE) -f docs/ci/shell.Containerfile -t $(IMAGE_SHELL) "$$ctx" >/dev/null && \
	podman image inspect --format '$(IMAGE_SHELL): id sha256:{{.Id}}, {{.Size}} bytes' $(IMAGE_SHELL)

# deps installs the Debian packages (root), builds syft (the SBOM tests' independent reader) into
# $(SLIMOCI_TESTBED)/bin once, and downloads the Go modules.
deps:
	testdata/testbed.sh deps
	$(GO) mod download

# testbed builds the base image and the sample apps (cached in $(SLIMOCI_TESTBED)).
testbed: deps
	testdata/testbed.sh build

# test runs every test, unit and end-to-end, on a real test bed, then the fuzz targets for a bounded time.
# Packages run one at a time (-p 1): the end-to-end tests check that no sandbox is left anywhere on the
# machine, which another package's running sandbox would fail. image-shell (and so image) is built first: the
# CI recipes' and Kubernetes pods' end-to-end tests run them.
test: testbed lint cross image-shell
	$(GO) test -count=1 -p 1 -timeout 45m ./...
	$(MAKE) fuzz FUZZTIME=60s

# cross builds and vets slimoci for linux/arm64, with cgo (libcontainer's nsenter) through Debian's cross
# compiler and libseccomp-dev:arm64 (`make deps` installs both), and runs under qemu-user (binfmt_misc runs the
# arm64 test binaries) the unit tests of the packages that build without cgo, the sensor's included. rootfs,
# rootfs/pkgdb and emit run there without openat2, which qemu-user 7.2 (bookworm's) answers ENOSYS: rootfs
# then resolves with pathrs-lite, as on kernels before 5.6. Left out of the emulated run, though built and
# vetted: runner, cmd/slimoci and the root package, which need cgo (libcontainer's nsenter).
CROSS_ENV := GOARCH=arm64 CGO_ENABLED=1 CC=aarch64-linux-gnu-gcc PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
CROSS_TESTS := ./oci/... ./reverse/... ./emit/... ./rootfs/... ./internal/... ./sensor/... ./cmd/slimoci-sensor/...
.PHONY: cross
cross: deps
	$(CROSS_ENV) $(GO) build ./...
	$(CROSS_ENV) $(GO) build -o /dev/null ./cmd/slimoci
	$(CROSS_ENV) $(GO) vet ./...
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build -o /dev/null ./cmd/slimoci-sensor
	CGO_ENABLED=0 GOARCH=arm64 $(GO) test -short -count=1 $(CROSS_TESTS)

FUZZTIME ?= 5m
# fuzz runs the unpack fuzz target (seeded with the escape cases) for FUZZTIME.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzUnpack -fuzztime $(FUZZTIME) -fuzzminimizetime 20x ./rootfs/

# unit runs the fast tests only: no test bed, no network.
unit:
	$(GO) test -short -count=1 ./...

e2e: testbed
	$(GO) test -count=1 -p 1 -timeout 45m -run 'E2E' ./...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi

# demo shows the main job on a sample image. For now: what `slimoci info` tells about the node sample, and
# what its app uses when `slimoci profile` runs and probes it.
demo: testbed build
	testdata/demo.sh

# man writes the man pages, made from the command line's definition, into man/: slimoci.1 and one page per
# command (slimoci-build.1, ...). `man -l man/slimoci.1` reads one.
man: build
	rm -rf man
	$(BIN) man man

# bench-unpack: slimoci unpack against umoci unpack and tar -xf on the Java sample (medians and ratios).
bench-unpack: testbed build
	testdata/bench/unpack.sh

# bench-sensor: start-to-first-HTTP-200 of each sample under slimoci's sensor against podman (medians, ratios).
bench-sensor: testbed build
	testdata/bench/sensor.sh

# bench-build: slimoci build --push of each sample from a real registry: sizes, ratios, time by stage.
bench-build: testbed build
	testdata/bench/build.sh

clean:
	rm -rf bin man
