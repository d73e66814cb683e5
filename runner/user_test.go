package runner

import (
	"slices"
	"strings"
	"testing"
)

func TestResolveUser(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\napp:x:1000:1000::/home/app:/bin/sh\nnohome:x:1001:1001::\n")
	group := []byte("root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:app\n# a comment\naudio:x:29:app,other\n")
	for _, tc := range []struct {
		spec    string
		want    User
		wantErr string // a part of the error, "" for none
	}{
		{"", User{UID: 0, GID: 0, Home: "/root"}, ""},
		{"root", User{UID: 0, GID: 0, Home: "/root"}, ""},
		{"app", User{UID: 1000, GID: 1000, Groups: []int{50, 29}, Home: "/home/app"}, ""},
		{"1000", User{UID: 1000, GID: 1000, Groups: []int{50, 29}, Home: "/home/app"}, ""},
		{"app:staff", User{UID: 1000, GID: 50, Groups: []int{29}, Home: "/home/app"}, ""},
		{"1000:50", User{UID: 1000, GID: 50, Groups: []int{29}, Home: "/home/app"}, ""},
		{"app:4343", User{UID: 1000, GID: 4343, Groups: []int{50, 29}, Home: "/home/app"}, ""},
		{"4242:4343", User{UID: 4242, GID: 4343, Home: "/"}, ""},
		{"4242", User{UID: 4242, GID: 0, Home: "/"}, ""},
		{"4242:staff", User{UID: 4242, GID: 50, Home: "/"}, ""},
		{":staff", User{UID: 0, GID: 50, Home: "/root"}, ""},
		{"nobody:1000", User{UID: 65534, GID: 1000, Home: "/nonexistent"}, ""},
		{"nohome", User{UID: 1001, GID: 1001, Home: "/"}, ""},
		{"ghost", User{}, `user "ghost" is not in the image's /etc/passwd`},
		{"ghost:staff", User{}, `user "ghost" is not in the image's /etc/passwd`},
		{"app:ghosts", User{}, `group "ghosts" is not in the image's /etc/group`},
		{"-1", User{}, "must be in range"},
		{"app:-1", User{}, "must be in range"},
		{"4294967296", User{}, "must be in range"},
		{"app:staff:x", User{}, "more than one ':'"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ResolveUser(tc.spec, passwd, group)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.UID != tc.want.UID || got.GID != tc.want.GID || got.Home != tc.want.Home || !slices.Equal(got.Groups, tc.want.Groups) {
				t.Fatalf("%+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestResolveUserNoFiles: an image without /etc/passwd or /etc/group runs numeric users only.
func TestResolveUserNoFiles(t *testing.T) {
	got, err := ResolveUser("4242:4343", nil, nil)
	if err != nil || got.UID != 4242 || got.GID != 4343 || got.Home != "/" || len(got.Groups) != 0 {
		t.Fatalf("%+v, %v", got, err)
	}
	if _, err := ResolveUser("app", nil, nil); err == nil || !strings.Contains(err.Error(), `"app" is not in the image's /etc/passwd`) {
		t.Fatalf("error %v", err)
	}
	if _, err := ResolveUser("0:staff", nil, nil); err == nil || !strings.Contains(err.Error(), `"staff" is not in the image's /etc/group`) {
		t.Fatalf("error %v", err)
	}
}

// TestResolveUserLongLine: moby's passwd parser reads lines of up to 64 KiB (bufio.Scanner's token); a
// longer one (the files themselves are bounded by rootfs.MaxReadFile) fails the lookup, naming the user.
func TestResolveUserLongLine(t *testing.T) {
	passwd := []byte("app:x:1000:1000:" + strings.Repeat("g", 70<<10) + ":/home/app:/bin/sh\n")
	_, err := ResolveUser("app", passwd, nil)
	if err == nil || !strings.Contains(err.Error(), `resolving user "app"`) {
		t.Fatalf("error %v", err)
	}
}
