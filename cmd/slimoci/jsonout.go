package main

import (
	"encoding/json"
	"fmt"

	"github.com/slimoci/slimoci/internal/termsafe"
)

// printJSON writes v on stdout as the command's one JSON document (--json), indented. encoding/json
// builds the whole document before it writes, so a value that does not encode leaves stdout empty. What an
// image names (paths, labels, history) is escaped where a terminal would obey it (termsafe).
func (g *Globals) printJSON(v any) error {
	w := termsafe.NewJSONWriter(g.stdout)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing the JSON document: %w", err)
	}
	return w.Flush()
}
