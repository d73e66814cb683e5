//go:build !unix

package oci

// openFlags are added to the flags files of a layout are opened with (see open_unix.go).
const openFlags = 0
