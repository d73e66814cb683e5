package runner

import (
	"slices"
	"testing"
)

func TestResolveUser(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\napp:x:1000:1000::/home/app:/bin/sh\n")
	group := []byte("root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:app\naudio:x:29:app,other\n")
	for _, tc := range []struct {
		spec    string
		want    User
		wantErr bool
	}{
		{"", User{UID: 0, GID: 0, Home: "/root"}, false},
		{"root", User{UID: 0, GID: 0, Home: "/root"}, false},
		{"app", User{UID: 1000, GID: 1000, Groups: []int{50, 29}, Home: "/home/app"}, false},
		{"1000", User{UID: 1000, GID: 1000, Groups: []int{50, 29}, Home: "/home/app"}, false},
		{"app:staff", User{UID: 1000, GID: 50, Groups: []int{29}, Home: "/home/app"}, false},
		{"4242:4343", User{UID: 4242, GID: 4343, Home: "/"}, false},
		{"nobody:1000", User{UID: 65534, GID: 1000, Home: "/nonexistent"}, false},
		{"ghost", User{}, true},
		{"app:ghosts", User{}, true},
	} {
		got, err := ResolveUser(tc.spec, passwd, group)
		if tc.wantErr != (err != nil) {
			t.Fatalf("%q: error %v", tc.spec, err)
		}
		if err == nil && (got.UID != tc.want.UID || got.GID != tc.want.GID || got.Home != tc.want.Home || !slices.Equal(got.Groups, tc.want.Groups)) {
			t.Fatalf("%q: %+v, want %+v", tc.spec, got, tc.want)
		}
	}
}
