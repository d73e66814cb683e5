package testbed

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
)

// SyftVersion is the syft (github.com/anchore/syft) the tests read images with, as an SBOM tool nobody here
// wrote. testdata/testbed.sh's deps step installs this version (its syft_version) into Syft's path.
const SyftVersion = "v1.57.1"

// Syft is the path of the syft binary `make deps` installs ($SLIMOCI_TESTBED/bin/syft), or why there is
// none of SyftVersion there. `go install` stamps no version into syft's own `syft version`: the version is
// read from the binary's Go build information.
func (b *Bed) Syft() (string, string) {
	bin := filepath.Join(b.Dir, "bin", "syft")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Sprintf("syft is not installed (%v): run `make deps`", err)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "", fmt.Sprintf("reading %s's build information: %v", bin, err)
	}
	if info.Main.Path != "github.com/anchore/syft" || info.Main.Version != SyftVersion {
		return "", fmt.Sprintf("%s is %s %s, not syft %s: run `make deps`", bin, info.Main.Path, info.Main.Version, SyftVersion)
	}
	return bin, ""
}
