package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	"github.com/urfave/cli/v2"
)

// flagConfig names the configuration file. It is the one serve flag that is
// not a key of the file itself.
const flagConfig = "config"

// configFile is a configuration file read for the serve flags: every serve
// flag is a key of the same name (fileKeys derives them from the flag
// definitions, so a flag added to serveFlags is a key at once). Values are
// kept as the strings a flag would be given, so that one parser,
// configFromFlags, judges a value wherever it came from.
type configFile struct {
	path   string
	values map[string]fileValue
}

// fileValue is one key of the file: its line and its value as flag strings
// (several for a list flag given as a TOML array).
type fileValue struct {
	line int
	strs []string
}

// at names a key of the file as an error names it: file:line: key.
func (f *configFile) at(key string) string {
	return fmt.Sprintf("%s:%d: %s", f.path, f.values[key].line, key)
}

// fileKeys are the keys a configuration file may hold: the names of flags,
// except --config itself.
func fileKeys(flags []cli.Flag) map[string]cli.Flag {
	keys := map[string]cli.Flag{}
	for _, f := range flags {
		if name := f.Names()[0]; name != flagConfig && name != "help" {
			keys[name] = f
		}
	}
	return keys
}

// readConfigFile reads a TOML configuration file whose keys are the names
// of flags. Every error is one sentence naming the file, the line and the
// key at fault. When the document parses, the file holds its good keys
// even with an error, which joins one error per bad key, in the file's
// order.
//
// pelletier/go-toml/v2 decodes the document; its unstable parser gives
// the line of each key, which a value's error needs (BurntSushi/toml keeps
// key positions private, and reports them only for syntax errors).
func readConfigFile(path string, flags []cli.Flag) (*configFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration file: %w", err)
	}
	return parseConfigFile(path, data, flags)
}

func parseConfigFile(path string, data []byte, flags []cli.Flag) (*configFile, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, fmt.Errorf("%s:%d: %s", path, row, strings.TrimPrefix(de.Error(), "toml: "))
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	lines := keyLines(data)
	keys := fileKeys(flags)
	known := make([]string, 0, len(keys))
	for k := range keys {
		known = append(known, k)
	}
	names := make([]string, 0, len(doc))
	for k := range doc {
		names = append(names, k)
	}
	// Errors come in the order of the file, the first one first.
	slices.SortFunc(names, func(a, b string) int { return lines[a] - lines[b] })
	file := &configFile{path: path, values: map[string]fileValue{}}
	var errs []error
	for _, name := range names {
		where := fmt.Sprintf("%s:%d", path, lines[name])
		f, ok := keys[name]
		switch {
		case name == flagConfig:
			errs = append(errs, fmt.Errorf("%s: %s cannot be set in a configuration file", where, name))
		case !ok:
			if near := closestKey(name, known); len(near) > 0 {
				errs = append(errs, fmt.Errorf("%s: unknown key %q; did you mean %s?", where, name, strings.Join(near, " or ")))
			} else {
				errs = append(errs, fmt.Errorf("%s: unknown key %q (the keys are the flags of seclisten serve --help)", where, name))
			}
		default:
			strs, err := flagStrings(f, doc[name])
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", where, name, err))
				continue
			}
			file.values[name] = fileValue{line: lines[name], strs: strs}
		}
	}
	return file, errors.Join(errs...)
}

// keyLines maps each top-level key (or table name) of a TOML document that
// decoded without error to the line where it first appears.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	p := unstable.Parser{KeepComments: false}
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != unstable.KeyValue && e.Kind != unstable.Table && e.Kind != unstable.ArrayTable {
			continue
		}
		it := e.Key()
		if !it.Next() {
			continue
		}
		k := it.Node()
		if _, seen := lines[string(k.Data)]; !seen {
			lines[string(k.Data)] = p.Shape(k.Raw).Start.Line
		}
	}
	return lines
}

// flagStrings turns a TOML value into what the flag f would be given on
// the command line. A switch takes true or false; a list flag an array of
// strings or one string (split at commas, as on the command line); any
// other flag a string or a number, which configFromFlags then parses.
func flagStrings(f cli.Flag, v any) ([]string, error) {
	switch f.(type) {
	case *cli.BoolFlag:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("%s is not true or false", tomlText(v))
		}
		return []string{strconv.FormatBool(b)}, nil
	case *cli.StringSliceFlag:
		switch v := v.(type) {
		case string:
			return []string{v}, nil
		case []any:
			strs := make([]string, 0, len(v))
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("%s in the list is not a string", tomlText(e))
				}
				strs = append(strs, s)
			}
			return strs, nil
		}
		return nil, fmt.Errorf("%s is not a string or a list of strings", tomlText(v))
	}
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case int64:
		return []string{strconv.FormatInt(v, 10)}, nil
	case float64:
		return []string{strconv.FormatFloat(v, 'g', -1, 64)}, nil
	}
	return nil, fmt.Errorf("%s is not a string or a number", tomlText(v))
}

// tomlText shows a decoded TOML value in an error, as TOML writes it.
func tomlText(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprint(v)
}

// closestKey returns the keys nearest to name, if near enough to be a typo
// (closest's rule, on the keys' environment variables).
func closestKey(name string, keys []string) []string {
	vars := make([]string, len(keys))
	for i, k := range keys {
		vars[i] = envVar(k)
	}
	near := closest(envVar(name), vars)
	for i, v := range near {
		near[i] = strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(v, envPrefix)), "_", "-")
	}
	return near
}

// applyConfigFile gives each flag that neither the command line nor the
// environment set the value of its key in the file: the file comes last.
// It returns the keys it applied, for naming where a value came from.
func applyConfigFile(c *cli.Context, file *configFile) (map[string]bool, error) {
	applied := map[string]bool{}
	for key, v := range file.values {
		if c.IsSet(key) {
			continue
		}
		for _, s := range v.strs {
			if err := c.Set(key, s); err != nil {
				return nil, fmt.Errorf("%s: %w", file.at(key), err)
			}
		}
		applied[key] = true
	}
	return applied, nil
}
