package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/slimoci/slimoci/rootfs"
)

// KeepFlags say what the slim image keeps besides what the app used: docker-slim's and mint's keep and
// exclude flags, with slimoci's semantics (what the app wrote is never kept; a kept path is always as the
// image has it). Missing programs, directories and packages are errors before the app is run.
type KeepFlags struct {
	IncludePath      []string `help:"Keep this path (a file, a whole directory, or a glob: path.Match syntax, ** for any directories) whatever the app did (repeatable; wins with --exclude-path over everything else)." sep:"none" placeholder:"PATH"`
	IncludePathFile  string   `help:"Keep the paths of this file as --include-path does: one a line; blank lines and # comments skipped." type:"path" placeholder:"FILE"`
	PreservePath     []string `help:"As --include-path: a kept path is always as the image has it (what the app wrote never reaches the slim image), so mint's preserving is what every kept path gets (repeatable)." sep:"none" placeholder:"PATH"`
	PreservePathFile string   `help:"As --include-path-file." type:"path" placeholder:"FILE"`
	IncludeBin       []string `help:"Keep this executable or shared library (an absolute path in the image) with what it needs: its ELF interpreter and libraries, a script's #! interpreter (repeatable)." sep:"none" placeholder:"PATH"`
	IncludeBinFile   string   `help:"File of --include-bin paths, one a line." type:"path" placeholder:"FILE"`
	IncludeExe       []string `help:"Keep the program NAME found on the image's PATH, as --include-bin does (repeatable)." sep:"none" placeholder:"NAME"`
	IncludeExeFile   string   `help:"File of --include-exe names, one a line." type:"path" placeholder:"FILE"`
	IncludeDirBins   []string `help:"Keep every ELF file (executable, shared library) under this directory of the image, as --include-bin does; other files are left out (repeatable)." sep:"none" placeholder:"DIR"`
	IncludeShell     bool     `help:"Keep the image's /bin/sh and what it needs."`
	IncludeWorkdir   bool     `help:"Keep the image's WORKDIR whole (without it, only the directory and what the app used there)."`
	IncludeZoneinfo  bool     `help:"Keep /etc/localtime, /etc/timezone and the zoneinfo directories (/usr/share/zoneinfo, ..., the image's TZDIR)."`
	IncludeSSHClient bool     `name:"include-ssh-client" help:"Keep the ssh client: /etc/ssh, the ~/.ssh of users with a login shell, /usr/lib/openssh and ssh, ssh-add, ssh-agent, ssh-keygen, ssh-keyscan, ssh-argv0, ssh-copy-id."`
	IncludeOSLibsNet bool     `name:"include-oslibs-net" help:"Keep what name lookups need even when the run made none: /etc/resolv.conf, /etc/nsswitch.conf, /etc/host.conf and the libnss_dns, libnss_files and libresolv libraries." default:"true" negatable:""`
	IncludeCertAll   bool     `help:"Keep the CA certificates: the bundles (/etc/ssl/certs/ca-certificates.crt, ...), the certificate directories (/etc/ssl/certs, /usr/share/ca-certificates, ...) and a certifi package's bundle beside the packages the app used; never private keys." default:"true" negatable:""`
	IncludeCerts     bool     `help:"slimoci's older name for --include-cert-all (--no-include-certs drops them)." default:"true" negatable:""`
	// Narrowing --include-cert-all, as mint's (where --include-cert-all wins over them).
	IncludeCertBundlesOnly bool     `help:"Keep only the CA bundle files (and certifi's), not the certificate directories."`
	IncludeCertDirs        bool     `help:"Keep only the certificate directories, whole, not certifi's bundles."`
	IncludeCertPKAll       bool     `name:"include-cert-pk-all" help:"Also keep the private keys: the key directories (/etc/ssl/private, /etc/pki/tls/private, /etc/letsencrypt/live, ...) and CA key files. They end up in the slim image: only for an image meant to carry them."`
	IncludeCertPKDirs      bool     `name:"include-cert-pk-dirs" help:"As --include-cert-pk-all (the CA key files are in those directories)."`
	IncludeNodePackage     []string `help:"Keep every node_modules/NAME directory of the image whole (repeatable; @scope/name too)." sep:"none" placeholder:"NAME"`
	IncludeLastImageLayers int      `help:"Keep every path the image's last N layers wrote (the app's own layers, typically); N over the layer count keeps them all." placeholder:"N"`
	IncludePathsReport     string   `name:"include-paths-creport-file" help:"Keep the paths an earlier run recorded: slimoci profile's or build's report.json (with how each was used, kept as observed paths are), or mint's creport.json (image.files)." type:"path" placeholder:"FILE"`
	ExcludePath            []string `help:"Drop paths matching this glob (** for any directories), and what is under them, whatever else says (repeatable)." sep:"none" placeholder:"GLOB"`
	ExcludePattern         []string `help:"As --exclude-path (mint's name)." sep:"none" placeholder:"GLOB"`
	ExcludeVarlockFiles    bool     `help:"Drop the image's files under /var/lock and /run/lock (stale locks of its build; the directories stay)." default:"true" negatable:""`
	PackageDB              bool     `name:"package-db" help:"Keep the package database in the slim image, pruned: dpkg's status and file lists, apk's installed, the language packages' metadata, listing only the packages that still have a file in the image and only the files it has (versions, architectures, sources unchanged), so that dpkg -l, dpkg -S, apk info and scanners see what it ships." default:"true" negatable:""`
	ExcludeMounts          bool     `help:"Leave a --mount's files out of the slim image: always so in slimoci (they are not the image's), so --no-exclude-mounts is refused." default:"true" negatable:""`
}

// keepPlan is what the keep flags ask for, read and checked before the image is pulled.
type keepPlan struct {
	include, exclude []string
	certs, shell     bool
	// packageDB is --package-db: the library's BuildOptions.NoPackageDB is its negation.
	packageDB bool
	opts      rootfs.KeepOptions
}

// plan reads the keep flags' files and checks every value and combination.
func (k *KeepFlags) plan() (*keepPlan, error) {
	p := &keepPlan{}
	if !k.ExcludeMounts {
		return nil, fmt.Errorf("--no-exclude-mounts: a --mount's files are not the image's, and slimoci never puts them in the slim image (copy them into the image first)")
	}
	if k.IncludeCertBundlesOnly && k.IncludeCertDirs {
		return nil, fmt.Errorf("--include-cert-bundles-only keeps only the bundles, --include-cert-dirs only the directories: give one of them, or neither to keep both (--include-cert-all, the default)")
	}
	if k.IncludeLastImageLayers < 0 {
		return nil, fmt.Errorf("--include-last-image-layers %d: want a number of layers, 0 or more", k.IncludeLastImageLayers)
	}
	lists := []struct {
		flag  string
		items []string
		file  string
		dst   *[]string
		check func(flag, v string) error
	}{
		{"--include-path", k.IncludePath, k.IncludePathFile, &p.include, globArg},
		{"--preserve-path", k.PreservePath, k.PreservePathFile, &p.include, globArg},
		{"--include-bin", k.IncludeBin, k.IncludeBinFile, &p.opts.Bins, absArg},
		{"--include-exe", k.IncludeExe, k.IncludeExeFile, &p.opts.Exes, nameArg},
		{"--include-dir-bins", k.IncludeDirBins, "", &p.opts.DirBins, absArg},
		{"--include-node-package", k.IncludeNodePackage, "", &p.opts.NodePackages, packageArg},
		{"--exclude-path", k.ExcludePath, "", &p.exclude, globArg},
		{"--exclude-pattern", k.ExcludePattern, "", &p.exclude, globArg},
	}
	for _, l := range lists {
		for _, v := range l.items {
			if err := l.check(l.flag, v); err != nil {
				return nil, err
			}
			*l.dst = append(*l.dst, v)
		}
		if l.file == "" {
			continue
		}
		fileFlag := l.flag + "-file"
		lines, err := readLines(fileFlag, l.file)
		if err != nil {
			return nil, err
		}
		for _, line := range lines {
			if mintPerms.MatchString(line.text) {
				return nil, fmt.Errorf("%s %s, line %d: %q sets a mode or owner (mint's PATH:MODE#UID#GID): slimoci keeps the image's", fileFlag, l.file, line.n, line.text)
			}
			if err := l.check(fmt.Sprintf("%s %s, line %d:", fileFlag, l.file, line.n), line.text); err != nil {
				return nil, err
			}
			*l.dst = append(*l.dst, line.text)
		}
	}
	if k.IncludePathsReport != "" {
		paths, err := readPathsReport(k.IncludePathsReport)
		if err != nil {
			return nil, fmt.Errorf("--include-paths-creport-file %s: %w", k.IncludePathsReport, err)
		}
		p.opts.Report, p.opts.ReportName = paths, k.IncludePathsReport
	}
	// --include-cert-bundles-only and --include-cert-dirs narrow --include-cert-all, on by default; turning it
	// off (under either name) keeps what they ask for, as mint.
	p.certs = k.IncludeCertAll && k.IncludeCerts && !k.IncludeCertBundlesOnly && !k.IncludeCertDirs
	p.opts.CertBundles, p.opts.CertDirs = k.IncludeCertBundlesOnly, k.IncludeCertDirs
	p.opts.CertKeys = k.IncludeCertPKAll || k.IncludeCertPKDirs
	p.shell, p.packageDB = k.IncludeShell, k.PackageDB
	p.opts.Workdir, p.opts.Zoneinfo, p.opts.SSHClient = k.IncludeWorkdir, k.IncludeZoneinfo, k.IncludeSSHClient
	p.opts.OSLibsNet, p.opts.ExcludeVarLock = k.IncludeOSLibsNet, k.ExcludeVarlockFiles
	p.opts.LastLayers = k.IncludeLastImageLayers
	return p, nil
}

// closure is what the plan keeps, as the library's closure options (Build fills in the rest).
func (p *keepPlan) closure() rootfs.ClosureOptions {
	return rootfs.ClosureOptions{Include: p.include, Exclude: p.exclude, Certs: p.certs, IncludeShell: p.shell, Keep: p.opts}
}

// mintPerms is the suffix mint's path files may give a path: :MODE, :MODE#UID or :MODE#UID#GID.
var mintPerms = regexp.MustCompile(`:[0-7]{3,4}(#[0-9]+){0,2}$`)

func absArg(flag, v string) error {
	if !path.IsAbs(v) {
		return fmt.Errorf("%s %q: want an absolute path in the image", flag, v)
	}
	return nil
}

func globArg(flag, v string) error {
	if !strings.HasPrefix(v, "/") {
		return fmt.Errorf("%s %q: include and exclude paths are absolute", flag, v)
	}
	if !rootfs.ValidGlob(v) {
		return fmt.Errorf("%s %q: syntax error in pattern", flag, v)
	}
	return nil
}

func nameArg(flag, v string) error {
	if v == "" || strings.Contains(v, "/") {
		return fmt.Errorf("%s %q: want a program name, looked up on the image's PATH (a path is --include-bin's)", flag, v)
	}
	return nil
}

func packageArg(flag, v string) error {
	if v == "" || strings.HasPrefix(v, "/") || strings.HasPrefix(v, ".") || strings.Count(v, "/") > 1 || (strings.Contains(v, "/") && !strings.HasPrefix(v, "@")) {
		return fmt.Errorf("%s %q: want a node.js package name (name or @scope/name)", flag, v)
	}
	return nil
}

type line struct {
	n    int
	text string
}

// readLines reads a flag's file of one value a line, blank lines and # comments skipped.
func readLines(flag, file string) ([]line, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		if t := strings.TrimSpace(sc.Text()); t != "" && !strings.HasPrefix(t, "#") {
			out = append(out, line{n, t})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, file, err)
	}
	return out, nil
}

// readPathsReport reads the paths an earlier run recorded, telling the formats apart by their fields:
// slimoci profile's report.json (record.files: each path with its ops), build's (fat.record.files, and what
// verify added back), or mint's creport.json (image.files[].file_path, no ops).
func readPathsReport(file string) (map[string][]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	type record struct {
		Files map[string][]string `json:"files"`
	}
	var r struct {
		Record *record `json:"record"`
		Fat    *struct {
			Record *record `json:"record"`
		} `json:"fat"`
		Added []string        `json:"addedByVerify"`
		Image json.RawMessage `json:"image"` // slimoci's is the image's name, mint's an object
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("not a JSON report: %w", err)
	}
	paths := map[string][]string{}
	switch {
	case r.Record != nil && r.Record.Files != nil:
		paths = r.Record.Files
	case r.Fat != nil && r.Fat.Record != nil && r.Fat.Record.Files != nil:
		paths = r.Fat.Record.Files
		for _, p := range r.Added {
			paths[p] = append(paths[p], "verify")
		}
	case bytes.HasPrefix(bytes.TrimSpace(r.Image), []byte("{")):
		var mint struct {
			Files []*struct {
				FilePath string `json:"file_path"`
			} `json:"files"`
		}
		if err := json.Unmarshal(r.Image, &mint); err != nil || mint.Files == nil {
			return nil, fmt.Errorf("a creport.json without image.files")
		}
		for _, f := range mint.Files {
			if f != nil && f.FilePath != "" {
				paths[f.FilePath] = nil
			}
		}
	default:
		return nil, fmt.Errorf("neither slimoci's report.json (record.files, fat.record.files) nor mint's creport.json (image.files)")
	}
	for p := range paths {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("path %q is not absolute", p)
		}
	}
	return paths, nil
}
