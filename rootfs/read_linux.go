package rootfs

import (
	"os"
	"path/filepath"
)

// RemoveTree removes a directory tree made by Unpack (or a copy of one), whose directories may be
// read-only as the image made them.
func RemoveTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
