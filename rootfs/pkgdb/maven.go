package pkgdb

import (
	"archive/zip"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/slimoci/slimoci/rootfs"
)

// A jar is the image's, and hostile: what is read of it is bounded.
const (
	// maxJarDirectory bounds what zip.NewReader reads of a jar: its central directory, some 100 bytes an
	// entry (8 MiB is some 80000 entries; archive/zip would otherwise read, and hold, as many entries as the
	// file has room for).
	maxJarDirectory = 8 << 20
	// jarSlack is what zip.NewReader reads beside the central directory: the end record, and its search.
	jarSlack = 128 << 10
	// maxPoms bounds the pom.properties read in one jar (a shaded jar has one for each library in it).
	maxPoms = 256
	// maxPom bounds one pom.properties, uncompressed (they are some 100 bytes): a zip bomb stops there.
	maxPom = 64 << 10
)

// jarBudget is what zip.NewReader may read of a jar; tests lower it.
var jarBudget int64 = maxJarDirectory + jarSlack

// jar reads a Java archive's META-INF/maven/GROUP/ARTIFACT/pom.properties (groupId, artifactId, version): a
// package each, owning the jar. Jars inside it (a Spring Boot jar's BOOT-INF/lib) are not opened.
func (r *reader) jar(e *rootfs.Entry) error {
	f, err := r.tree.Open(e.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.Path, err)
	}
	// The budget stops reading the central directory; the entries are bounded one by one after.
	ra := &budgetReaderAt{r: f, left: jarBudget}
	z, err := zip.NewReader(ra, st.Size())
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.Path, err)
	}
	ra.left = math.MaxInt64
	poms := 0
	for _, zf := range z.File {
		parts := strings.Split(zf.Name, "/")
		if len(parts) != 5 || parts[0] != "META-INF" || parts[1] != "maven" || parts[4] != "pom.properties" {
			continue
		}
		if poms++; poms > maxPoms {
			// Not ErrTooMany: one odd jar does not end Read.
			return fmt.Errorf("reading %s: more than %d pom.properties", e.Path, maxPoms)
		}
		db := e.Path + "!/" + zf.Name
		props, err := readPom(zf, db)
		if err != nil {
			return err
		}
		p := &Package{Type: Maven, Namespace: props["groupId"], Name: props["artifactId"], Version: props["version"], DB: db}
		if p.Namespace == "" || p.Name == "" || p.Version == "" {
			return fmt.Errorf("parsing %s: %w: no groupId, artifactId or version", db, ErrDatabase)
		}
		if err := r.own(p, e.Path); err != nil {
			return err
		}
		if err := r.add(p); err != nil {
			return err
		}
	}
	return nil
}

// readPom reads a pom.properties (Java properties: key=value or key: value lines, # and ! comments), at most
// maxPom bytes of it.
func readPom(zf *zip.File, name string) (map[string]string, error) {
	if zf.UncompressedSize64 > maxPom {
		return nil, fmt.Errorf("reading %s: %w", name, &rootfs.LimitError{Size: int64(min(zf.UncompressedSize64, math.MaxInt64)), Limit: maxPom})
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxPom+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(b) > maxPom {
		// It says it is small, and is not.
		return nil, fmt.Errorf("reading %s: %w", name, &rootfs.LimitError{Size: -1, Limit: maxPom})
	}
	props := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			continue
		}
		props[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return props, nil
}

// budgetReaderAt reads from r until left bytes are read, then fails with ErrTooLarge.
type budgetReaderAt struct {
	r    io.ReaderAt
	left int64
}

func (b *budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if int64(len(p)) > b.left {
		return 0, &rootfs.LimitError{Size: -1, Limit: jarBudget - jarSlack}
	}
	b.left -= int64(len(p))
	return b.r.ReadAt(p, off)
}
