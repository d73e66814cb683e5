package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// volumeMount is an anonymous volume at dir: a tmpfs runc fills with a copy of what the root filesystem has
// there (its tmpcopyup, as podman's), with the mode and, where ids are the image's, the owner of the image's
// directory.
func (s *Sandbox) volumeMount(dir string) specs.Mount {
	opts := []string{"rw", "nosuid", "nodev", "tmpcopyup", fmt.Sprintf("size=%d", s.limits.WritableSize), "mode=755"}
	if fi, err := os.Lstat(filepath.Join(s.tree, dir)); err == nil && fi.IsDir() {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			opts[len(opts)-1] = fmt.Sprintf("mode=%o", st.Mode&0o7777)
			if !s.rootless {
				opts = append(opts, fmt.Sprintf("uid=%d", st.Uid), fmt.Sprintf("gid=%d", st.Gid))
			}
		}
	}
	return specs.Mount{Destination: dir, Type: "tmpfs", Source: "tmpfs", Options: opts}
}
