package slimoci_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/runner"
)

// Build a slim image of an OCI layout's image, probing its app with GET / on its exposed ports, and push it
// to a registry; progress arrives on a channel the build closes. (The source here does not exist, so the
// example ends with the kind of error a caller matches; the end-to-end tests run real builds.)
func ExampleBuild() {
	events := make(chan slimoci.Event)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range events {
			if e.Kind == slimoci.Finished {
				fmt.Fprintf(os.Stderr, "%s: %s\n", e.Stage, e.Elapsed.Round(time.Millisecond))
			}
		}
	}()
	dest, _ := oci.ParseDestination("registry.example/app.slim:1.0")
	res, err := slimoci.Build(context.Background(), "oci:testdata/no-such-layout:1.0", &slimoci.BuildOptions{
		JobOptions: slimoci.JobOptions{StateDir: os.TempDir() + "/slimoci-example", Progress: events},
		Run: slimoci.RunOptions{
			Spec:   runner.Spec{Sensor: "/usr/local/bin/slimoci-sensor", AllSyscalls: true},
			Plan:   runner.Plan{ProbeTimeout: 30 * time.Second},
			Config: runner.ConfigOptions{HTTPProbe: true, Healthcheck: true},
		},
		Destinations: []slimoci.Destination{{Reference: dest}},
	})
	<-done
	switch {
	case errors.Is(err, oci.ErrNotExist):
		fmt.Println("no such image")
	case errors.Is(err, slimoci.ErrApp):
		fmt.Println("the app answered no probe")
	case errors.Is(err, slimoci.ErrVerify):
		fmt.Println("the slim image does not work:", err)
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Println(res.Digest, res.FatBytes, res.SlimBytes)
	}
	// Output: no such image
}

// Profile an image's app: what it opened, ran and called, without making an image.
func ExampleProfile() {
	res, err := slimoci.Profile(context.Background(), "oci:testdata/no-such-layout", &slimoci.ProfileOptions{
		JobOptions: slimoci.JobOptions{StateDir: os.TempDir() + "/slimoci-example"},
		Run:        slimoci.RunOptions{Spec: runner.Spec{Sensor: "/usr/local/bin/slimoci-sensor"}, Config: runner.ConfigOptions{HTTPProbe: true}},
	})
	if err != nil {
		fmt.Println("no such image:", errors.Is(err, oci.ErrNotExist))
		return
	}
	fmt.Println(len(res.Record.Files), "files used")
	// Output: no such image: true
}
