package rootfs

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// ParseLDCache reads glibc's /etc/ld.so.cache (the "glibc-ld.so.cache1.1" format ldconfig writes, alone or
// after the old "ld.so-1.7.0" one) into soname -> paths, in the cache's order (the order ld.so tries them).
// It is parsed in Go from the image itself: the image need not have ldconfig or ldd, and nothing of it runs.
func ParseLDCache(b []byte) (map[string][]string, error) {
	const newMagic = "glibc-ld.so.cache1.1"
	start := 0
	if bytes.HasPrefix(b, []byte("ld.so-1.7.0")) {
		if len(b) < 16 {
			return nil, errors.New("ld.so.cache: truncated")
		}
		n := binary.LittleEndian.Uint32(b[12:16])
		start = 16 + int(n)*12
		start = (start + 7) &^ 7 // the new format follows, aligned
		if i := bytes.Index(b, []byte(newMagic)); i >= 0 && i < start+8 {
			start = i
		}
	}
	if start+48 > len(b) || !bytes.Equal(b[start:start+len(newMagic)], []byte(newMagic)) {
		return nil, errors.New("ld.so.cache: not in the glibc-ld.so.cache1.1 format")
	}
	h := b[start:]
	nlibs := int(binary.LittleEndian.Uint32(h[20:24]))
	if nlibs < 0 || nlibs > (len(h)-48)/24 {
		return nil, errors.New("ld.so.cache: entry count out of range")
	}
	str := func(off uint32) (string, bool) {
		if int(off) >= len(h) {
			return "", false
		}
		end := bytes.IndexByte(h[off:], 0)
		if end < 0 {
			return "", false
		}
		return string(h[off : int(off)+end]), true
	}
	out := map[string][]string{}
	for i := 0; i < nlibs; i++ {
		e := h[48+i*24 : 48+(i+1)*24]
		key, ok1 := str(binary.LittleEndian.Uint32(e[4:8]))
		val, ok2 := str(binary.LittleEndian.Uint32(e[8:12]))
		if ok1 && ok2 && key != "" && val != "" {
			out[key] = append(out[key], val)
		}
	}
	return out, nil
}
