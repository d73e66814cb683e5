package oci

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func desc(hex string, p *v1.Platform) v1.Descriptor {
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(hex, 64)}, Platform: p}
}

func TestChoosePlatform(t *testing.T) {
	amd := desc("1", &v1.Platform{OS: "linux", Architecture: "amd64"})
	arm64 := desc("2", &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
	armv7 := desc("3", &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"})
	armv6 := desc("4", &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"})
	attest := desc("5", &v1.Platform{OS: "unknown", Architecture: "unknown"})
	win := desc("6", &v1.Platform{OS: "windows", Architecture: "amd64"})
	all := []v1.Descriptor{attest, win, amd, arm64, armv6, armv7}

	for _, tc := range []struct {
		name    string
		list    []v1.Descriptor
		want    string
		pick    v1.Descriptor
		errHas  string
		wantErr bool
	}{
		{name: "amd64", list: all, want: "linux/amd64", pick: amd},
		{name: "arm64 without variant", list: all, want: "linux/arm64", pick: arm64},
		{name: "arm64 v8", list: all, want: "linux/arm64/v8", pick: arm64},
		{name: "arm v7", list: all, want: "linux/arm/v7", pick: armv7},
		{name: "arm v6", list: all, want: "linux/arm/v6", pick: armv6},
		{name: "windows", list: all, want: "windows/amd64", pick: win},
		{name: "missing lists the others", list: all, want: "linux/s390x", wantErr: true, errHas: "available: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, windows/amd64"},
		{name: "attestations are never chosen", list: []v1.Descriptor{attest}, want: "unknown/unknown", wantErr: true, errHas: "names no platforms"},
		{name: "arm v5 not there", list: all, want: "linux/arm/v5", wantErr: true, errHas: "linux/arm/v5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := ParsePlatform(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ChoosePlatform(tc.list, want)
			if tc.wantErr {
				if !errors.Is(err, ErrPlatform) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %v, want one with %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != tc.pick.Digest {
				t.Fatalf("picked %s, want %s", platformString(got.Platform), platformString(tc.pick.Platform))
			}
		})
	}
}

func TestParsePlatform(t *testing.T) {
	for _, bad := range []string{"", "linux", "linux/", "/amd64", "linux/arm/v7/x", "linux/arm/"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	p, err := ParsePlatform("linux/arm/v7")
	if err != nil || p.OS != "linux" || p.Architecture != "arm" || p.Variant != "v7" {
		t.Fatalf("%+v %v", p, err)
	}
}
