// Package rootfs unpacks an untrusted image into a directory, exactly as a runtime would see it, and builds a
// precise index of the tree on the way; later it computes what a slim image must keep.
package rootfs

import (
	"encoding/json"
	"path"
	"sort"
	"strings"
	"time"
)

// Type is the kind of an index entry.
type Type string

// The entry types a layer can hold. Hardlinks are not a type: a hardlinked entry has the type of its inode
// and a HardlinkGroup.
const (
	TypeFile    Type = "file"
	TypeDir     Type = "dir"
	TypeSymlink Type = "symlink"
	TypeFifo    Type = "fifo"
	TypeChar    Type = "char"
	TypeBlock   Type = "block"
)

// Entry is one path of the unpacked tree, as the image says it is. It is the truth downstream: when slimoci
// runs rootless, the files on disk cannot carry the image's owners, the entry does.
type Entry struct {
	// Path is absolute, cleaned: "/usr/bin/python3". The root is "/".
	Path string `json:"path"`
	Type Type   `json:"type"`
	Size int64  `json:"size,omitempty"`
	// Mode is the permission bits with setuid, setgid and sticky (07777).
	Mode int64 `json:"mode"`
	UID  int   `json:"uid"`
	GID  int   `json:"gid"`
	// Linkname is a symlink's target, as written.
	Linkname string `json:"linkname,omitempty"`
	// HardlinkGroup is the first path of the inode this entry shares with others; empty when not hardlinked.
	HardlinkGroup string            `json:"hardlinkGroup,omitempty"`
	Devmajor      int64             `json:"devmajor,omitempty"`
	Devminor      int64             `json:"devminor,omitempty"`
	Xattrs        map[string]string `json:"xattrs,omitempty"`
	ModTime       time.Time         `json:"mtime"`
	// Layer is the index of the layer that last wrote the entry; -1 for a directory made implicitly for a
	// child whose parent no layer listed.
	Layer int `json:"layer"`
	// NotOnDisk says why the entry is in the index but not in the tree (a device node an unprivileged
	// unpack cannot create).
	NotOnDisk string `json:"notOnDisk,omitempty"`
}

// Removal records an entry a later layer deleted (a whiteout or an opaque directory) or replaced.
type Removal struct {
	Entry Entry `json:"entry"`
	// By is the layer that removed it; How is "whiteout", "opaque" or "replaced".
	By  int    `json:"by"`
	How string `json:"how"`
}

// Index is the unpacked tree's file index: a lookup by path and a walk in sorted order are cheap.
type Index struct {
	entries  map[string]*Entry
	children map[string]map[string]struct{}
	sorted   []string
	removed  []Removal
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{entries: map[string]*Entry{}, children: map[string]map[string]struct{}{}}
}

// Lookup returns the entry at the absolute path p.
func (ix *Index) Lookup(p string) (*Entry, bool) {
	e, ok := ix.entries[path.Clean("/"+p)]
	return e, ok
}

// Len is the number of entries.
func (ix *Index) Len() int { return len(ix.entries) }

// Walk calls fn for every entry in path order (a directory before what it holds).
func (ix *Index) Walk(fn func(*Entry) error) error {
	if ix.sorted == nil {
		ix.sorted = make([]string, 0, len(ix.entries))
		for p := range ix.entries {
			ix.sorted = append(ix.sorted, p)
		}
		sort.Strings(ix.sorted)
	}
	for _, p := range ix.sorted {
		if err := fn(ix.entries[p]); err != nil {
			return err
		}
	}
	return nil
}

// Removed lists the entries later layers deleted or replaced, in the order it happened.
func (ix *Index) Removed() []Removal { return ix.removed }

// Children lists the names directly under the directory at p, sorted.
func (ix *Index) Children(p string) []string {
	var names []string
	for n := range ix.children[path.Clean("/"+p)] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Add adds or replaces e (for an index built by hand; Unpack builds its own).
func (ix *Index) Add(e *Entry) { ix.put(e) }

// put adds or replaces e; a replaced entry of another kind is recorded as removed by layer.
func (ix *Index) put(e *Entry) {
	if old, ok := ix.entries[e.Path]; ok {
		if old.Type != e.Type || old.Type != TypeDir {
			ix.remove(old.Path, e.Layer, "replaced")
		}
	}
	if _, ok := ix.entries[e.Path]; !ok {
		ix.sorted = nil
	}
	ix.entries[e.Path] = e
	if e.Path != "/" {
		dir, name := path.Split(e.Path)
		dir = path.Clean(dir)
		kids := ix.children[dir]
		if kids == nil {
			kids = map[string]struct{}{}
			ix.children[dir] = kids
		}
		kids[name] = struct{}{}
	}
}

// remove deletes p and everything under it, recording each as removed by layer.
func (ix *Index) remove(p string, layer int, how string) {
	e, ok := ix.entries[p]
	if !ok {
		return
	}
	for name := range ix.children[p] {
		ix.remove(path.Join(p, name), layer, how)
	}
	delete(ix.children, p)
	delete(ix.entries, p)
	ix.sorted = nil
	ix.removed = append(ix.removed, Removal{Entry: *e, By: layer, How: how})
	if p != "/" {
		dir, name := path.Split(p)
		delete(ix.children[path.Clean(dir)], name)
	}
}

// MarshalJSON writes {"entries": [...in path order], "removed": [...]}.
func (ix *Index) MarshalJSON() ([]byte, error) {
	out := struct {
		Entries []*Entry  `json:"entries"`
		Removed []Removal `json:"removed"`
	}{Entries: make([]*Entry, 0, len(ix.entries)), Removed: ix.removed}
	ix.Walk(func(e *Entry) error {
		out.Entries = append(out.Entries, e)
		return nil
	})
	if out.Removed == nil {
		out.Removed = []Removal{}
	}
	return json.Marshal(out)
}

// under reports whether p is dir or inside it.
func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Resolve follows the symlinks on p's way inside the tree, as the kernel would with the tree as its root:
// absolute targets start at the root and ".." stops there. The last component is followed only when
// followLast is set. It reports ErrLoop after 40 symlinks. Missing components are kept as they are.
func (ix *Index) Resolve(p string, followLast bool) (string, error) {
	return ix.resolve(p, followLast, nil)
}

// resolve is Resolve, calling link with each symlink met.
func (ix *Index) resolve(p string, followLast bool, link func(string)) (string, error) {
	todo := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	cur := "/"
	for hops := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		if name == "" {
			continue
		}
		next := path.Join(cur, name)
		e, ok := ix.entries[next]
		if !ok || e.Type != TypeSymlink || (len(todo) == 0 && !followLast) {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", ErrLoop
		}
		if link != nil {
			link(next)
		}
		base := cur
		if path.IsAbs(e.Linkname) {
			base = "/"
		}
		todo = append(strings.Split(strings.TrimPrefix(path.Join(base, e.Linkname), "/"), "/"), todo...)
		cur = "/"
	}
	return cur, nil
}
