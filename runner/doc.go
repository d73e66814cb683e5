// Package runner runs an unpacked image's app in a libcontainer sandbox, with the sensor as PID 1, and
// exercises it with probes. (In progress: see the runner+sensor issue.)
package runner
