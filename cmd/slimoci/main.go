// Command slimoci makes container images smaller without a Docker daemon.
package main

import (
	"os"

	"github.com/slimoci/slimoci/runner"
)

// libcontainer re-executes this binary as a container's init: that is dispatched before anything else.
func init() {
	if len(os.Args) > 1 && os.Args[1] == runner.InitArg {
		runner.Init()
	}
}

func main() {
	// A shell completing a slimoci line (the script `slimoci completion SHELL` prints) runs the binary with
	// COMP_LINE set and no arguments: answer it instead of running a command.
	if completeFromEnv(os.Stdout) {
		return
	}
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
