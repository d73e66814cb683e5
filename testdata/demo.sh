#!/usr/bin/env bash
# demo.sh: the main job on the node sample. A real registry (Debian's docker-registry) on a free 127.0.0.1
# port gets the fat image; `slimoci build --push` slims it from there; podman pulls the slim image, runs it
# under slimoci's seccomp profile and curls it; sizes before and after are printed. Run by `make demo`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${SLIMOCI_TESTBED:-/var/cache/slimoci-testbed}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$cache/containers.conf}
sample=${SAMPLE:-node}
state=${STATE:-/tmp/slimoci-demo}
work=$(mktemp -d /tmp/slimoci-demo.XXXXXX)
. "$here/testdata/registry.sh"
start_registry
trap 'stop_registry; rm -rf "$work"' EXIT

fat=$registry/samples/$sample:latest
slim=$registry/samples/$sample.slim:latest
echo "== pushing the fat image to $fat"
skopeo copy --quiet --dest-tls-verify=false "oci:$cache/oci/$sample:latest" "docker://$fat"
echo "== slimoci info $fat"
"$here/bin/slimoci" info --no-measure "$fat" > "$work/info.txt"
sed -n 1,12p "$work/info.txt"
echo; echo "== slimoci build $fat --push"
rm -rf "$state"
"$here/bin/slimoci" build --state-path "$state" --push "$fat"
echo; echo "== podman run $slim (under $state/seccomp.json)"
podman pull --quiet --tls-verify=false "$slim" >/dev/null
podman run -d --name slimoci-demo -p 127.0.0.1:18089:8080 --security-opt "seccomp=$state/seccomp.json" "$slim" >/dev/null
for i in $(seq 1 50); do curl -sf http://127.0.0.1:18089/ >/dev/null && break; sleep 0.2; done
echo "GET / -> $(curl -sf http://127.0.0.1:18089/)"
podman rmi -f "$slim" >/dev/null 2>&1 || true
python3 - "$state/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"size: {r['fatBytes']/1e6:.1f} MB -> {r['slimBytes']/1e6:.1f} MB ({r['fatBytes']/r['slimBytes']:.1f}x smaller), {r['layer']['compressedBytes']/1e6:.1f} MB compressed")
PY
echo; echo "== slimoci info $slim: its packages and the SBOMs attached to it"
"$here/bin/slimoci" info --no-measure "$slim" > "$work/slim-info.txt"
sed -n '/^Referrers/,/^$/p' "$work/slim-info.txt"
grep '^Packages' "$work/slim-info.txt"
echo "artifacts (report, Dockerfile.fat, seccomp, AppArmor, kept, dropped, packages, SBOMs) in $state"
