package runner

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/rootfs"
)

// Attacks on the work directory by a local unprivileged user (uid 65534, a process of its own) in a
// directory anyone may write, as /dev/shm is: slimoci, as root, must neither use what the attacker made nor
// change anything of the victim's through it, and must say what is wrong in one line.

// attackBed is a world-writable sticky directory standing in for /dev/shm, and a victim directory of
// root's elsewhere with its fingerprint.
type attackBed struct {
	shm, victim, before string
}

func newAttackBed(t *testing.T) *attackBed {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the attacker runs as uid 65534: the test needs root to switch to it")
	}
	// Not t.TempDir: its parent is private, and the attacker must reach the directory.
	dir, err := os.MkdirTemp("", "slimoci-attack-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rootfs.RemoveTree(dir) })
	must(t, os.Chmod(dir, 0o755))
	b := &attackBed{shm: filepath.Join(dir, "shm"), victim: filepath.Join(dir, "victim")}
	must(t, os.Mkdir(b.shm, 0o755))
	must(t, os.Chmod(b.shm, os.ModeSticky|0o777))
	makeVictim(t, b.victim, 0)
	b.before = fingerprintOf(t, b.victim)
	return b
}

// makeVictim makes a directory worth attacking, owned by uid: a password file, a private directory, a
// symlink and a hardlink.
func makeVictim(t *testing.T, v string, uid int) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(v, "private"), 0o700))
	must(t, os.WriteFile(filepath.Join(v, "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(v, "private", "key"), []byte("secret"), 0o600))
	must(t, os.Symlink("passwd", filepath.Join(v, "link")))
	must(t, os.Link(filepath.Join(v, "passwd"), filepath.Join(v, "hardlink")))
	must(t, os.Chmod(filepath.Join(v, "private"), 0o700))
	filepath.Walk(v, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, uid) })
}

func fingerprintOf(t *testing.T, dir string) string {
	t.Helper()
	fp, err := testbed.Fingerprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// attack runs a shell script as the attacker, with $SHM, $VICTIM and $DEAD (a pid no process has) set.
func (b *attackBed) attack(t *testing.T, script string) {
	t.Helper()
	if _, err := testbed.RunAs(testbed.Nobody, "/bin/sh", "-euc", script, "attacker", b.shm, b.victim, strconv.Itoa(deadPid(t))); err != nil {
		t.Fatal(err)
	}
}

// The script's variables, as attack passes them.
const attackVars = `SHM=$1 VICTIM=$2 DEAD=$3; `

// deadPid is the pid of a process that has ended.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	must(t, cmd.Run())
	if !isDead(cmd.Process.Pid) {
		t.Skip("the pid of an ended process is in use already")
	}
	return cmd.Process.Pid
}

func (b *attackBed) checkVictim(t *testing.T) {
	t.Helper()
	if after := fingerprintOf(t, b.victim); after != b.before {
		t.Errorf("the victim changed:\nbefore:\n%s\nafter:\n%s", b.before, after)
	}
}

// checkOneLine checks that err is one line naming path and saying want.
func checkOneLine(t *testing.T, err error, path, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one about %s", path)
	}
	msg := err.Error()
	t.Log(msg)
	if strings.Contains(msg, "\n") || !strings.Contains(msg, path) || !strings.Contains(msg, want) || !errors.Is(err, ErrUnsafeWorkDir) {
		t.Errorf("error %q: want one line naming %s and saying %q (ErrUnsafeWorkDir)", msg, path, want)
	}
}

func TestPrivateDirAttacks(t *testing.T) {
	// The attacker's directory, made to look like slimoci's with a killed run's work directory in it whose
	// clean-up would follow symlinks to the victim and chmod on the way.
	const bait = `mkdir -p "$SHM/slimoci-0/.slimoci-work-$DEAD-x/rootfs/ro" "$SHM/slimoci-0/.slimoci-work-$DEAD-x/sandbox"
		ln -s "$VICTIM" "$SHM/slimoci-0/.slimoci-work-$DEAD-x/rootfs/etc"
		ln -s "$VICTIM/private" "$SHM/slimoci-0/.slimoci-work-$DEAD-x/rootfs/ro/private"
		ln -s "$VICTIM" "$SHM/slimoci-0/.slimoci-work-$DEAD-x/sandbox/rootfs"
		chmod 0555 "$SHM/slimoci-0/.slimoci-work-$DEAD-x/rootfs/ro"; `
	cases := []struct {
		name, attack string
		ours         os.FileMode // root makes slimoci-0 with this mode first, when not 0
		parentMode   os.FileMode // the parent's mode, when not 1777
		path, want   string      // in the one-line error ("" path: slimoci-0)
	}{
		{name: "slimoci-0 is a symlink to the victim", attack: `ln -s "$VICTIM" "$SHM/slimoci-0"`, want: "is a symlink"},
		{name: "slimoci-0 is a dangling symlink", attack: `ln -s "$SHM/nothing" "$SHM/slimoci-0"`, want: "is a symlink"},
		{name: "slimoci-0 is the attacker's directory holding bait", attack: bait + `chmod 0777 "$SHM/slimoci-0"`, want: "belongs to uid 65534"},
		{name: "slimoci-0 is the attacker's private directory", attack: bait + `chmod 0700 "$SHM/slimoci-0"`, want: "belongs to uid 65534"},
		{name: "slimoci-0 is a file", attack: `echo > "$SHM/slimoci-0"`, want: "is not a directory"},
		{name: "slimoci-0 is a fifo", attack: `mkfifo "$SHM/slimoci-0"`, want: "is not a directory"},
		{name: "slimoci-0 is ours but anyone may write it", ours: 0o777, want: "has mode 0777"},
		{name: "slimoci-0 is ours but others may read it", ours: 0o755, want: "has mode 0755"},
		{name: "the parent has no sticky bit", parentMode: 0o777, path: "shm", want: "without the sticky bit"},
		{name: "the parent is the attacker's", attack: `mkdir "$SHM/theirs"; chmod 1777 "$SHM/theirs"`, path: "shm/theirs", want: "belongs to uid 65534"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newAttackBed(t)
			if c.parentMode != 0 {
				must(t, os.Chmod(b.shm, c.parentMode))
			}
			if c.ours != 0 {
				must(t, os.Mkdir(filepath.Join(b.shm, "slimoci-0"), 0o700))
				must(t, os.Chmod(filepath.Join(b.shm, "slimoci-0"), c.ours))
			}
			if c.attack != "" {
				b.attack(t, attackVars+c.attack)
			}
			parent, path := b.shm, filepath.Join(b.shm, "slimoci-0")
			if c.path != "" {
				parent = filepath.Join(filepath.Dir(b.shm), c.path)
				path = parent
			}
			var before string
			if _, err := os.Lstat(path); err == nil {
				before = fingerprintOf(t, path)
			}
			got, err := PrivateDir(parent)
			checkOneLine(t, err, path, c.want)
			if got != "" {
				t.Errorf("PrivateDir returned %q with its error", got)
			}
			// A caller that skipped PrivateDir: the clean-up checks the directory too.
			if _, err := removeStale(filepath.Join(parent, "slimoci-0")); err == nil && c.path == "" {
				t.Errorf("removeStale used %s", path)
			}
			b.checkVictim(t)
			if before != "" && fingerprintOf(t, path) != before {
				t.Errorf("%s changed", path)
			}
		})
	}
	t.Run("slimoci-0 is ours and 0711", func(t *testing.T) {
		// What root's user-namespace sandboxes will need: search, no read or write.
		b := newAttackBed(t)
		must(t, os.Mkdir(filepath.Join(b.shm, "slimoci-0"), 0o700))
		must(t, os.Chmod(filepath.Join(b.shm, "slimoci-0"), 0o711))
		if p, err := PrivateDir(b.shm); err != nil || p != filepath.Join(b.shm, "slimoci-0") {
			t.Fatalf("PrivateDir: %q, %v", p, err)
		}
	})
	t.Run("slimoci-0 is made private", func(t *testing.T) {
		b := newAttackBed(t)
		old := unix.Umask(0)
		p, err := PrivateDir(b.shm)
		unix.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		must(t, unix.Lstat(p, &st))
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o7777 != PrivateDirMode || st.Uid != 0 {
			t.Errorf("%s: mode %o, uid %d", p, st.Mode, st.Uid)
		}
	})
	t.Run("a killed run's name planted beside slimoci-0", func(t *testing.T) {
		// Where work directories were before: the clean-up no longer looks there.
		b := newAttackBed(t)
		b.attack(t, attackVars+`mkdir -p "$SHM/.slimoci-work-$DEAD-x/ro"; ln -s "$VICTIM" "$SHM/.slimoci-work-$DEAD-x/etc"
			ln -s "$VICTIM/private" "$SHM/.slimoci-work-$DEAD-x/ro/private"; chmod 0555 "$SHM/.slimoci-work-$DEAD-x/ro"`)
		planted, _ := filepath.Glob(filepath.Join(b.shm, WorkPrefix+"*"))
		if len(planted) != 1 {
			t.Fatalf("planted: %v", planted)
		}
		before := fingerprintOf(t, planted[0])
		p, err := PrivateDir(b.shm)
		if err != nil {
			t.Fatal(err)
		}
		if removed, err := removeStale(p); err != nil || len(removed) > 0 {
			t.Errorf("removeStale: removed %v, %v", removed, err)
		}
		if fingerprintOf(t, planted[0]) != before {
			t.Errorf("the planted directory changed")
		}
		b.checkVictim(t)
	})
}

// The clean-up of a killed run inside slimoci's own directory: what an app or image left (symlinks to the
// victim, read-only directories, a bind mount of the victim, a tmpfs) goes, without following or crossing
// anything; live runs, and what slimoci did not make, stay.
func TestCleanStaleRemovesOnlyKilledRuns(t *testing.T) {
	b := newAttackBed(t)
	priv, err := PrivateDir(b.shm)
	if err != nil {
		t.Fatal(err)
	}
	dead := deadPid(t)
	killed := filepath.Join(priv, fmt.Sprintf("%s%d-killed", WorkPrefix, dead))
	for _, d := range []string{"rootfs/ro/sub", "sandbox/tmpfs", "sandbox/bind"} {
		must(t, os.MkdirAll(filepath.Join(killed, d), 0o755))
	}
	must(t, os.Symlink(b.victim, filepath.Join(killed, "rootfs", "etc")))
	must(t, os.Symlink(filepath.Join(b.victim, "private"), filepath.Join(killed, "rootfs", "ro", "sub", "private")))
	must(t, os.Chmod(filepath.Join(killed, "rootfs", "ro", "sub"), 0o500))
	must(t, os.Chmod(filepath.Join(killed, "rootfs", "ro"), 0))
	live := []string{
		filepath.Join(priv, fmt.Sprintf("%s%d-running", WorkPrefix, os.Getpid())),
		filepath.Join(priv, fmt.Sprintf("%s1-init", WorkPrefix)),
		filepath.Join(priv, "not-a-work-directory"),
	}
	for _, d := range live {
		must(t, os.Mkdir(d, 0o700))
	}
	link := filepath.Join(priv, fmt.Sprintf("%s%d-link", WorkPrefix, dead))
	must(t, os.Symlink(b.victim, link))
	err = testbed.InMountNamespace(func() error {
		// What the sandbox of a killed slimoci leaves mounted in the host's namespace.
		if err := unix.Mount("tmpfs", filepath.Join(killed, "sandbox", "tmpfs"), "tmpfs", 0, "size=1m"); err != nil {
			return err
		}
		if err := unix.Mount(b.victim, filepath.Join(killed, "sandbox", "bind"), "", unix.MS_BIND, ""); err != nil {
			return err
		}
		removed, err := removeStale(priv)
		if err != nil || len(removed) != 1 || removed[0] != killed {
			t.Errorf("removeStale: removed %v, %v; want %s", removed, err, killed)
		}
		mi, _ := os.ReadFile("/proc/thread-self/mountinfo")
		if strings.Contains(string(mi), killed) {
			t.Errorf("still mounted under %s:\n%s", killed, mi)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(killed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed run's directory is still there: %v", err)
	}
	for _, p := range append(live, link) {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	b.checkVictim(t)
}

// The same attacks on /dev/shm itself: a killed run's name planted there (where work directories were
// before) is left alone, and a squatted slimoci-UID is refused. The squat targets uid 65533, whom the test
// runs as, rather than root: root's /dev/shm/slimoci-0 is in use by every slimoci run as root on the
// machine.
func TestWorkDirAttacksOnDevShm(t *testing.T) {
	const shm, squatted = "/dev/shm", 65533
	if os.Getenv("SLIMOCI_SQUAT_CHILD") == "1" {
		_, err := PrivateDir(shm)
		checkOneLine(t, err, filepath.Join(shm, fmt.Sprintf("slimoci-%d", squatted)), os.Getenv("SLIMOCI_SQUAT_WANT"))
		return
	}
	var st unix.Statfs_t
	if unix.Statfs(shm, &st) != nil || st.Type != unix.TMPFS_MAGIC {
		t.Skip("/dev/shm is not a tmpfs here")
	}
	b := newAttackBed(t)
	b.shm = shm

	t.Run("a killed run's name planted in /dev/shm", func(t *testing.T) {
		dead := deadPid(t)
		planted := filepath.Join(shm, fmt.Sprintf("%s%d-bait", WorkPrefix, dead))
		defer rootfs.RemoveTree(planted)
		if _, err := testbed.RunAs(testbed.Nobody, "/bin/sh", "-euc", `mkdir -p "$1/ro"; ln -s "$2" "$1/etc"; ln -s "$2/private" "$1/ro/private"; chmod 0555 "$1/ro"`,
			"attacker", planted, b.victim); err != nil {
			t.Fatal(err)
		}
		before := fingerprintOf(t, planted)
		priv, err := PrivateDir(shm)
		if err != nil {
			t.Fatal(err)
		}
		if removed, err := removeStale(priv); err != nil || len(removed) > 0 {
			t.Errorf("removeStale: removed %v, %v", removed, err)
		}
		if fingerprintOf(t, planted) != before {
			t.Errorf("%s changed", planted)
		}
		b.checkVictim(t)
	})

	for _, c := range []struct{ name, attack, want string }{
		{"a symlink to the victim", `ln -s "$2" "$1"`, "is a symlink"},
		{"the attacker's directory", `mkdir "$1"; chmod 0777 "$1"`, "belongs to uid 65534"},
	} {
		t.Run("slimoci-65533 squatted: "+c.name, func(t *testing.T) {
			p := filepath.Join(shm, fmt.Sprintf("slimoci-%d", squatted))
			var st unix.Stat_t
			if unix.Lstat(p, &st) == nil {
				if st.Uid != testbed.Nobody && st.Mode&unix.S_IFMT != unix.S_IFLNK {
					t.Skipf("%s is in use", p)
				}
				rootfs.RemoveTree(p) // an earlier run's attack
			}
			defer rootfs.RemoveTree(p)
			// The victim is the user's own: slimoci running as that user could change it.
			victim, err := os.MkdirTemp(filepath.Dir(b.victim), "victim-of-"+strconv.Itoa(squatted)+"-")
			must(t, err)
			makeVictim(t, victim, squatted)
			before := fingerprintOf(t, victim)
			if _, err := testbed.RunAs(testbed.Nobody, "/bin/sh", "-euc", c.attack, "attacker", p, victim); err != nil {
				t.Fatal(err)
			}
			cmd, dir, err := testbed.SelfAs(squatted, "^TestWorkDirAttacksOnDevShm$", "SLIMOCI_SQUAT_CHILD=1", "SLIMOCI_SQUAT_WANT="+c.want)
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestWorkDirAttacksOnDevShm") {
				t.Fatalf("as uid %d: %v\n%s", squatted, err, out)
			}
			if after := fingerprintOf(t, victim); after != before {
				t.Errorf("the victim changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}
