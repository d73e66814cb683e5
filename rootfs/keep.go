package rootfs

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Why a path is kept, for what KeepOptions ask. Each reason is followed by ":" and what asked for it where
// there is something to name: "include-bin:/usr/bin/curl", "include-exe:curl", "report:/tmp/report.json".
const (
	ReasonIncludeBin     = "include-bin"      // --include-bin PATH, with what it needs
	ReasonIncludeExe     = "include-exe"      // --include-exe NAME, found on the image's PATH
	ReasonIncludeDirBins = "include-dir-bins" // an ELF file under --include-dir-bins DIR
	ReasonShebang        = "shebang"          // the #! interpreter of a kept script (--include-bin and the like)
	ReasonIncludeWorkdir = "include-workdir"  // the whole WORKDIR
	ReasonZoneinfo       = "zoneinfo"
	ReasonSSHClient      = "ssh-client"
	ReasonOSLibsNet      = "oslibs-net"
	ReasonCertKeys       = "cert-private-keys"
	ReasonNodePackage    = "node-package"
	ReasonLastLayers     = "last-layers" // written by one of the image's last layers: "last-layers:LAYER"
	ReasonReport         = "report"      // recorded by an earlier profile or build (or mint's creport.json)
)

// KeepOptions are what docker-slim's and mint's keep flags ask for, besides what the app was seen using.
// Each kept path says why in Closure.Keep. Missing paths are skipped: check them first with LookPath,
// DirBins and NodePackageDirs to make them errors.
type KeepOptions struct {
	// Bins are executables or shared libraries (absolute paths in the image), each kept with what it needs:
	// its ELF interpreter and libraries, a script's #! interpreter (through /usr/bin/env too).
	Bins []string
	// Exes are program names, looked up on the image's PATH as execvp would (see LookPath), then kept as Bins.
	Exes []string
	// DirBins are directories whose ELF files (executables and libraries, not scripts) are kept as Bins.
	DirBins []string
	// Workdir keeps ClosureOptions.Workdir whole, not only the directory.
	Workdir bool
	// Zoneinfo keeps /etc/localtime, /etc/timezone and the zoneinfo directories (and the image's TZDIR).
	Zoneinfo bool
	// SSHClient keeps /etc/ssh, the ~/.ssh of users with a login shell, /usr/lib/openssh and the ssh
	// programs (ssh, ssh-add, ssh-agent, ssh-keygen, ssh-keyscan, ssh-argv0, ssh-copy-id).
	SSHClient bool
	// OSLibsNet keeps what name lookups need whether or not the run made one: /etc/resolv.conf,
	// /etc/nsswitch.conf, /etc/host.conf and every libnss_dns, libnss_files and libresolv library.
	OSLibsNet bool
	// CertBundles keeps the CA bundle files (and a certifi package's cacert.pem beside packages the app used);
	// CertDirs the certificate directories whole. ClosureOptions.Certs is both.
	CertBundles, CertDirs bool
	// CertKeys keeps the private key directories (/etc/ssl/private, ...) and CA key files: never by default.
	CertKeys bool
	// NodePackages are node.js package names (express, @scope/name): every node_modules/NAME directory of the
	// image is kept whole.
	NodePackages []string
	// LastLayers keeps every path written by the image's last N layers (what they added or changed).
	LastLayers int
	// Report adds paths recorded earlier (an earlier profile's record, with its ops), kept as observed paths
	// are: a path the image lacks keeps the directory it was expected in, one only removed is not kept.
	// ReportName names it in the reason.
	Report     map[string][]string
	ReportName string
	// ExcludeVarLock drops the files under /var/lock and /run/lock (stale locks of the image's build); the
	// directories stay.
	ExcludeVarLock bool
}

// Where distributions keep certificates: CA bundles (a file each), certificate directories, the directories
// the certificates those link to live in, and private keys. The key directories are never among the
// others: /etc/letsencrypt/live holds privkey.pem beside the certificates, so it is a key directory only
// (mint also keeps it with the certificates).
var (
	certBundles = []string{
		"/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/certs/ca-bundle.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/pki/tls/cert.pem", "/etc/ssl/ca-bundle.pem",
		"/etc/pki/tls/cacert.pem", "/etc/ssl/certs/java/cacerts", "/etc/pki/java/cacerts",
		"/etc/ssl/ca/certs/ca.crt", "/etc/pki/CA/certs/ca.crt", "/etc/ssl/ca/cacert.pem",
	}
	certDirs = []string{
		"/etc/ssl/certs", "/etc/pki/tls/certs", "/usr/lib/ssl/certs", "/usr/local/ssl/certs", "/etc/ssl/ca/certs", "/etc/pki/CA/certs",
		"/usr/share/ca-certificates", "/usr/local/share/ca-certificates", "/usr/lib/ca-certificates", "/usr/share/pki/trust/anchors",
		"/etc/ca-certificates", "/etc/ca-certificates.conf", "/etc/pki/ca-trust",
	}
	certKeyDirs = []string{
		"/etc/ssl/private", "/etc/pki/tls/private", "/usr/lib/ssl/private", "/usr/local/ssl/private",
		"/etc/ssl/ca/private", "/etc/pki/CA/private", "/etc/letsencrypt/live",
	}
	// certifiBundles are the bundles of the certifi packages (Python, node.js, Ruby), below the directory
	// that holds the package.
	certifiBundles = []string{"/certifi/cacert.pem", "/lib/certifi/vendor/cacert.pem"}

	zoneinfoFiles = []string{"/etc/timezone", "/etc/localtime"}
	zoneinfoDirs  = []string{"/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/zoneinfo-icu"}

	sshDirs  = []string{"/etc/ssh", "/usr/lib/openssh"}
	sshProgs = []string{"ssh", "ssh-add", "ssh-agent", "ssh-keygen", "ssh-keyscan", "ssh-argv0", "ssh-copy-id"}

	netFiles = []string{"/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/host.conf"}
	netLibs  = []string{"libnss_dns", "libnss_files", "libresolv"}
	libRoots = []string{"/lib", "/usr/lib", "/lib64", "/usr/lib64"}

	lockDirs = []string{"/var/lock", "/run/lock", "/var/run/lock"}
)

// defaultPath is the PATH runtimes give a container whose image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Match reports whether the absolute path p matches the glob g: path.Match's syntax, plus ** for any number
// of directories and {a,b} for either (github.com/bmatcuk/doublestar, mint's matcher too).
func Match(g, p string) bool {
	ok, _ := doublestar.Match(g, p)
	return ok
}

// ValidGlob reports whether g is a glob Match can use.
func ValidGlob(g string) bool { return doublestar.ValidatePattern(g) }

// LookPath finds the program name on the image's PATH (its config's, or the runtimes' default), as execvp
// does: the first regular file with an execute bit, through symlinks. It returns the path on the PATH (a
// symlink is kept as such, with its target).
func (t *Tree) LookPath(name string) (string, bool) {
	if name == "" || strings.Contains(name, "/") {
		return "", false
	}
	for _, dir := range strings.Split(t.envPath(), ":") {
		if !path.IsAbs(dir) {
			continue
		}
		p := path.Join(dir, name)
		if e, ok := t.file(p); ok && e.Mode&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// envPath is the image's PATH.
func (t *Tree) envPath() string {
	if t.Config != nil {
		for _, e := range t.Config.Config.Env {
			if v, ok := strings.CutPrefix(e, "PATH="); ok {
				return v
			}
		}
	}
	return defaultPath
}

// envVar is the value of the image's environment variable name.
func (t *Tree) envVar(name string) string {
	if t.Config == nil {
		return ""
	}
	for _, e := range t.Config.Config.Env {
		if v, ok := strings.CutPrefix(e, name+"="); ok {
			return v
		}
	}
	return ""
}

// file returns the regular file p names, through symlinks.
func (t *Tree) file(p string) (*Entry, bool) {
	real, err := t.Index.Resolve(p, true)
	if err != nil {
		return nil, false
	}
	e, ok := t.Index.Lookup(real)
	return e, ok && e.Type == TypeFile
}

// IsFile reports whether p names a regular file of the image, through symlinks.
func (t *Tree) IsFile(p string) bool {
	_, ok := t.file(p)
	return ok
}

// IsDir reports whether p names a directory of the image, through symlinks.
func (t *Tree) IsDir(p string) bool {
	real, err := t.Index.Resolve(p, true)
	if err != nil {
		return false
	}
	e, ok := t.Index.Lookup(real)
	return ok && e.Type == TypeDir
}

// DirBins lists the ELF files (executables, shared libraries) under the directory dir, at any depth, in path
// order. Symlinks are not followed below dir.
func (t *Tree) DirBins(dir string) []string {
	real, err := t.Index.Resolve(dir, true)
	if err != nil || !t.IsDir(real) {
		return nil
	}
	var out []string
	prefix := strings.TrimSuffix(real, "/") + "/"
	t.Index.Walk(func(e *Entry) error {
		if e.Type == TypeFile && strings.HasPrefix(e.Path, prefix) && e.Size >= 64 && t.isELF(e.Path) {
			out = append(out, e.Path)
		}
		return nil
	})
	return out
}

// isELF reports whether the regular file p starts with the ELF magic.
func (t *Tree) isELF(p string) bool {
	f, err := t.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	n, _ := f.ReadAt(magic[:], 0)
	return n == 4 && string(magic[:]) == "\x7fELF"
}

// NodePackageDirs lists the directories node_modules/NAME of the image that hold a package.json, in path
// order: what require(NAME) finds from wherever it is called.
func (t *Tree) NodePackageDirs(name string) []string {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return nil
	}
	suffix := "/node_modules/" + name + "/package.json"
	var out []string
	t.Index.Walk(func(e *Entry) error {
		if e.Type == TypeFile && strings.HasSuffix(e.Path, suffix) {
			out = append(out, path.Dir(e.Path))
		}
		return nil
	})
	return out
}

// Layers is the number of layers the image has.
func (t *Tree) Layers() int {
	if t.Config == nil {
		return 0
	}
	return len(t.Config.RootFS.DiffIDs)
}

// keepOptions keeps what o.Keep asks for (before the queue is drained).
func (c *closure) keepOptions(o ClosureOptions) {
	k := o.Keep
	for _, p := range k.Bins {
		c.keepBin(p, ReasonIncludeBin+":"+p, 0)
	}
	for _, name := range k.Exes {
		if p, ok := c.tree.LookPath(name); ok {
			c.keepBin(p, ReasonIncludeExe+":"+name, 0)
		}
	}
	for _, d := range k.DirBins {
		for _, p := range c.tree.DirBins(d) {
			c.keepBin(p, ReasonIncludeDirBins+":"+d, 0)
		}
	}
	if k.Workdir && o.Workdir != "" {
		c.keep(o.Workdir, ReasonIncludeWorkdir, true)
	}
	if k.Zoneinfo {
		for _, p := range zoneinfoFiles {
			c.keep(p, ReasonZoneinfo, false)
		}
		dirs := zoneinfoDirs
		if tz := c.tree.envVar("TZDIR"); path.IsAbs(tz) {
			dirs = append(append([]string(nil), dirs...), tz)
		}
		for _, d := range dirs {
			c.keep(d, ReasonZoneinfo, true)
		}
	}
	if k.SSHClient {
		c.sshClient()
	}
	if k.OSLibsNet {
		for _, p := range netFiles {
			c.keep(p, ReasonOSLibsNet, false)
		}
		c.ix.Walk(func(e *Entry) error {
			if (e.Type == TypeFile || e.Type == TypeSymlink) && netLib(e.Path) {
				c.keep(e.Path, ReasonOSLibsNet, false)
			}
			return nil
		})
	}
	if k.CertBundles && !o.Certs {
		for _, p := range certBundles {
			c.keep(p, ReasonCerts, false)
		}
	}
	if k.CertDirs && !o.Certs {
		for _, p := range certDirs {
			c.keep(p, ReasonCerts, true)
		}
	}
	if k.CertKeys {
		for _, p := range certKeyDirs {
			c.keep(p, ReasonCertKeys, true)
		}
		for _, p := range []string{"/etc/ssl/ca/private/ca.key", "/etc/pki/CA/private/ca.key", "/etc/ssl/ca/private/cakey.pem"} {
			c.keep(p, ReasonCertKeys, false)
		}
	}
	for _, name := range k.NodePackages {
		for _, d := range c.tree.NodePackageDirs(name) {
			c.keep(d, ReasonNodePackage+":"+name, true)
		}
	}
	if k.LastLayers > 0 {
		first := c.tree.Layers() - k.LastLayers
		c.ix.Walk(func(e *Entry) error {
			if e.Layer >= first && e.Layer >= 0 && e.Path != "/" {
				c.keep(e.Path, ReasonLastLayers+":"+strconv.Itoa(e.Layer), false)
			}
			return nil
		})
	}
	if len(k.Report) > 0 {
		names := make([]string, 0, len(k.Report))
		for p := range k.Report {
			names = append(names, p)
		}
		sort.Strings(names)
		why := ReasonReport + ":" + k.ReportName
		for _, p := range names {
			if kernelPath(p) {
				continue
			}
			if removedOnly(k.Report[p]) || !c.keep(p, why, false) {
				c.nearest(p)
			}
		}
	}
}

// certs keeps the CA certificates: all of them (bundles and directories) with o.Certs.
func (c *closure) certs(o ClosureOptions) {
	if !o.Certs {
		return
	}
	for _, p := range certBundles {
		c.keep(p, ReasonCerts, false)
	}
	for _, p := range certDirs {
		c.keep(p, ReasonCerts, true)
	}
}

// appCerts keeps the bundle of a certifi package (requests and pip use it instead of the system's) in each
// package directory the app used something of: site-packages, node_modules, a Ruby gems directory. It runs
// once the closure has what the app used.
func (c *closure) appCerts(o ClosureOptions) {
	if !o.Certs && !o.Keep.CertBundles {
		return
	}
	c.ix.Walk(func(e *Entry) error {
		if e.Type != TypeFile && e.Type != TypeSymlink {
			return nil
		}
		for _, s := range certifiBundles {
			pkgs, ok := strings.CutSuffix(e.Path, s)
			if !ok {
				continue
			}
			if strings.HasSuffix(s, "/vendor/cacert.pem") {
				pkgs = path.Dir(pkgs) // gems/certifi-VERSION/lib/...: the gems directory
			}
			base := path.Base(pkgs)
			if (strings.HasSuffix(base, "-packages") || base == "node_modules" || base == "gems") && c.usedUnder(pkgs, e.Path) {
				c.keep(e.Path, ReasonCerts, false)
			}
		}
		return nil
	})
}

// usedUnder reports whether something under dir other than what leads to not is kept for the app.
func (c *closure) usedUnder(dir, not string) bool {
	for _, name := range c.ix.Children(dir) {
		p := path.Join(dir, name)
		if c.out.Keep[p] != nil && !strings.HasPrefix(not, p+"/") {
			return true
		}
	}
	return false
}

// keepBin keeps p with what it needs: an ELF file's interpreter and libraries are the closure's; a script's
// #! interpreter is kept here, also through /usr/bin/env NAME (looked up on the image's PATH).
func (c *closure) keepBin(p, why string, depth int) {
	if !c.keep(p, why, false) || depth > 4 {
		return
	}
	interp, arg := c.shebang(p)
	if interp == "" {
		return
	}
	c.keepBin(interp, ReasonShebang+":"+p, depth+1)
	if path.Base(interp) == "env" && arg != "" {
		if q, ok := c.tree.LookPath(arg); ok {
			c.keepBin(q, ReasonShebang+":"+p, depth+1)
		}
	}
}

// shebang reads the #! line of the file p: its interpreter, and the first word after it that is not an
// option (what /usr/bin/env runs).
func (c *closure) shebang(p string) (interp, arg string) {
	f, err := c.tree.Open(p)
	if err != nil {
		c.failed(err)
		return "", ""
	}
	defer f.Close()
	// The kernel reads at most 256 bytes of a #! line (BINPRM_BUF_SIZE).
	b := make([]byte, 256)
	n, err := io.ReadFull(f, b)
	if err != nil && n == 0 {
		return "", ""
	}
	line, ok := bytes.CutPrefix(b[:n], []byte("#!"))
	if !ok {
		return "", ""
	}
	line, _, _ = bytes.Cut(line, []byte("\n"))
	words := strings.Fields(string(line))
	if len(words) == 0 || !path.IsAbs(words[0]) {
		return "", ""
	}
	for _, w := range words[1:] {
		if !strings.HasPrefix(w, "-") {
			return words[0], w
		}
	}
	return words[0], ""
}

// sshClient keeps what the ssh client needs: its configuration, the users' ~/.ssh, its helpers and programs.
func (c *closure) sshClient() {
	for _, d := range sshDirs {
		c.keep(d, ReasonSSHClient, true)
	}
	if b, err := c.tree.ReadFile("/etc/passwd"); err != nil {
		c.failed(err)
	} else {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) < 7 || !path.IsAbs(f[5]) {
				continue
			}
			if shell := path.Base(f[6]); shell == "nologin" || shell == "false" || f[6] == "" {
				continue
			}
			c.keep(path.Join(f[5], ".ssh"), ReasonSSHClient, true)
		}
	}
	for _, name := range sshProgs {
		p, ok := c.tree.LookPath(name)
		if !ok {
			p = "/usr/bin/" + name
		}
		c.keepBin(p, ReasonSSHClient, 0)
	}
}

// netLib reports whether p is one of the resolver's libraries under a library directory.
func netLib(p string) bool {
	base := path.Base(p)
	if !strings.Contains(base, ".so") {
		return false
	}
	lib := false
	for _, l := range netLibs {
		if strings.HasPrefix(base, l+".so") || strings.HasPrefix(base, l+"-") {
			lib = true
		}
	}
	if !lib {
		return false
	}
	for _, d := range libRoots {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// lockFile reports whether p is under a lock directory.
func lockFile(p string) bool {
	for _, d := range lockDirs {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// Check says, on the unpacked image, that each program, directory and package o asks for is there: a typo
// is an error before the app is observed, not a slim image without the program after it was. The errors
// name the build flag that asks for it.
func (o *KeepOptions) Check(tree *Tree) error {
	for _, b := range o.Bins {
		if !tree.IsFile(b) {
			return fmt.Errorf("--include-bin %s: no such file in the image", b)
		}
	}
	for _, name := range o.Exes {
		if _, ok := tree.LookPath(name); !ok {
			return fmt.Errorf("--include-exe %s: no such program on the image's PATH", name)
		}
	}
	for _, d := range o.DirBins {
		if !tree.IsDir(d) {
			return fmt.Errorf("--include-dir-bins %s: no such directory in the image", d)
		}
		if len(tree.DirBins(d)) == 0 {
			return fmt.Errorf("--include-dir-bins %s: no executable or library there", d)
		}
	}
	for _, name := range o.NodePackages {
		if len(tree.NodePackageDirs(name)) == 0 {
			return fmt.Errorf("--include-node-package %s: no node_modules/%s/package.json in the image", name, name)
		}
	}
	if o.Workdir {
		switch wd := tree.Config.Config.WorkingDir; wd {
		case "":
			return fmt.Errorf("--include-workdir: the image has no WORKDIR")
		case "/":
			return fmt.Errorf("--include-workdir: the image's WORKDIR is /, which would keep the whole image")
		}
	}
	return nil
}
