package rootfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// The cache is the image's, and every entry names its strings by offset: a crafted one can point each of its
// entries at the same long string, or at as many suffixes of it. So the parse is linear in the cache's size,
// whatever the offsets: strings are never copied but sliced from one copy of the cache (an entry costs its
// slot, not its string's length), a string longer than a path (PATH_MAX) is not a path ld.so could open and
// its entry is skipped, and a soname keeps at most maxCachePaths paths (real caches have one per hwcaps
// subdirectory and ABI, under ten), so that the closure tries a bounded number of candidates per library.
const (
	maxCacheString = 4096
	maxCachePaths  = 16
)

// ParseLDCache reads glibc's /etc/ld.so.cache (the "glibc-ld.so.cache1.1" format ldconfig writes, alone or
// after the old "ld.so-1.7.0" one) into soname -> paths, in the cache's order (the order ld.so tries them).
// It is parsed in Go from the image itself: the image need not have ldconfig or ldd, and nothing of it runs.
// Errors wrap ErrLDCache.
func ParseLDCache(b []byte) (map[string][]string, error) {
	const newMagic = "glibc-ld.so.cache1.1"
	start := 0
	if bytes.HasPrefix(b, []byte("ld.so-1.7.0")) {
		if len(b) < 16 {
			return nil, fmt.Errorf("%w: truncated", ErrLDCache)
		}
		n := binary.LittleEndian.Uint32(b[12:16])
		start = 16 + int(n)*12
		start = (start + 7) &^ 7 // the new format follows, aligned
		if i := bytes.Index(b, []byte(newMagic)); i >= 0 && i < start+8 {
			start = i
		}
	}
	if start < 0 || start+48 > len(b) || !bytes.Equal(b[start:start+len(newMagic)], []byte(newMagic)) {
		return nil, fmt.Errorf("%w: not in the glibc-ld.so.cache1.1 format", ErrLDCache)
	}
	h := b[start:]
	nlibs := int(binary.LittleEndian.Uint32(h[20:24]))
	if nlibs < 0 || nlibs > (len(h)-48)/24 {
		return nil, fmt.Errorf("%w: %d entries do not fit in %d bytes", ErrLDCache, nlibs, len(h))
	}
	// One copy of the cache; every string is a slice of it.
	all := string(h)
	// Each offset is looked up once: entries naming the same string cost one scan of it.
	seen := map[uint32]string{}
	str := func(off uint32) string {
		if s, ok := seen[off]; ok {
			return s
		}
		s := ""
		if int(off) < len(all) {
			tail := all[off:min(len(all), int(off)+maxCacheString+1)]
			if end := strings.IndexByte(tail, 0); end >= 0 {
				s = tail[:end]
			}
		}
		seen[off] = s
		return s
	}
	out := map[string][]string{}
	for i := 0; i < nlibs; i++ {
		e := h[48+i*24 : 48+(i+1)*24]
		key := str(binary.LittleEndian.Uint32(e[4:8]))
		val := str(binary.LittleEndian.Uint32(e[8:12]))
		if key == "" || val == "" {
			continue
		}
		paths := out[key]
		if len(paths) < maxCachePaths && !slices.Contains(paths, val) {
			out[key] = append(paths, val)
		}
	}
	return out, nil
}
