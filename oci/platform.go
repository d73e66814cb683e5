package oci

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ParsePlatform reads os/arch[/variant][:osversion], as --platform takes it, with ggcr's v1.ParsePlatform.
// That alone also takes "linux", "linux/" or "linux/arm/" (it skips the empty parts); a platform here names
// an os and an architecture, and no part may be empty: the parse must print back as it was written.
func ParsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" || p.String() != s {
		return v1.Platform{}, fmt.Errorf("%w: platform %q: want os/arch[/variant][:osversion]", ErrReference, s)
	}
	return *p, nil
}

// HostPlatform is the platform slimoci runs on, the default choice in an index.
func HostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return "unknown"
	}
	return p.String()
}

// platformMatches compares as runtimes do: os and architecture must be equal; a variant must be equal when
// both sides name one, and arm64's v8 is its default; an os version, when asked for, must be the same.
func platformMatches(have *v1.Platform, want v1.Platform) bool {
	if have == nil || have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	if want.OSVersion != "" && have.OSVersion != want.OSVersion {
		return false
	}
	hv, wv := have.Variant, want.Variant
	if want.Architecture == "arm64" {
		if hv == "" {
			hv = "v8"
		}
		if wv == "" {
			wv = "v8"
		}
	}
	return hv == "" || wv == "" || hv == wv
}

// ChoosePlatform picks the manifest for want from an index's manifests. Attestation manifests
// (unknown/unknown) are never chosen. Without a match, the error lists the platforms the index has.
func ChoosePlatform(manifests []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	var have []string
	var best *v1.Descriptor
	for i := range manifests {
		d := &manifests[i]
		if d.Platform == nil || d.Platform.OS == "unknown" {
			continue
		}
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() && d.MediaType != "" {
			continue
		}
		have = append(have, platformString(d.Platform))
		if !platformMatches(d.Platform, want) {
			continue
		}
		// An exact variant match beats a variant-less one.
		if best == nil || (d.Platform.Variant == want.Variant && best.Platform.Variant != want.Variant) {
			best = d
		}
	}
	if best != nil {
		return *best, nil
	}
	sort.Strings(have)
	if len(have) == 0 {
		return v1.Descriptor{}, fmt.Errorf("%w: no image for %s (the index names no platforms)", ErrPlatform, platformString(&want))
	}
	return v1.Descriptor{}, fmt.Errorf("%w: no image for %s (available: %s)", ErrPlatform, platformString(&want), strings.Join(slices.Compact(have), ", "))
}

// knownLayer is every layer media type an OCI or Docker runtime unpacks.
func knownLayer(mt types.MediaType) bool {
	switch mt {
	case types.OCILayer, types.OCIUncompressedLayer, types.OCILayerZStd,
		types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer,
		types.DockerLayer, types.DockerUncompressedLayer, types.DockerForeignLayer:
		return true
	}
	return false
}
