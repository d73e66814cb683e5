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

// LDCacheEntry is one library of an ld.so.cache.
type LDCacheEntry struct {
	// Path is the library's file.
	Path string
	// Flags are ldconfig's flags for it: its kind (0x3, FLAG_ELF_LIBC6) and the ABI it is for
	// (FLAG_X8664_LIB64, FLAG_AARCH64_LIB64, FLAG_ARM_LIBHF, ...). An ld.so takes only its own ABI's entries.
	Flags int32
	// HWCap is 0 for the entry any CPU loads; otherwise the entry is for CPUs with some capabilities (a
	// glibc-hwcaps subdirectory such as x86-64-v3, or before glibc 2.37 a legacy hwcap or platform one).
	HWCap uint64
}

// ParseLDCache reads glibc's /etc/ld.so.cache (the "glibc-ld.so.cache1.1" format ldconfig writes, alone or
// after the old "ld.so-1.7.0" one) into soname -> entries, in the cache's order (the order ld.so tries them).
// The cache is in its architecture's byte order (an s390x one is big-endian): the order its header records,
// or for a cache from before glibc 2.33, which records none, the one its header makes sense in. It is parsed
// in Go from the image itself: the image need not have ldconfig or ldd, and nothing of it runs. Errors wrap
// ErrLDCache.
func ParseLDCache(b []byte) (map[string][]LDCacheEntry, error) {
	const oldMagic, newMagic = "ld.so-1.7.0", "glibc-ld.so.cache1.1"
	start := 0
	if bytes.HasPrefix(b, []byte(oldMagic)) {
		// The new format follows the old one's entries (12 bytes each), aligned as the new header is (8
		// bytes, 4 on i386); the count is in the cache's byte order.
		if len(b) < 16 {
			return nil, fmt.Errorf("%w: truncated", ErrLDCache)
		}
		start = -1
	find:
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			for _, align := range []int64{8, 4} {
				at := (16 + int64(bo.Uint32(b[12:16]))*12 + align - 1) &^ (align - 1)
				if at+int64(len(newMagic)) <= int64(len(b)) && string(b[at:at+int64(len(newMagic))]) == newMagic {
					start = int(at)
					break find
				}
			}
		}
	}
	if start < 0 || start+48 > len(b) || !bytes.Equal(b[start:start+len(newMagic)], []byte(newMagic)) {
		return nil, fmt.Errorf("%w: not in the glibc-ld.so.cache1.1 format", ErrLDCache)
	}
	h := b[start:]
	// The header's flags byte: 2 little-endian, 3 big-endian, 1 invalid (ld.so ignores the cache), 0 unset.
	fits := func(bo binary.ByteOrder) bool { return int64(bo.Uint32(h[20:24])) <= int64(len(h)-48)/24 }
	var bo binary.ByteOrder
	switch h[28] & 3 {
	case 2:
		bo = binary.LittleEndian
	case 3:
		bo = binary.BigEndian
	case 1:
		return nil, fmt.Errorf("%w: ldconfig marked it invalid", ErrLDCache)
	default:
		bo = binary.LittleEndian
		if !fits(bo) && fits(binary.BigEndian) {
			bo = binary.BigEndian
		}
	}
	nlibs := int(bo.Uint32(h[20:24]))
	if !fits(bo) {
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
		if int64(off) < int64(len(all)) {
			tail := all[off:min(len(all), int(off)+maxCacheString+1)]
			if end := strings.IndexByte(tail, 0); end >= 0 {
				s = tail[:end]
			}
		}
		seen[off] = s
		return s
	}
	out := map[string][]LDCacheEntry{}
	for i := 0; i < nlibs; i++ {
		e := h[48+i*24 : 48+(i+1)*24]
		key := str(bo.Uint32(e[4:8]))
		ent := LDCacheEntry{Path: str(bo.Uint32(e[8:12])), Flags: int32(bo.Uint32(e[0:4])), HWCap: bo.Uint64(e[16:24])}
		if key == "" || ent.Path == "" {
			continue
		}
		entries := out[key]
		if len(entries) < maxCachePaths && !slices.Contains(entries, ent) {
			out[key] = append(entries, ent)
		}
	}
	return out, nil
}
