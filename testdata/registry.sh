# registry.sh, sourced by demo.sh and bench/build.sh: start_registry starts Debian's docker-registry on a
# free 127.0.0.1 port with its own configuration (never the packaged one, which listens everywhere), sets
# $registry to its address, and stops it and removes its storage on exit.
start_registry() {
	regdir=$(mktemp -d /tmp/slimoci-registry.XXXXXX)
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat > "$regdir/config.yml" <<CFG
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $regdir/data}}
http: {addr: 127.0.0.1:$port}
CFG
	docker-registry serve "$regdir/config.yml" > "$regdir/registry.log" 2>&1 &
	regpid=$!
	trap 'stop_registry' EXIT
	registry=127.0.0.1:$port
	until curl -sf "http://$registry/v2/" >/dev/null; do sleep 0.2; done
}

stop_registry() {
	podman rm -f -t 0 slimoci-demo >/dev/null 2>&1 || true
	kill "$regpid" 2>/dev/null || true
	wait "$regpid" 2>/dev/null || true
	rm -rf "$regdir"
}
