//go:build !amd64

package main

// otherABIs makes nothing: only x86_64 runs a second ABI (i386's int 0x80) the sensor decodes.
func otherABIs() {}
