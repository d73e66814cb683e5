"""Makes the hostile-content image's hostile files (run once in its build, as root, then removed). Each is a
trap for a tool that reads the image's tree on the host; none stops the app from running. Exits non-zero if
any cannot be made, so that a build never silently lacks one."""
import os
import stat
import struct
import sys

LIB = "/usr/lib/x86_64-linux-gnu"


def replace(path, make):
    if os.path.lexists(path):
        os.unlink(path)
    make(path)


# 1. /etc/nsswitch.conf is a fifo: opening it for reading blocks until a writer comes, forever.
replace("/etc/nsswitch.conf", lambda p: os.mkfifo(p, 0o644))

# 2. A character device with /dev/zero's numbers, named like a library: reading it never ends.
replace(LIB + "/libfake.so.1", lambda p: os.mknod(p, 0o644 | stat.S_IFCHR, os.makedev(1, 5)))

# 3. A library symlink to the host's /dev/zero, if followed outside the image's root.
replace(LIB + "/libz-link.so", lambda p: os.symlink("/dev/zero", p))

# 4. /etc/passwd keeps root's line (first, valid, so the app runs as root) and gets 20 MiB of comment lines,
# each just under 64 KiB: one 20 MiB line would stop podman and runc themselves (their parser's line limit is
# 64 KiB: "unable to find user root: bufio.Scanner: token too long"), and the image must run under podman.
line = "#" + "x" * (60 << 10) + "\n"
with open("/etc/passwd", "a") as f:
    for _ in range((20 << 20) // len(line) + 1):
        f.write(line)

# 5. /etc/ld.so.cache in the glibc-ld.so.cache1.1 format (rootfs/ldcache.go; glibc's struct cache_file_new),
# well-formed but huge once parsed by a parser that copies what the offsets name: 100,000 entries over one
# 64 KiB string. The first half all point (key and value) at the whole string (longer than PATH_MAX, not a
# path); the second half at its suffixes of length 1 to 50,000 (distinct strings, the 4096 shortest of them
# path-sized). A parser that copies each entry's key and value copies 9 GB; the file is 2.4 MB.
# Header (48 bytes): magic "glibc-ld.so.cache1.1", nlibs u32, len_strings u32, flags u8 (2: little-endian),
# 3 bytes of padding, extension_offset u32 (0: none), 3 unused u32. Then nlibs entries of 24 bytes: flags
# i32 (0x0303: ELF libc6, x86-64), key u32, value u32 (offsets from the header's start), osversion u32,
# hwcap u64. glibc accepts it (the entry count fits the file), finds no real soname among the keys (none is
# one: they are all runs of x ending in ".so.1") and falls back to its default directories, which hold every
# library the image needs.
NLIBS = 100_000
strings_at = 48 + NLIBS * 24
s = (LIB + "/lib" + "x" * 65536)[: 65535 - len(".so.1")] + ".so.1"
s = s.encode() + b"\0"
assert len(s) == 65536
header = b"glibc-ld.so.cache1.1" + struct.pack("<IIB3xI12x", NLIBS, len(s), 2, 0)
assert len(header) == 48
entries = []
for i in range(NLIBS):
    half = NLIBS // 2
    off = strings_at if i < half else strings_at + len(s) - 1 - (1 + i - half)
    entries.append(struct.pack("<iIIIQ", 0x0303, off, off, 0, 0))
with open("/etc/ld.so.cache.tmp", "wb") as f:
    f.write(header)
    f.write(b"".join(entries))
    f.write(s)
os.rename("/etc/ld.so.cache.tmp", "/etc/ld.so.cache")
print("hostile-content: made /etc/nsswitch.conf (fifo), %s/libfake.so.1 (char 1:5), %s/libz-link.so -> "
      "/dev/zero, 20 MiB of 60 KiB lines in /etc/passwd, /etc/ld.so.cache (%d entries)" % (LIB, LIB, NLIBS), file=sys.stderr)
