package rootfs

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// synthTree is a tree made as an ordinary user would make one (no root, no chown: the owners are the
// index's), its index built by hand with Index.Add. files maps paths to contents, links symlinks to their
// targets; the directories above them are made, and dirs adds more, with their mode in the index (on disk,
// every directory is 0755).
func synthTree(t *testing.T, dirs map[string]int64, files, links map[string]string) *Tree {
	t.Helper()
	dir := t.TempDir()
	ix := NewIndex()
	ix.Add(&Entry{Path: "/", Type: TypeDir, Mode: 0o755})
	addDir := func(p string, mode int64) {
		for d := p; d != "/"; d = filepath.Dir(d) {
			if _, ok := ix.Lookup(d); !ok {
				ix.Add(&Entry{Path: d, Type: TypeDir, Mode: 0o755})
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
		if mode != 0 {
			e, _ := ix.Lookup(p)
			e.Mode = mode
		}
	}
	for p, mode := range dirs {
		addDir(p, mode)
	}
	for p, body := range files {
		addDir(filepath.Dir(p), 0)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		ix.Add(&Entry{Path: p, Type: TypeFile, Size: int64(len(body)), Mode: 0o644})
	}
	for p, to := range links {
		addDir(filepath.Dir(p), 0)
		if err := os.Symlink(to, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
		ix.Add(&Entry{Path: p, Type: TypeSymlink, Linkname: to, Mode: 0o777})
	}
	return &Tree{Dir: dir, Config: &v1.ConfigFile{}, Index: ix, Rootless: true}
}

// TestClosureSynthetic: the closure's path rules over a hand-made index, without root and without ELF
// files: a symlink chain is kept with each link and its target, a path the app looked up that does not
// exist keeps its nearest existing directory, --include-path globs keep what they match and
// --exclude-path wins over everything (observed paths too, and what is under an excluded directory), an
// included directory is kept whole (through a symlink too), and a path observed under a symlinked directory
// keeps the link and the real path. Each case lists everything kept: a closure that keeps more fails too.
func TestClosureSynthetic(t *testing.T) {
	tree := synthTree(t,
		map[string]int64{"/tmp": 0o1777, "/var/cache": 0o755, "/loop": 0o755, "/proc": 0o555},
		map[string]string{
			// Longer than 64 bytes, so the closure reads it looking for ELF: it is a script.
			"/usr/local/bin/py":           "#!/bin/false\n" + strings.Repeat("# not an ELF file\n", 5),
			"/usr/bin/other":              "x",
			"/usr/lib/libfoo.so.1":        "foo",
			"/usr/lib/libbar.so.1":        "bar",
			"/var/cache/keep.txt":         "c",
			"/tmp/old":                    "o",
			"/opt/data/a.json":            "{}",
			"/opt/data/secret.json":       "{}",
			"/opt/data/readme.txt":        "r",
			"/srv/www/index.html":         "<html>",
			"/srv/www/css/site.css":       "body{}",
			"/usr/share/img/logo.png":     "png",
			"/usr/share/img/unused.png":   "png",
			"/etc/app/main.conf":          "a=1",
			"/etc/app/conf.d/debug.conf":  "debug=1",
			"/etc/app/conf.d/other.conf":  "x=1",
			"/home/app/notes.txt":         "n",
			"/home/app/.cache/ignore.txt": "i",
		},
		map[string]string{
			"/usr/bin/python3":    "python3.11",        // relative
			"/usr/bin/python3.11": "/usr/local/bin/py", // absolute
			"/lib":                "usr/lib",           // a symlinked directory
			"/srv/www/logo.png":   "../../usr/share/img/logo.png",
			"/usr/bin/gone":       "/nowhere",
			"/loop/a":             "b",
			"/loop/b":             "a",
		})

	for _, tc := range []struct {
		name string
		opts ClosureOptions
		// keep is every path kept; why, a reason each of some of them must have.
		keep     []string
		why      map[string]string
		excluded []string
	}{
		{
			name: "symlink chain",
			opts: ClosureOptions{Observed: map[string][]string{"/usr/bin/python3": {"exec"}}},
			keep: []string{"/", "/usr", "/usr/bin", "/usr/bin/python3", "/usr/bin/python3.11", "/usr/local", "/usr/local/bin", "/usr/local/bin/py"},
			why: map[string]string{
				"/usr/bin/python3": "observed:exec", "/usr/bin/python3.11": "symlink:/usr/bin/python3",
				"/usr/local/bin/py": "observed:exec", "/usr/local/bin": ReasonParent,
			},
		},
		{
			name: "nearest directory",
			opts: ClosureOptions{Observed: map[string][]string{
				"/var/cache/app/tmp/x.db": {"open", "missing"},   // two levels missing: /var/cache is kept
				"/tmp/old":                {"unlink", "missing"}, // only removed: /tmp is kept, not the file
				"/etc/app/main.conf/sub":  {"stat", "missing"},   // under a file: nothing
			}},
			keep: []string{"/", "/tmp", "/var", "/var/cache"},
			why:  map[string]string{"/var/cache": "near-missing:/var/cache/app/tmp/x.db", "/tmp": "near-missing:/tmp/old"},
		},
		{
			name: "include and exclude",
			opts: ClosureOptions{
				Observed: map[string][]string{"/etc/app/conf.d/debug.conf": {"open"}, "/etc/app/main.conf": {"open"}},
				Include:  []string{"/opt/data/*.json", "/srv/**/*.css"},
				Exclude:  []string{"/opt/data/secret.json", "/etc/app/conf.d"},
			},
			keep: []string{"/", "/etc", "/etc/app", "/etc/app/main.conf", "/opt", "/opt/data", "/opt/data/a.json", "/srv", "/srv/www", "/srv/www/css", "/srv/www/css/site.css"},
			why: map[string]string{
				"/opt/data/a.json": "included:/opt/data/*.json", "/srv/www/css/site.css": "included:/srv/**/*.css",
				"/etc/app/main.conf": "observed:open",
			},
			excluded: []string{"/etc/app/conf.d", "/etc/app/conf.d/debug.conf", "/opt/data/secret.json"},
		},
		{
			name: "whole directory",
			opts: ClosureOptions{Include: []string{"/srv/www"}, Workdir: "/home/app"},
			keep: []string{"/", "/home", "/home/app", "/srv", "/srv/www", "/srv/www/css", "/srv/www/css/site.css", "/srv/www/index.html", "/srv/www/logo.png",
				"/usr", "/usr/share", "/usr/share/img", "/usr/share/img/logo.png"},
			why: map[string]string{
				"/srv/www/css/site.css": "included:/srv/www", "/srv/www/logo.png": "included:/srv/www",
				"/usr/share/img/logo.png": "link-target:/srv/www/logo.png", "/home/app": ReasonWorkdir,
			},
		},
		{
			name: "whole directory through a symlink",
			opts: ClosureOptions{Include: []string{"/lib"}},
			keep: []string{"/", "/lib", "/usr", "/usr/lib", "/usr/lib/libbar.so.1", "/usr/lib/libfoo.so.1"},
			why:  map[string]string{"/lib": "included:/lib", "/usr/lib/libbar.so.1": "included:/lib"},
		},
		{
			name: "under a symlinked directory",
			opts: ClosureOptions{Observed: map[string][]string{"/lib/libfoo.so.1": {"open"}}},
			keep: []string{"/", "/lib", "/usr", "/usr/lib", "/usr/lib/libfoo.so.1"},
			why:  map[string]string{"/lib": "symlink:/lib/libfoo.so.1", "/usr/lib/libfoo.so.1": "observed:open"},
		},
		{
			name: "dangling link, loop, kernel paths",
			opts: ClosureOptions{Observed: map[string][]string{
				"/usr/bin/gone":   {"open", "missing"}, // the app met the link: it stays, dangling
				"/loop/a":         {"open"},            // ELOOP in the slim image too
				"/proc/self/maps": {"open"},            // the runtime's
			}},
			keep: []string{"/", "/loop", "/loop/a", "/loop/b", "/usr", "/usr/bin", "/usr/bin/gone"},
			why:  map[string]string{"/usr/bin/gone": "observed:open,missing", "/loop": "near-missing:/loop/a", "/loop/b": "symlink:/loop/a"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tree.ComputeClosure(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(maps.Keys(c.Keep))
			if want := slices.Sorted(slices.Values(tc.keep)); !slices.Equal(got, want) {
				t.Errorf("kept %q\nwant %q", got, want)
			}
			for p, why := range tc.why {
				if !slices.Contains(c.Keep[p], why) {
					t.Errorf("%s kept for %q, want %q among them", p, c.Keep[p], why)
				}
			}
			if !slices.Equal(c.Excluded, tc.excluded) {
				t.Errorf("excluded %q, want %q", c.Excluded, tc.excluded)
			}
			if len(c.MissingLibs) != 0 || len(c.Unreadable) != 0 {
				t.Errorf("missing libs %q, unreadable %q", c.MissingLibs, c.Unreadable)
			}
		})
	}
}
