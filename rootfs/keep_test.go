package rootfs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// keepTree is a two-layer image of real ELF files (built with gcc, linked against the host's libc, which
// the tree carries) for the keep options: programs the app never runs, a script run through /usr/bin/env, a
// directory of binaries, ssh, certificates and keys, zoneinfo, the resolver's libraries, node packages, a
// stale lock file; its last layer adds /srv/new.
func keepTree(t *testing.T) *Tree {
	t.Helper()
	build := t.TempDir()
	for name, code := range map[string]string{
		"lib.c":  "int lib(void) { return 0; }",
		"tool.c": "int lib(void); int main(void) { return lib(); }",
		"main.c": "int main(void) { return 0; }",
	} {
		os.WriteFile(filepath.Join(build, name), []byte(code), 0o644)
	}
	run(t, build, "gcc", "-shared", "-fPIC", "-Wl,-soname,libtool.so", "-o", "libtool.so", "lib.c")
	run(t, build, "gcc", "-o", "tool", "tool.c", "-L.", "-ltool", "-Wl,-rpath,/opt/lib")
	run(t, build, "gcc", "-o", "main", "main.c")
	elfs := map[string]string{
		"usr/bin/tool": "tool", "opt/lib/libtool.so": "libtool.so", "usr/local/bin/tool2": "main", "usr/bin/tool3": "main",
		"usr/bin/env": "main", "usr/bin/notexec": "main", "opt/bins/a": "main", "opt/bins/b.so": "libtool.so", "opt/bins/sub/c": "main",
		"usr/bin/ssh": "main", "usr/lib/openssh/ssh-keysign": "main",
	}
	host := map[string]string{
		"usr/lib/x86_64-linux-gnu/libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "/lib64/ld-linux-x86-64.so.2",
		"usr/lib/x86_64-linux-gnu/libnss_dns.so.2": "/lib/x86_64-linux-gnu/libnss_dns.so.2", "usr/lib/x86_64-linux-gnu/libresolv.so.2": "/lib/x86_64-linux-gnu/libresolv.so.2",
		"usr/lib/x86_64-linux-gnu/libnss_files.so.2": "/lib/x86_64-linux-gnu/libnss_files.so.2",
	}
	files := map[string]string{
		"usr/local/bin/runme": "#!/usr/bin/env tool3\n", "opt/bins/README": "not a binary, long enough to be read as one if it were: " + strings.Repeat("x", 64),
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/usr/sbin/nologin\n", "etc/group": "root:x:0:\n",
		"etc/nsswitch.conf": "passwd: files\nhosts: files dns\n", "etc/resolv.conf": "nameserver 192.0.2.1\n", "etc/host.conf": "multi on\n",
		"root/.ssh/known_hosts": "host ssh-ed25519 AAAA\n", "home/app/.ssh/id_ed25519": "KEY\n", "etc/ssh/ssh_config": "Host *\n",
		"etc/ssl/certs/ca-certificates.crt": "BUNDLE", "usr/share/ca-certificates/mozilla/x.crt": "CERT", "etc/ssl/private/server.key": "KEY",
		"usr/lib/python3/dist-packages/certifi/cacert.pem": "CERTIFI", "usr/lib/python3/dist-packages/requests/__init__.py": "",
		"usr/share/zoneinfo/Europe/Paris": "TZif", "etc/timezone": "Europe/Paris\n",
		"app/node_modules/express/package.json": `{"name":"express"}`, "app/node_modules/express/lib/router.js": "",
		"app/node_modules/@scope/pkg/package.json": `{"name":"@scope/pkg"}`, "app/node_modules/other/package.json": `{"name":"other"}`,
		"run/lock/stale.lock": "1", "app/data/x.txt": "x",
	}
	links := map[string]string{
		"lib": "usr/lib", "bin": "usr/bin", "lib64/ld-linux-x86-64.so.2": "../usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
		"etc/ssl/certs/abcd.0": "/usr/share/ca-certificates/mozilla/x.crt", "etc/localtime": "/usr/share/zoneinfo/Europe/Paris",
		"var/lock": "../run/lock",
	}
	base := t.TempDir()
	put := func(p string, b []byte, mode os.FileMode) {
		os.MkdirAll(filepath.Dir(filepath.Join(base, p)), 0o755)
		if err := os.WriteFile(filepath.Join(base, p), b, mode); err != nil {
			t.Fatal(err)
		}
	}
	for to, from := range elfs {
		b, err := os.ReadFile(filepath.Join(build, from))
		if err != nil {
			t.Fatal(err)
		}
		put(to, b, 0o755)
	}
	os.Chmod(filepath.Join(base, "usr/bin/notexec"), 0o644)
	for to, from := range host {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Skipf("the host lacks %s, which the tree copies: %v", from, err)
		}
		put(to, b, 0o755)
	}
	for p, body := range files {
		put(p, []byte(body), 0o644)
	}
	os.Chmod(filepath.Join(base, "usr/local/bin/runme"), 0o755)
	for p, to := range links {
		os.MkdirAll(filepath.Dir(filepath.Join(base, p)), 0o755)
		if err := os.Symlink(to, filepath.Join(base, p)); err != nil {
			t.Fatal(err)
		}
	}
	top := t.TempDir()
	os.MkdirAll(filepath.Join(top, "srv/new"), 0o755)
	os.WriteFile(filepath.Join(top, "srv/new/a.txt"), []byte("a"), 0o644)

	img, err := mutate.Config(imageOf(t, tarDir(t, base), tarDir(t, top)), v1.Config{Env: []string{"PATH=/usr/local/bin:/usr/bin"}, WorkingDir: "/app"})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := Unpack(context.Background(), img, filepath.Join(t.TempDir(), "rootfs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// Each keep option on the same tree: what it keeps, why, and what it leaves out; each kept reason is absent
// when the option is off.
func TestKeepOptions(t *testing.T) {
	tree := keepTree(t)
	observed := map[string][]string{"/usr/lib/python3/dist-packages/requests/__init__.py": {"open"}, "/run/lock/stale.lock": {"open"}}
	closure := func(o ClosureOptions) *Closure {
		t.Helper()
		o.Observed, o.Workdir = observed, "/app"
		c, err := tree.ComputeClosure(o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := closure(ClosureOptions{})
	for _, tc := range []struct {
		name     string
		opts     ClosureOptions
		keep     map[string]string
		drop     []string
		excluded []string
	}{
		{"include-bin", ClosureOptions{Keep: KeepOptions{Bins: []string{"/usr/bin/tool"}}}, map[string]string{
			"/usr/bin/tool": "include-bin:/usr/bin/tool", "/opt/lib/libtool.so": "elf-needed:/usr/bin/tool",
			"/usr/lib/x86_64-linux-gnu/libc.so.6": "elf-needed:/usr/bin/tool", "/lib64/ld-linux-x86-64.so.2": "elf-interp:/usr/bin/tool",
			"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "link-target:/lib64/ld-linux-x86-64.so.2",
		}, []string{"/usr/local/bin/tool2", "/opt/bins/a"}, nil},
		{"include-exe, a script through env", ClosureOptions{Keep: KeepOptions{Exes: []string{"tool2", "runme"}}}, map[string]string{
			"/usr/local/bin/tool2": "include-exe:tool2", "/usr/local/bin/runme": "include-exe:runme",
			"/usr/bin/env": "shebang:/usr/local/bin/runme", "/usr/bin/tool3": "shebang:/usr/local/bin/runme",
			"/usr/lib/x86_64-linux-gnu/libc.so.6": "elf-needed:/usr/local/bin/tool2",
		}, []string{"/usr/bin/tool"}, nil},
		{"include-dir-bins", ClosureOptions{Keep: KeepOptions{DirBins: []string{"/opt/bins"}}}, map[string]string{
			"/opt/bins/a": "include-dir-bins:/opt/bins", "/opt/bins/b.so": "include-dir-bins:/opt/bins", "/opt/bins/sub/c": "include-dir-bins:/opt/bins",
		}, []string{"/opt/bins/README", "/usr/bin/tool"}, nil},
		{"include-workdir", ClosureOptions{Keep: KeepOptions{Workdir: true}}, map[string]string{
			"/app/data/x.txt": "include-workdir", "/app/node_modules/other/package.json": "include-workdir",
		}, nil, nil},
		{"zoneinfo", ClosureOptions{Keep: KeepOptions{Zoneinfo: true}}, map[string]string{
			"/etc/localtime": "zoneinfo", "/etc/timezone": "zoneinfo", "/usr/share/zoneinfo/Europe/Paris": "zoneinfo",
		}, nil, nil},
		{"ssh client", ClosureOptions{Keep: KeepOptions{SSHClient: true}}, map[string]string{
			"/etc/ssh/ssh_config": "ssh-client", "/root/.ssh/known_hosts": "ssh-client", "/usr/lib/openssh/ssh-keysign": "ssh-client",
			"/usr/bin/ssh": "ssh-client", "/usr/lib/x86_64-linux-gnu/libc.so.6": "elf-needed:/usr/bin/ssh",
		}, []string{"/home/app/.ssh/id_ed25519"}, nil}, // app's shell is nologin
		{"oslibs-net", ClosureOptions{Keep: KeepOptions{OSLibsNet: true}}, map[string]string{
			"/etc/resolv.conf": "oslibs-net", "/etc/host.conf": "oslibs-net", "/etc/nsswitch.conf": "oslibs-net",
			"/usr/lib/x86_64-linux-gnu/libnss_dns.so.2": "oslibs-net", "/usr/lib/x86_64-linux-gnu/libresolv.so.2": "oslibs-net",
			"/usr/lib/x86_64-linux-gnu/libnss_files.so.2": "oslibs-net",
			"/usr/lib/x86_64-linux-gnu/libc.so.6":         "elf-needed:/usr/lib/x86_64-linux-gnu/libnss_dns.so.2",
		}, nil, nil},
		{"certificates, all", ClosureOptions{Certs: true}, map[string]string{
			"/etc/ssl/certs/ca-certificates.crt": "certificates", "/etc/ssl/certs/abcd.0": "certificates",
			"/usr/share/ca-certificates/mozilla/x.crt": "certificates", "/usr/lib/python3/dist-packages/certifi/cacert.pem": "certificates",
		}, []string{"/etc/ssl/private/server.key"}, nil},
		{"certificates, bundles only", ClosureOptions{Keep: KeepOptions{CertBundles: true}}, map[string]string{
			"/etc/ssl/certs/ca-certificates.crt": "certificates", "/usr/lib/python3/dist-packages/certifi/cacert.pem": "certificates",
		}, []string{"/etc/ssl/certs/abcd.0", "/usr/share/ca-certificates/mozilla/x.crt", "/etc/ssl/private/server.key"}, nil},
		{"certificates, directories", ClosureOptions{Keep: KeepOptions{CertDirs: true}}, map[string]string{
			"/etc/ssl/certs/abcd.0": "certificates", "/usr/share/ca-certificates/mozilla/x.crt": "certificates",
			"/etc/ssl/certs/ca-certificates.crt": "certificates",
		}, []string{"/usr/lib/python3/dist-packages/certifi/cacert.pem", "/etc/ssl/private/server.key"}, nil},
		{"certificate keys", ClosureOptions{Keep: KeepOptions{CertKeys: true}}, map[string]string{
			"/etc/ssl/private/server.key": "cert-private-keys",
		}, []string{"/etc/ssl/certs/ca-certificates.crt"}, nil},
		{"node packages", ClosureOptions{Keep: KeepOptions{NodePackages: []string{"express", "@scope/pkg"}}}, map[string]string{
			"/app/node_modules/express/lib/router.js": "node-package:express", "/app/node_modules/@scope/pkg/package.json": "node-package:@scope/pkg",
		}, []string{"/app/node_modules/other/package.json"}, nil},
		{"last image layer", ClosureOptions{Keep: KeepOptions{LastLayers: 1}}, map[string]string{
			"/srv/new/a.txt": "last-layers:1", "/srv/new": "last-layers:1",
		}, []string{"/usr/bin/tool", "/app/data/x.txt"}, nil},
		{"an earlier report", ClosureOptions{Keep: KeepOptions{ReportName: "r.json", Report: map[string][]string{
			"/usr/bin/tool": {"exec"}, "/var/tmp/made": {"missing", "open"}, "/opt/bins/README": {"unlink"}, "/proc/self/maps": {"open"},
		}}}, map[string]string{
			"/usr/bin/tool": "report:r.json", "/opt/lib/libtool.so": "elf-needed:/usr/bin/tool", "/opt/bins": "near-missing:/opt/bins/README",
		}, []string{"/opt/bins/README", "/proc"}, nil},
		{"var lock files", ClosureOptions{Keep: KeepOptions{ExcludeVarLock: true}}, map[string]string{
			"/run/lock": "parent",
		}, []string{"/run/lock/stale.lock"}, []string{"/run/lock/stale.lock"}},
		{"** globs", ClosureOptions{Include: []string{"/opt/bins/**/c"}, Exclude: []string{"/usr/**/libresolv*"}, Keep: KeepOptions{OSLibsNet: true}}, map[string]string{
			"/opt/bins/sub/c": "included:/opt/bins/**/c", "/usr/lib/x86_64-linux-gnu/libnss_dns.so.2": "oslibs-net",
		}, []string{"/opt/bins/a", "/usr/lib/x86_64-linux-gnu/libresolv.so.2"}, []string{"/usr/lib/x86_64-linux-gnu/libresolv.so.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := closure(tc.opts)
			for p, why := range tc.keep {
				if !slices.Contains(c.Keep[p], why) {
					t.Errorf("%s kept for %v, want %q", p, c.Keep[p], why)
				}
				if slices.Contains(base.Keep[p], why) && why != "parent" {
					t.Errorf("%s is kept for %q without the option too", p, why)
				}
			}
			for _, p := range tc.drop {
				if c.Keep[p] != nil {
					t.Errorf("%s kept for %v", p, c.Keep[p])
				}
			}
			for _, p := range tc.excluded {
				if !slices.Contains(c.Excluded, p) {
					t.Errorf("%s not among the excluded %v", p, c.Excluded)
				}
				if base.Keep[p] == nil && tc.name == "var lock files" {
					t.Errorf("%s is not kept without the option either", p)
				}
			}
		})
	}
}

func TestLookPathAndDirBins(t *testing.T) {
	tree := keepTree(t)
	for name, want := range map[string]string{"tool2": "/usr/local/bin/tool2", "tool": "/usr/bin/tool", "runme": "/usr/local/bin/runme",
		"notexec": "", "nope": "", "bin/tool": "", "": "", "env": "/usr/bin/env"} {
		if got, ok := tree.LookPath(name); got != want || ok != (want != "") {
			t.Errorf("LookPath(%q) = %q %v, want %q", name, got, ok, want)
		}
	}
	if got := tree.DirBins("/opt/bins"); !slices.Equal(got, []string{"/opt/bins/a", "/opt/bins/b.so", "/opt/bins/sub/c"}) {
		t.Errorf("DirBins: %v", got)
	}
	if got := tree.DirBins("/opt/bins/README"); got != nil {
		t.Errorf("DirBins of a file: %v", got)
	}
	// Through the /bin -> usr/bin symlink.
	if got := tree.DirBins("/bin"); !slices.Contains(got, "/usr/bin/tool") {
		t.Errorf("DirBins(/bin): %v", got)
	}
	if got := tree.NodePackageDirs("@scope/pkg"); !slices.Equal(got, []string{"/app/node_modules/@scope/pkg"}) {
		t.Errorf("NodePackageDirs: %v", got)
	}
	if got := tree.NodePackageDirs("../etc"); got != nil {
		t.Errorf("NodePackageDirs(../etc): %v", got)
	}
	if n := tree.Layers(); n != 2 {
		t.Errorf("Layers() = %d", n)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		glob, p string
		want    bool
	}{
		{"/usr/share/doc/**", "/usr/share/doc/a/b/c", true},
		{"/usr/**/*.pyc", "/usr/lib/python3/x/__pycache__/y.pyc", true},
		{"/usr/*/*.pyc", "/usr/lib/python3/y.pyc", false},
		{"/opt/{a,b}/x", "/opt/b/x", true},
		{"/opt/*", "/opt/a/b", false},
	} {
		if got := Match(tc.glob, tc.p); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.glob, tc.p, got)
		}
	}
	if ValidGlob("/a[") || !ValidGlob("/a/**/b") {
		t.Errorf("ValidGlob")
	}
}
