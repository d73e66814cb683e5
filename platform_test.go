package slimoci

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci/internal/ocitest"
	"github.com/slimoci/slimoci/oci"
)

// TestPlatformChoice: which platforms Build slims, decided from the source's manifests before anything is
// pulled: all of an index, a list (a platform the index lacks fails, naming those it has), one of an index
// (one image, the others named), a single image (built as one, if it is among those asked for).
func TestPlatformChoice(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	s390x := v1.Platform{OS: "linux", Architecture: "s390x"}
	idx, err := oci.NewIndex([]oci.PlatformImage{{Platform: amd64, Image: ocitest.PlatformImage(t, amd64)}, {Platform: arm64, Image: ocitest.PlatformImage(t, arm64)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	multi := "oci:" + filepath.Join(dir, "multi") + ":1"
	ref, _ := oci.ParseReference(multi)
	if err := oci.WriteIndex(ctx, idx, ref, nil, nil); err != nil {
		t.Fatal(err)
	}
	single := "oci:" + filepath.Join(dir, "single") + ":1"
	ref, _ = oci.ParseReference(single)
	if err := oci.Write(ctx, ocitest.PlatformImage(t, arm64), ref, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, image string
		all         bool
		platforms   []v1.Platform
		index       bool
		build       []string
		want        string
		err         string
		others      []string
	}{
		{name: "all of an index", image: multi, all: true, index: true, build: []string{"linux/amd64", "linux/arm64/v8"}},
		{name: "a list", image: multi, platforms: []v1.Platform{arm64, amd64}, index: true, build: []string{"linux/arm64/v8", "linux/amd64"}},
		{name: "arm64 without its variant", image: multi, platforms: []v1.Platform{{OS: "linux", Architecture: "arm64"}, amd64}, index: true, build: []string{"linux/arm64/v8", "linux/amd64"}},
		{name: "one the index lacks", image: multi, platforms: []v1.Platform{amd64, s390x}, err: "no image for linux/s390x (available: linux/amd64, linux/arm64/v8)"},
		{name: "one of an index", image: multi, platforms: []v1.Platform{arm64}, want: "linux/arm64/v8", others: []string{"linux/amd64"}},
		{name: "none of an index", image: multi, others: []string{"linux/arm64/v8"}},
		{name: "all of a single image", image: single, all: true},
		{name: "a list with the single image's", image: single, platforms: []v1.Platform{amd64, arm64}},
		{name: "a list without it", image: single, platforms: []v1.Platform{amd64, s390x}, err: "the image is linux/arm64/v8, not linux/amd64, linux/s390x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bo := &BuildOptions{AllPlatforms: tc.all, Platforms: tc.platforms}
			bo.fill()
			pp, err := bo.platforms(ctx, tc.image)
			if tc.err != "" {
				if !errors.Is(err, oci.ErrPlatform) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want ErrPlatform saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pp.index != tc.index || platformList(pp.build) != strings.Join(tc.build, ", ") {
				t.Errorf("index %v of %s, want %v of %s", pp.index, platformList(pp.build), tc.index, tc.build)
			}
			if got := ""; pp.want != nil {
				got = pp.want.String()
				if got != tc.want {
					t.Errorf("picks %s, want %s", got, tc.want)
				}
			} else if tc.want != "" {
				t.Errorf("picks none, want %s", tc.want)
			}
			if tc.others != nil {
				if got := pp.others("linux/amd64"); tc.want == "" && strings.Join(got, ",") != strings.Join(tc.others, ",") {
					t.Errorf("others %v, want %v", got, tc.others)
				}
				if got := pp.others(tc.want); tc.want != "" && strings.Join(got, ",") != strings.Join(tc.others, ",") {
					t.Errorf("others %v, want %v", got, tc.others)
				}
			}
		})
	}
}
