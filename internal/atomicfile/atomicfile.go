// Package atomicfile writes output files whole or not at all: into a temporary file beside the target,
// renamed over it only when complete.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write creates path through fill. On any error the temporary file is removed and path is untouched. The
// file gets mode 0644, as a file a user asked for.
func Write(path string, fill func(*os.File) error) (err error) {
	dir := filepath.Dir(path)
	if fi, serr := os.Stat(dir); serr != nil || !fi.IsDir() {
		return fmt.Errorf("directory %s does not exist", dir)
	}
	if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteBytes writes b to path whole or not at all.
func WriteBytes(path string, b []byte) error {
	return Write(path, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}
