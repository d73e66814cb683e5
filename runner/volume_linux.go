package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// volumeMount is an anonymous volume at dir: a tmpfs runc fills with a copy of what the root filesystem has
// there (its tmpcopyup, as podman's), with the mode and, where ids are the image's, the owner of the image's
// directory.
func (s *Sandbox) volumeMount(dir string) specs.Mount {
	opts := []string{"rw", "nosuid", "nodev", "tmpcopyup", fmt.Sprintf("size=%d", s.limits.WritableSize), "mode=755"}
	// The directory as the app would see it: the image's symlinks resolve inside the tree, never to the
	// host's files.
	inTree, err := securejoin.SecureJoin(s.tree, dir)
	if err != nil {
		inTree = filepath.Join(s.tree, "nonexistent")
	}
	if fi, err := os.Lstat(inTree); err == nil && fi.IsDir() {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			opts[len(opts)-1] = fmt.Sprintf("mode=%o", st.Mode&0o7777)
			if !s.rootless {
				opts = append(opts, fmt.Sprintf("uid=%d", st.Uid), fmt.Sprintf("gid=%d", st.Gid))
			}
		}
	}
	return specs.Mount{Destination: dir, Type: "tmpfs", Source: "tmpfs", Options: opts}
}
