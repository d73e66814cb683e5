package rootfs

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/slimoci/slimoci/internal/testbed"
)

// ldCache builds a glibc-ld.so.cache1.1 cache: a string table strs, then entries naming offsets into it
// (relative to the header, as ldconfig writes them).
func ldCache(strs []byte, entries [][2]uint32) []byte {
	var b bytes.Buffer
	b.WriteString("glibc-ld.so.cache1.1")
	binary.Write(&b, binary.LittleEndian, uint32(len(entries)))
	binary.Write(&b, binary.LittleEndian, uint32(len(strs)))
	b.Write(make([]byte, 48-b.Len()))
	for _, e := range entries {
		binary.Write(&b, binary.LittleEndian, [6]uint32{1, e[0], e[1], 0, 0, 0})
	}
	b.Write(strs)
	return b.Bytes()
}

// cachePaths are the paths of entries.
func cachePaths(entries []LDCacheEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Path)
	}
	return out
}

// A crafted cache points every entry at one long string, or at as many suffixes of it: parsing it costs a
// small multiple of its size (copying each entry's strings cost entries x length: 160 MB here), and a soname
// keeps a bounded number of paths.
func TestParseLDCacheBounded(t *testing.T) {
	const n = 20000
	long := "/" + strings.Repeat("x", 3998) // a path ld.so could open, almost PATH_MAX
	strs := []byte("libc.so.6\x00" + long + "\x00")
	strOff := uint32(48 + n*24) // the table follows the entries
	keyOff, valOff := strOff, strOff+10
	for _, tc := range []struct {
		name     string
		entry    func(i int) [2]uint32
		keys     int // distinct sonames parsed
		maxPaths int // paths of a soname at most
	}{
		{"every entry on the same strings", func(i int) [2]uint32 { return [2]uint32{keyOff, valOff} }, 1, 1},
		{"every entry on a suffix of one path", func(i int) [2]uint32 { return [2]uint32{keyOff, valOff + uint32(i%3990)} }, 1, maxCachePaths},
		{"every soname a suffix of one path", func(i int) [2]uint32 { return [2]uint32{valOff + uint32(i%3990), valOff} }, 3990, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries := make([][2]uint32, n)
			for i := range entries {
				entries[i] = tc.entry(i)
			}
			cache := ldCache(strs, entries)
			var m map[string][]LDCacheEntry
			var err error
			got := testbed.Allocated(func() { m, err = ParseLDCache(cache) })
			if err != nil {
				t.Fatal(err)
			}
			if limit := uint64(16*len(cache) + 1<<20); got > limit {
				t.Errorf("parsing a %d KiB cache allocated %d KiB, more than %d KiB", len(cache)>>10, got>>10, limit>>10)
			}
			if len(m) != tc.keys {
				t.Errorf("%d sonames, want %d", len(m), tc.keys)
			}
			for k, v := range m {
				if len(v) > tc.maxPaths {
					t.Fatalf("%.20q has %d paths, want at most %d", k, len(v), tc.maxPaths)
				}
			}
		})
	}
	t.Run("a string longer than a path", func(t *testing.T) {
		strs := []byte("libc.so.6\x00/lib/libc.so.6\x00/" + strings.Repeat("y", maxCacheString) + "\x00")
		off := uint32(48 + 2*24)
		m, err := ParseLDCache(ldCache(strs, [][2]uint32{{off, off + 10 + 15}, {off, off + 10}}))
		if err != nil || !slices.Equal(cachePaths(m["libc.so.6"]), []string{"/lib/libc.so.6"}) {
			t.Fatalf("%.60q %v", cachePaths(m["libc.so.6"]), err)
		}
	})
}

// The parse agrees with the host's own ldconfig -p on the host's cache.
func TestParseLDCacheHost(t *testing.T) {
	b, err := os.ReadFile("/etc/ld.so.cache")
	if err != nil {
		t.Skip("the host has no /etc/ld.so.cache")
	}
	ldconfig, err := exec.LookPath("ldconfig")
	if err != nil {
		t.Skip("the host has no ldconfig")
	}
	out, err := exec.Command(ldconfig, "-p").Output()
	if err != nil {
		t.Skipf("ldconfig -p: %v", err)
	}
	m, err := ParseLDCache(b)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^\s+(\S+) \(.*\) => (\S+)$`)
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if g := line.FindStringSubmatch(l); g != nil {
			n++
			if !slices.Contains(cachePaths(m[g[1]]), g[2]) {
				t.Errorf("ldconfig -p lists %s => %s; parsed %v", g[1], g[2], m[g[1]])
			}
		}
	}
	if n == 0 {
		t.Fatalf("no entries in ldconfig -p:\n%s", out)
	}
}
