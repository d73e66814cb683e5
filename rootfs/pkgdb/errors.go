package pkgdb

import (
	"errors"
	"fmt"
)

var (
	// ErrDatabase is a package database that does not parse; the error names the file and the line.
	ErrDatabase = errors.New("invalid package database")
	// ErrTooMany is an image whose databases list more packages, or more paths of packages, than Read
	// accepts (MaxPackages, MaxOwned).
	ErrTooMany = errors.New("too many packages")
)

// syntaxError is a database's line that does not parse.
func syntaxError(file string, line int, format string, args ...any) error {
	return fmt.Errorf("parsing %s: line %d: %w: %s", file, line, ErrDatabase, fmt.Sprintf(format, args...))
}
