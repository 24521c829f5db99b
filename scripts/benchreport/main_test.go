package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A new report keeps the sections of the old one that it does not write
// itself, from the first of them to the end, and drops its own old ones.
func TestHandWrittenSectionsKept(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "results"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := `{"tls":"TLS 1.3","ops_per_s":1000,"p50_ms":1,"p99_ms":2}`
	for _, name := range []string{"seclisten-handshake-1", "tlsref-handshake-1"} {
		if err := os.WriteFile(filepath.Join(dir, "results", name+".json"), []byte(run), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	hand := "## A fleet on Redis (issue [7/8])\n\nmeasured by hand\n\n## Notes of an issue\n\ntext\n"
	old := "# Benchmarks\n\n## Medians\n\nold medians\n\n## Notes\n\n- an old note\n\n" + hand
	for _, tc := range []struct{ name, old, want string }{
		{"earlier report", old, "\n" + hand},
		{"no file", "", ""},
		{"only generated sections", "# Benchmarks\n\n## Medians\n\nold\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := handWritten(tc.old)
			if got != tc.want {
				t.Errorf("handWritten = %q, want %q", got, tc.want)
			}
			md := rep.markdown("x.svg", "") + got
			if strings.Contains(md, "old medians") || strings.Contains(md, "an old note") {
				t.Errorf("the old report's generated sections were kept:\n%s", md)
			}
		})
	}
}
