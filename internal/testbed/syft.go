package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SyftVersion is the syft (github.com/anchore/syft) the tests read images with, as an SBOM tool nobody here
// wrote. testdata/testbed.sh's deps step installs this version (its syft_version), into Syft's path.
const SyftVersion = "v1.57.1"

// Syft is the path of the syft binary `make deps` installs ($SLIMOCI_TESTBED/bin/syft), or why there is
// none of SyftVersion there.
func (b *Bed) Syft(ctx context.Context) (string, string) {
	bin := filepath.Join(b.Dir, "bin", "syft")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Sprintf("syft is not installed (%v): run `make deps`", err)
	}
	out, err := Run(ctx, bin, "version")
	if err != nil {
		return "", fmt.Sprintf("%s does not run: %v", bin, err)
	}
	if !strings.Contains(string(out), strings.TrimPrefix(SyftVersion, "v")) {
		return "", fmt.Sprintf("%s is not syft %s: run `make deps`\n%s", bin, SyftVersion, out)
	}
	return bin, ""
}
