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
	win2019 := desc("7", &v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.5122"})
	win2022 := desc("8", &v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.2113"})
	wins := []v1.Descriptor{win2019, win2022}

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
		{name: "os version", list: wins, want: "windows/amd64:10.0.20348.2113", pick: win2022},
		{name: "no os version: the first", list: wins, want: "windows/amd64", pick: win2019},
		{name: "os version not there", list: wins, want: "windows/amd64:10.0.14393.1", wantErr: true, errHas: "available: windows/amd64:10.0.17763.5122, windows/amd64:10.0.20348.2113"},
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
	for _, bad := range []string{"", "linux", "linux/", "/amd64", "linux/arm/v7/x", "linux/arm/", "linux//v7",
		"linux/amd64:", "linux/amd64:1:2", ":10.0", " linux/amd64", "linux/amd64 "} {
		_, err := ParsePlatform(bad)
		if !errors.Is(err, ErrReference) || !strings.Contains(err.Error(), "want os/arch[/variant][:osversion]") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
	for s, want := range map[string]v1.Platform{
		"linux/amd64":                   {OS: "linux", Architecture: "amd64"},
		"linux/arm/v7":                  {OS: "linux", Architecture: "arm", Variant: "v7"},
		"windows/amd64:10.0.17763.5122": {OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.5122"},
	} {
		p, err := ParsePlatform(s)
		if err != nil || !p.Equals(want) {
			t.Errorf("%q: %+v %v, want %+v", s, p, err, want)
		}
	}
}
