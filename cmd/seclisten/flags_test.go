package main

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/acme"
	"github.com/seclisten/seclisten/pkg/bench"
	"github.com/seclisten/seclisten/pkg/config"
)

// The serve flags come grouped by category in help order, each category
// once, every flag in a known category.
func TestServeFlagsInHelpOrder(t *testing.T) {
	var seen []string
	for _, f := range serveFlags() {
		cat := f.(cli.CategorizableFlag).GetCategory()
		if len(seen) == 0 || seen[len(seen)-1] != cat {
			if slices.Contains(seen, cat) {
				t.Fatalf("flag --%s: category %q shown twice", f.Names()[0], cat)
			}
			seen = append(seen, cat)
		}
	}
	if want := serveCategories(); !slices.Equal(seen, want) {
		t.Fatalf("categories in help order %q, want %q", seen, want)
	}
}

// A flag added anywhere lands in its category, after the flags declared
// before it there; an unknown category is a programming error.
func TestInHelpOrder(t *testing.T) {
	flags := inHelpOrder([]cli.Flag{
		&cli.BoolFlag{Name: "a", Category: catACME},
		&cli.BoolFlag{Name: "b", Category: catLimits},
		&cli.BoolFlag{Name: "c", Category: catListener},
		&cli.BoolFlag{Name: "d", Category: catLimits},
		&cli.BoolFlag{Name: "e", Category: catListener},
	})
	var got []string
	for _, f := range flags {
		got = append(got, f.Names()[0])
	}
	if want := []string{"c", "e", "b", "d", "a"}; !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}

	for _, cat := range []string{"", "listener"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("category %q: no panic", cat)
				}
			}()
			inHelpOrder([]cli.Flag{&cli.BoolFlag{Name: "x", Category: cat}})
		}()
	}
}

// keysIn returns the setting keys the Go files of dir (not its tests)
// write between backquotes in string literals: what their
// setting.Errorf sentences name.
func keysIn(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(fset, name, nil, goparser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatalf("%s: %v", fset.Position(lit.Pos()), err)
			}
			for _, m := range backquoted.FindAllStringSubmatch(s, -1) {
				keys[m[1]] = true
			}
			return true
		})
	}
	if len(keys) == 0 {
		t.Fatalf("no keys in %s", dir)
	}
	return keys
}

var backquoted = regexp.MustCompile("`([^`]*)`")

// config names settings by key in its errors, and asFlags shows each key
// as --key: every key config writes must be a serve flag.
func TestConfigKeysAreServeFlags(t *testing.T) {
	flags := map[string]bool{}
	for _, f := range serveFlags() {
		flags[f.Names()[0]] = true
	}
	for key := range keysIn(t, filepath.Join("..", "..", "pkg", "config")) {
		if !flags[key] {
			t.Errorf("config names the setting `%s`, but serve has no flag --%s", key, key)
		}
	}
}

// bench names the fields of its Options in its errors, and benchFlags
// shows each as its flag: every field bench writes must be a field, with a
// bench flag unless no flag sets it.
func TestBenchFieldsHaveFlags(t *testing.T) {
	flags := map[string]bool{}
	for _, f := range benchCommand(io.Discard, nil).Flags {
		flags[f.Names()[0]] = true
	}
	options := reflect.TypeFor[bench.Options]()
	for field := range keysIn(t, filepath.Join("..", "..", "pkg", "bench")) {
		if _, ok := options.FieldByName(field); !ok {
			t.Errorf("bench names `%s`, which is not a field of bench.Options", field)
		}
		if _, ok := benchFlags[field]; !ok && field != "Timeout" {
			t.Errorf("bench names `%s`, which benchFlags does not map to a flag", field)
		}
	}
	for field, flag := range benchFlags {
		if _, ok := options.FieldByName(field); !ok {
			t.Errorf("benchFlags maps %s, which is not a field of bench.Options", field)
		}
		if !flags[flag] {
			t.Errorf("benchFlags maps %s to --%s, which is not a bench flag", field, flag)
		}
	}
}

// With no flag given, serve runs config.Default(): every flag's default is
// the config's (and --acme-storage's is acme.DefaultStorageDir()).
func TestServeFlagDefaultsAreConfigDefaults(t *testing.T) {
	var got config.Config
	app := &cli.App{
		Flags: serveFlags(), // no environment variables: the test's must not count
		Action: func(c *cli.Context) error {
			var err error
			got, err = configFromFlags(c, nil)
			return err
		},
	}
	if err := app.Run([]string{"serve"}); err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.ACME.Storage = acme.DefaultStorageDir()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("serve without flags runs\n%+v\nwant config.Default()\n%+v", got, want)
	}
}
