package runner

import (
	"fmt"
	"strconv"
	"strings"
)

// User is who the app runs as.
type User struct {
	UID, GID int
	Groups   []int
	Home     string
}

// ResolveUser resolves an image's USER ("", "name", "uid", "name:group", "uid:gid"...) through the image's
// own /etc/passwd and /etc/group (their contents; either may be empty), as runtimes do: a numeric id needs
// no entry, a name does; supplementary groups are the groups that list the user.
func ResolveUser(spec string, passwd, group []byte) (User, error) {
	u := User{Home: "/"}
	name, grp, hasGroup := strings.Cut(spec, ":")
	if name == "" {
		name = "0"
	}
	userName := ""
	if id, err := strconv.Atoi(name); err == nil {
		u.UID = id
		for _, f := range entries(passwd, 7) {
			if f[2] == name {
				userName, u.GID, u.Home = f[0], atoi(f[3]), f[5]
				break
			}
		}
	} else {
		found := false
		for _, f := range entries(passwd, 7) {
			if f[0] == name {
				userName, u.UID, u.GID, u.Home, found = f[0], atoi(f[2]), atoi(f[3]), f[5], true
				break
			}
		}
		if !found {
			return User{}, fmt.Errorf("user %q is not in the image's /etc/passwd", name)
		}
	}
	if hasGroup {
		if id, err := strconv.Atoi(grp); err == nil {
			u.GID = id
		} else {
			found := false
			for _, f := range entries(group, 4) {
				if f[0] == grp {
					u.GID, found = atoi(f[2]), true
					break
				}
			}
			if !found {
				return User{}, fmt.Errorf("group %q is not in the image's /etc/group", grp)
			}
		}
	}
	if userName != "" {
		for _, f := range entries(group, 4) {
			for _, m := range strings.Split(f[3], ",") {
				if m == userName && atoi(f[2]) != u.GID {
					u.Groups = append(u.Groups, atoi(f[2]))
				}
			}
		}
	}
	return u, nil
}

func entries(b []byte, fields int) [][]string {
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < fields {
			continue
		}
		out = append(out, f)
	}
	return out
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
