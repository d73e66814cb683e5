package runner

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// HostEntry is a line the sandbox's /etc/hosts gets besides localhost and the hostname (--etc-hosts-map).
type HostEntry struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
}

// ParseHostEntry reads mint's --etc-hosts-map HOST:IP (docker's --add-host; HOST=IP too, and an IPv6
// address with or without brackets: the name ends at the first separator).
func ParseHostEntry(s string) (HostEntry, error) {
	i := strings.IndexAny(s, ":=")
	if i < 0 {
		return HostEntry{}, fmt.Errorf("--etc-hosts-map %q: want HOST:IP", s)
	}
	name, ip := s[:i], strings.TrimSuffix(strings.TrimPrefix(s[i+1:], "["), "]")
	if err := CheckHostname(name); err != nil {
		return HostEntry{}, fmt.Errorf("--etc-hosts-map %q: %w", s, err)
	}
	addr := net.ParseIP(ip)
	if addr == nil {
		return HostEntry{}, fmt.Errorf("--etc-hosts-map %q: %q is not an IP address", s, ip)
	}
	return HostEntry{Name: name, IP: addr.String()}, nil
}

// CheckHostname checks a host name as sethostname(2) and RFC 1123 take it: at most 64 characters, dot-separated
// labels of letters, digits and inner hyphens, each at most 63.
func CheckHostname(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("host name %q: want 1 to 64 characters", s)
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host name %q: not a valid name (dot-separated labels of letters, digits and inner hyphens)", s)
		}
		for _, r := range label {
			if r > unicode.MaxASCII || !(r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return fmt.Errorf("host name %q: %q is not a letter, digit or hyphen", s, r)
			}
		}
	}
	return nil
}

// MaxEnvFileBytes bounds an --env-file (it is read whole).
const MaxEnvFileBytes = 1 << 20

// ReadEnvFile reads an --env-file as docker's: one NAME=VALUE a line, the value as it is (no quotes
// removed, no expansion), lines starting with # and blank lines skipped, leading blanks and a CRLF's CR
// dropped. A line with a name only is refused (docker would read the host's variable: slimoci passes
// nothing of its own environment to the app).
func ReadEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxEnvFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--env-file %s: %w", path, err)
	}
	if len(b) > MaxEnvFileBytes {
		return nil, fmt.Errorf("--env-file %s: over %d KiB", path, MaxEnvFileBytes>>10)
	}
	var env []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, MaxEnvFileBytes+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(strings.TrimLeftFunc(sc.Text(), unicode.IsSpace), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("--env-file %s:%d: %q has no value (want NAME=VALUE)", path, n, name)
		case name == "" || strings.ContainsFunc(name, unicode.IsSpace):
			return nil, fmt.Errorf("--env-file %s:%d: %q is not a variable name (want NAME=VALUE)", path, n, name)
		case strings.ContainsRune(line, 0):
			return nil, fmt.Errorf("--env-file %s:%d: a NUL byte", path, n)
		}
		env = append(env, line)
	}
	return env, sc.Err()
}

// ParseVolume reads mint's --volume: DIR is an anonymous volume (Spec.Volumes); SRC:DST[:ro|rw] binds a
// host path, as --mount (docker's -v takes both).
func ParseVolume(s string) (dir string, bind *Mount, err error) {
	if strings.Contains(s, ":") {
		m, err := ParseMount(s)
		if err != nil {
			return "", nil, fmt.Errorf("--volume: %w", err)
		}
		return "", &m, nil
	}
	if !filepath.IsAbs(s) {
		return "", nil, fmt.Errorf("--volume %q: want /container/path (an anonymous volume) or /host/path:/container/path[:ro]", s)
	}
	return filepath.Clean(s), nil, nil
}
