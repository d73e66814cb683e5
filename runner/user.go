package runner

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/sys/user"
)

// User is who the app runs as.
type User struct {
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	Groups []int  `json:"groups,omitempty"`
	Home   string `json:"home"`
}

// ResolveUser resolves an image's USER ("", "name", "uid", "name:group", "uid:gid"...) through the image's
// own /etc/passwd and /etc/group (their contents, read bounded by the caller: rootfs.MaxReadFile; either may
// be empty), with moby/sys/user's GetExecUser, the parser docker and runc use: a numeric id needs no entry, a
// name does; ids are 0 to 2^31-1. The supplementary groups are the groups that list the user, but its
// primary one, whether or not USER names a group (docker adds them only when it names none). HOME is "/"
// when the user has no entry or the entry has none.
func ResolveUser(spec string, passwd, group []byte) (User, error) {
	if strings.Count(spec, ":") > 1 {
		// GetExecUser would ignore what follows the second colon.
		return User{}, fmt.Errorf("user %q: more than one ':' (USER is user[:group])", spec)
	}
	name, _, hasGroup := strings.Cut(spec, ":")
	eu, err := execUser(spec, passwd, group)
	if err != nil {
		return User{}, err
	}
	sgids := eu.Sgids
	if hasGroup {
		// GetExecUser lists the groups naming the user only for a USER without a group.
		implicit, err := execUser(name, passwd, group)
		if err != nil {
			return User{}, err
		}
		sgids = implicit.Sgids
	}
	u := User{UID: eu.Uid, GID: eu.Gid, Home: eu.Home}
	if u.Home == "" {
		u.Home = "/"
	}
	for _, g := range sgids {
		if g != u.GID {
			u.Groups = append(u.Groups, g)
		}
	}
	return u, nil
}

// execUser runs GetExecUser over the files' contents and names in its errors what the image lacks.
func execUser(spec string, passwd, group []byte) (*user.ExecUser, error) {
	eu, err := user.GetExecUser(spec, &user.ExecUser{Home: "/"}, bytes.NewReader(passwd), bytes.NewReader(group))
	name, grp, _ := strings.Cut(spec, ":")
	switch {
	case errors.Is(err, user.ErrNoPasswdEntries):
		return nil, fmt.Errorf("user %q is not in the image's /etc/passwd", name)
	case errors.Is(err, user.ErrNoGroupEntries):
		return nil, fmt.Errorf("group %q is not in the image's /etc/group", grp)
	case errors.Is(err, user.ErrRange):
		return nil, fmt.Errorf("user %q: %w", spec, err)
	case err != nil:
		return nil, fmt.Errorf("resolving user %q in the image's /etc/passwd and /etc/group: %w", spec, err)
	}
	return eu, nil
}
