// Package oci reads container images from, and writes them to, everywhere they live without a daemon: a
// registry, an OCI image layout, a docker-archive (what `docker save` and `podman save` write) and an OCI
// archive, always as go-containerregistry's v1.Image, with every blob digest-verified while it streams.
package oci
