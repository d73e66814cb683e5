package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Whatever the app answers, slimoci dials no host but the app's loopback, and publishes on the host's
// loopback only, also for a library caller that skips the CLI's parsing.
func TestSandboxDialsAndPublishesLoopbackOnly(t *testing.T) {
	s := &Sandbox{}
	for _, addr := range []string{"10.0.0.1:80", "localhost:8080", "evil.example:22", "[2001:db8::1]:80", "0.0.0.0:80", "127.0.0.1"} {
		if _, err := s.Dial(context.Background(), "tcp", addr); err == nil {
			t.Errorf("Dial(%q) went ahead", addr)
		}
	}
	for _, ip := range []string{"0.0.0.0", "192.0.2.1", "", "localhost"} {
		if _, _, err := s.publish(context.Background(), []PortMapping{{HostIP: ip, Port: 8080}}); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("publishing on %q: %v, want ErrNotLoopback", ip, err)
		}
	}
}

// A --volume's mode comes from the image's directory with the image's symlinks resolved inside the tree:
// an image whose /a is a symlink to a host directory does not make slimoci read the host's.
func TestVolumeModeStaysInTheTree(t *testing.T) {
	host := t.TempDir()
	if err := os.Mkdir(filepath.Join(host, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(host, "sub"), 0o700)
	tree := t.TempDir()
	if err := os.Symlink(host, filepath.Join(tree, "a")); err != nil {
		t.Fatal(err)
	}
	m := (&Sandbox{tree: tree, rootless: true}).volumeMount("/a/sub")
	if slices.Contains(m.Options, "mode=700") || !slices.Contains(m.Options, "mode=755") {
		t.Errorf("the volume's options %v: the host directory's mode leaked (want the default 755: the tree has no /a/sub)", m.Options)
	}
}
