package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// CommandFlags are mint's --command-params-file and --report, for profile and build.
type CommandFlags struct {
	CommandParamsFile paramsFile `help:"Read flags from a JSON object of flag names (mint's file: kebab-case or snake_case) to values (strings, booleans, numbers, or arrays for repeatable flags; durations as strings, \"90s\"). The command line wins over the file (mint's file wins over its command line); a name slimoci does not have is an error." placeholder:"FILE"`
	Report            string     `help:"Also write the report (report.json) to FILE; off writes none, not even STATE/report.json." placeholder:"FILE"`
}

// paramsFile is --command-params-file. kong calls its BeforeResolve hook once the command line is parsed:
// the file's values become a resolver, which kong consults only for the flags the command line left unset.
type paramsFile string

// maxParamsFileBytes bounds a params file (it is read whole).
const maxParamsFileBytes = 1 << 20

// BeforeResolve reads the file and adds its values as a resolver, after checking every name against the
// command's flags.
func (p paramsFile) BeforeResolve(ctx *kong.Context, trace *kong.Path) error {
	file, _ := ctx.FlagValue(trace.Flag).(paramsFile)
	values, err := readParamsFile(string(file), ctx.Flags())
	if err != nil {
		return fmt.Errorf("--command-params-file %s: %w", file, err)
	}
	ctx.AddResolver(kong.ResolverFunc(func(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
		if v, ok := values[flag.Name]; ok {
			return v, nil
		}
		return nil, nil
	}))
	return nil
}

// readParamsFile reads a JSON object of flag names to values and returns it keyed by flag name. A name
// must be one of flags, in kebab-case (mint's) or snake_case (kong's); a value must be a string, a boolean,
// a number or an array of those; a duration a string.
func readParamsFile(path string, flags []*kong.Flag) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxParamsFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxParamsFileBytes {
		return nil, fmt.Errorf("over %d KiB", maxParamsFileBytes>>10)
	}
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("not a JSON object of flags: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a JSON object of flags: more after the object")
	}
	byName := map[string]*kong.Flag{}
	for _, fl := range flags {
		byName[fl.Name] = fl
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values := map[string]any{}
	given := map[string]string{}
	for _, k := range keys {
		name := strings.ReplaceAll(k, "_", "-")
		fl := byName[name]
		switch {
		case name == "help" || name == "command-params-file":
			return nil, fmt.Errorf("%q cannot be given in the file", k)
		case fl == nil && (name == "target" || name == "image"):
			return nil, fmt.Errorf("%q: give the image as the IMAGE argument", k)
		case fl == nil:
			return nil, fmt.Errorf("%q is not a flag of this command (docs/mint-flags.md has mint's flags and slimoci's equivalents)", k)
		}
		if other, ok := given[name]; ok {
			return nil, fmt.Errorf("%q and %q name the same flag", other, k)
		}
		given[name] = k
		if err := checkParamValue(fl, raw[k]); err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		values[name] = raw[k]
	}
	return values, nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// checkParamValue refuses values kong would misread: nulls, objects, nested arrays, and numbers for
// durations (kong would take them as nanoseconds; mint's numbers are seconds).
func checkParamValue(fl *kong.Flag, v any) error {
	isDuration := fl.Target.IsValid() && fl.Target.Type() == durationType
	switch v := v.(type) {
	case string, bool:
		return nil
	case float64:
		if isDuration {
			return errors.New("give a duration as a string, such as \"90s\"")
		}
		return nil
	case []any:
		if !fl.IsSlice() {
			return errors.New("an array for a flag that takes one value")
		}
		for _, e := range v {
			switch e.(type) {
			case string, float64, bool:
			default:
				return fmt.Errorf("array element %v is not a string, number or boolean", e)
			}
		}
		return nil
	}
	return fmt.Errorf("%v is not a string, boolean, number or array", v)
}
