#!/usr/bin/env bash
# bench/unpack.sh: slimoci unpack against umoci unpack and plain `tar -xf` of the same layers already
# decompressed, on the test bed's Java sample (534 MB, 3 gzip layers). Medians of $RUNS runs and ratios.
#
# The target is $BENCH_DIR (default /var/tmp/slimoci-bench, on the disk); set BENCH_DIR=/dev/shm/x for tmpfs.
# As root, the page cache is dropped (sync; echo 1 > /proc/sys/vm/drop_caches) before every run, and the
# previous run's tree is deleted before that: extracting right after deleting a large tree is much slower on
# ext4 otherwise. Not a test: nothing here fails on a figure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${SLIMOCI_TESTBED:-/var/cache/slimoci-testbed}
layout=$cache/oci/${SAMPLE:-java}
runs=${RUNS:-5}
bench=${BENCH_DIR:-/var/tmp/slimoci-bench}
slimoci=${SLIMOCI:-$here/bin/slimoci}

[ -f "$layout/index.json" ] || { echo "no test bed at $cache: run make testbed" >&2; exit 1; }
[ -x "$slimoci" ] || { echo "no slimoci binary at $slimoci: run make build" >&2; exit 1; }
command -v umoci >/dev/null || { echo "umoci is not installed: run make deps" >&2; exit 1; }

rm -rf "$bench"; mkdir -p "$bench/layers"
# The layers, decompressed once, for tar's floor.
manifest=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]+"/index.json")); print(d["manifests"][0]["digest"].split(":")[1])' "$layout")
i=0
for l in $(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(" ".join(x["digest"].split(":")[1] for x in m["layers"]))' "$layout/blobs/sha256/$manifest"); do
	zcat -f "$layout/blobs/sha256/$l" > "$bench/layers/$i.tar"; i=$((i+1))
done

drop() {
	rm -rf "$bench/out"
	if [ "$(id -u)" -eq 0 ]; then sync; echo 1 > /proc/sys/vm/drop_caches; fi
}

# run NAME CMD...: times one run (wall seconds and peak RSS in kB into $bench/NAME.times).
run() {
	local name=$1; shift
	drop
	/usr/bin/time -f "%e %M" -o "$bench/t" "$@" >/dev/null 2>"$bench/err" || { cat "$bench/err" >&2; exit 1; }
	cat "$bench/t" >> "$bench/$name.times"
}

tar_layers() { mkdir -p "$bench/out"; for f in "$bench"/layers/*.tar; do tar -xf "$f" -C "$bench/out"; done; }
export -f tar_layers; export bench

for ((r = 0; r < runs; r++)); do
	run slimoci "$slimoci" unpack "oci:$layout:latest" "$bench/out"
	run umoci umoci unpack --image "$layout:latest" "$bench/out"
	run tar bash -c tar_layers
done
drop

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
s=$(cut -d' ' -f1 "$bench/slimoci.times" | median)
u=$(cut -d' ' -f1 "$bench/umoci.times" | median)
t=$(cut -d' ' -f1 "$bench/tar.times" | median)
mem=$(cut -d' ' -f2 "$bench/slimoci.times" | sort -n | tail -1)
cache_note="page cache dropped before every run"; [ "$(id -u)" -eq 0 ] || cache_note="page cache NOT dropped (not root)"
fs=$(df -T "$bench" | awk 'NR==2 {print $2}')
echo "unpack of $(basename "$layout") ($(du -sh "$layout" | cut -f1) compressed), $runs runs, target on $fs, $cache_note"
printf '  %-28s %6.2f s   peak RSS %d MB\n' "slimoci unpack" "$s" $((mem / 1024))
printf '  %-28s %6.2f s\n' "umoci unpack" "$u"
printf '  %-28s %6.2f s\n' "tar -xf (layers decompressed)" "$t"
awk -v s="$s" -v u="$u" -v t="$t" 'BEGIN {printf "  slimoci is %.2fx faster than umoci (goal >= 2.5x), %.2fx the time of tar -xf (goal <= 2x)\n", u/s, s/t}'
rm -rf "$bench"
