package main

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
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
