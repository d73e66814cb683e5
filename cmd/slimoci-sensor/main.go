// Command slimoci-sensor is slimoci's PID 1 inside the sandbox. It is built static (CGO_ENABLED=0: the
// sensor package needs only the standard library and golang.org/x/sys) so that it runs in any image.
package main

import (
	"fmt"
	"os"

	"github.com/slimoci/slimoci/sensor"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == sensor.ExecHelperArg || os.Args[1] == sensor.NotifyHelperArg) {
		helper := sensor.ExecHelper
		if os.Args[1] == sensor.NotifyHelperArg {
			helper = sensor.NotifyHelper
		}
		err := helper(os.Args[1:])
		fmt.Fprintf(os.Stderr, "slimoci-sensor: %v\n", err)
		os.Exit(127)
	}
	if len(os.Args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: slimoci-sensor < CONFIG.json (run by slimoci inside its sandbox, record on fd 3)")
		os.Exit(2)
	}
	if err := sensor.Main(); err != nil {
		fmt.Fprintf(os.Stderr, "slimoci-sensor: %v\n", err)
		os.Exit(125)
	}
}
