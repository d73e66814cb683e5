#!/usr/bin/env bash
# bench/sensor.sh: start-to-first-HTTP-200 of each test-bed sample under slimoci's sensor (in its sandbox,
# every syscall traced, as `slimoci profile` runs it) against the same image under podman, medians of $RUNS
# runs and the ratio. Both poll every 100 ms. slimoci's figure is its report's firstAnswerNs: from the start of
# the sandbox (overlay, container, sensor) to the answer; the unpack before it is not counted, as podman's
# image is already in its storage. Not a test: nothing here fails on a figure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${SLIMOCI_TESTBED:-/var/cache/slimoci-testbed}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$cache/containers.conf}
runs=${RUNS:-5}
slimoci=${SLIMOCI:-$here/bin/slimoci}
samples=${SAMPLES:-node python ruby java}
work=$(mktemp -d /var/tmp/slimoci-bench-sensor.XXXXXX)
trap 'rm -rf "$work"; podman rm -f slimoci-bench >/dev/null 2>&1 || true' EXIT

[ -x "$slimoci" ] || { echo "no slimoci binary at $slimoci: run make build" >&2; exit 1; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s%N; }

printf '%-8s %12s %12s %8s\n' sample slimoci podman ratio
for s in $samples; do
	layout=$cache/oci/$s
	[ -f "$layout/index.json" ] || { echo "no test bed at $cache: run make testbed" >&2; exit 1; }
	: > "$work/$s.slimoci"; : > "$work/$s.podman"
	for ((r = 0; r < runs; r++)); do
		"$slimoci" profile --state-path "$work/state" "oci:$layout:latest" > /dev/null
		python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["firstAnswerNs"] / 1e9)' "$work/state/report.json" >> "$work/$s.slimoci"

		t0=$(now)
		podman run -d --rm --name slimoci-bench -p 127.0.0.1:18080:8080 "localhost/slimoci/$s:latest" > /dev/null
		until curl -sf -o /dev/null http://127.0.0.1:18080/; do sleep 0.1; done
		t1=$(now)
		echo "$(( (t1 - t0) / 1000000 ))" | awk '{print $1 / 1000}' >> "$work/$s.podman"
		podman rm -f -t 0 slimoci-bench > /dev/null
	done
	a=$(median < "$work/$s.slimoci"); b=$(median < "$work/$s.podman")
	printf '%-8s %10.2f s %10.2f s %7.2fx\n' "$s" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {print a / b}')"
done
echo "($runs runs each, medians; ratio = slimoci / podman, goal <= 1.2)"
