package sensor

import "github.com/slimoci/slimoci/internal/syscalls"

// The seccomp architectures the sensor decodes on x86_64 (AUDIT_ARCH_*): a 64-bit process's int 0x80 is
// i386.
const (
	auditArchX86_64 = 0xc000003e
	auditArchI386   = 0x40000003
)

// arches are the architectures the sensor decodes, its own first; the trace filter refuses every other
// (x32's numbers too) with ENOSYS.
var arches = []archTables{
	{audit: auditArchX86_64, calls: pathCallsAMD64, names: syscalls.AMD64, x32: true},
	{audit: auditArchI386, calls: pathCallsI386, names: syscalls.I386},
}
