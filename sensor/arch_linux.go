package sensor

// archTables are what the sensor decodes of one seccomp architecture (AUDIT_ARCH_*) of its own GOARCH
// (arch_linux_amd64.go, arch_linux_arm64.go).
type archTables struct {
	audit uint32
	calls map[uint32]pathCall // the syscalls that name files
	names map[uint32]string   // every syscall's name, for a seccomp profile
	// x32 refuses the numbers with x32SyscallBit: the x32 ABI's, on x86_64.
	x32 bool
}

// x32SyscallBit marks the x32 ABI's syscall numbers (x86_64 arch): the trace filter refuses them.
const x32SyscallBit = 0x40000000

// tablesFor are the tables of the architecture audit; ok is false for one the sensor does not decode.
func tablesFor(audit uint32) (a archTables, ok bool) {
	for _, a := range arches {
		if a.audit == audit {
			return a, true
		}
	}
	return archTables{}, false
}

// nrOf is the number of the syscall called name in names, which must have it.
func nrOf(names map[uint32]string, name string) uint32 {
	for nr, n := range names {
		if n == name {
			return nr
		}
	}
	panic("sensor: no syscall " + name + " in the generated tables")
}

// ioUringSetup is io_uring_setup's number on a: the trace filter refuses it.
func (a archTables) ioUringSetup() uint32 { return nrOf(a.names, "io_uring_setup") }
