// Package sensor is PID 1 inside the sandbox: it starts the image's app and records every file, exec and
// syscall it uses. It imports only the standard library and golang.org/x/sys. (In progress.)
package sensor
