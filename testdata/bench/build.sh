#!/usr/bin/env bash
# bench/build.sh: `slimoci build --push` of each test-bed sample from a real registry on 127.0.0.1: fat and
# slim sizes (uncompressed, as `docker images` shows), the ratio, and the build time by stage, from each
# build's report.json. docker-slim cannot run here (it needs a Docker engine, and there is no internet to
# fetch it); its figures for the same four samples (Debian bookworm base, Debian's nodejs+express,
# python3+flask, ruby+sinatra, Java 17 JRE), measured through podman's Docker API, are printed beside ours
# for reference. Not a test: nothing here fails on a figure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${SLIMOCI_TESTBED:-/var/cache/slimoci-testbed}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$cache/containers.conf}
slimoci=${SLIMOCI:-$here/bin/slimoci}
samples=${SAMPLES:-node python ruby java}
[ -x "$slimoci" ] || { echo "no slimoci binary at $slimoci: run make build" >&2; exit 1; }
. "$here/testdata/registry.sh"
start_registry
state=$(mktemp -d /tmp/slimoci-bench-build.XXXXXX)
trap 'stop_registry; rm -rf "$state"' EXIT

declare -A ds_fat=([node]=433 [python]=308 [ruby]=297 [java]=534)
declare -A ds_slim=([node]=98.3 [python]=28.1 [ruby]=17.1 [java]=175)
declare -A ds_time=([node]="17-27" [python]="17-27" [ruby]="17-27" [java]="17-27")
printf '%-7s %9s %9s %7s %8s | %-52s | %s\n' sample fat slim ratio total "pull / unpack / observe / closure / emit / verify / push (s)" "docker-slim: fat -> slim MB, s"
for s in $samples; do
	skopeo copy --quiet --dest-tls-verify=false "oci:$cache/oci/$s:latest" "docker://$registry/samples/$s:latest"
	sync  # the previous build removed a large tree: flush that first (ext4 is slow to create files meanwhile)
	t0=$(date +%s.%N)
	"$slimoci" build --state-path "$state/$s" --push "$registry/samples/$s:latest" > "$state/$s.out"
	t1=$(date +%s.%N)
	python3 - "$state/$s/report.json" "$s" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "${ds_fat[$s]}" "${ds_slim[$s]}" "${ds_time[$s]}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["timingsSeconds"]
stages = " / ".join(f"{t.get(k, 0):.1f}" for k in ["pull", "unpack", "observe", "closure", "emit", "verify", "push"])
print(f"{sys.argv[2]:<7} {r['fatBytes']/1e6:7.1f}MB {r['slimBytes']/1e6:7.1f}MB {r['fatBytes']/r['slimBytes']:6.1f}x {float(sys.argv[3]):7.1f}s | {stages:<52} | {sys.argv[4]} -> {sys.argv[5]}, {sys.argv[6]}")
PY
done
