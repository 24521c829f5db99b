package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/seclisten/seclisten/pkg/outcome"
)

// Every outcome has one spelling (the metric label), a text, a kind and a
// row in the README's table; every flag said to govern one is a serve flag.
func TestOutcomeVocabulary(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	spelling := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	for _, c := range outcome.All(0) {
		if !spelling.MatchString(c.Label()) || c.Label() != string(c) {
			t.Errorf("%q: label %q is not lower-case words joined by hyphens", c, c.Label())
		}
		if c.Text() == "" || c.Kind() == 0 {
			t.Errorf("%q: text %q, kind %v", c, c.Text(), c.Kind())
		}
		row := "| `" + string(c) + "` | " + c.Kind().String() + " | " + c.Text() + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row %q", row)
		}
	}
	flags := map[string]bool{}
	for _, f := range serveFlags() {
		flags["--"+f.Names()[0]] = true
	}
	for c, list := range outcomeFlags {
		if !c.Known() {
			t.Errorf("outcomeFlags names an unknown outcome %q", c)
		}
		for f := range strings.SplitSeq(list, ",") {
			if !flags[f] {
				t.Errorf("outcome %s: %s is not a serve flag", c, f)
			}
		}
	}
}
