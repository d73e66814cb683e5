// Package slimoci is slimoci as a library: Build makes a slim image of an image, Profile records what an
// image's app uses, each a function with typed options and a typed result, progress as data on a channel.
//
// It is the module's root package because it is the one that joins every stage: oci (sources and
// destinations), rootfs (unpack, closure), runner (the sandbox and probes), emit (the slim image and its
// profiles). A stage package holding the pipeline would import its peers (emit would import runner again);
// the command line (cmd/slimoci) only parses flags into these options and renders the results.
package slimoci
