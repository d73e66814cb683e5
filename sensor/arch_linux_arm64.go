package sensor

import "github.com/slimoci/slimoci/internal/syscalls"

// auditArchAArch64 is AUDIT_ARCH_AARCH64, the seccomp architecture of an arm64 process's syscalls.
const auditArchAArch64 = 0xc00000b7

// arches are the architectures the sensor decodes on arm64: AArch64 only. The trace filter refuses every
// other with ENOSYS, as a kernel without it would: a 32-bit arm (AArch32, AUDIT_ARCH_ARM) process on a
// kernel with CONFIG_COMPAT, whose numbers and arguments are arm's, is not decoded.
var arches = []archTables{
	{audit: auditArchAArch64, calls: pathCallsARM64, names: syscalls.ARM64},
}
