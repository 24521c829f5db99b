package acme

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"example.com", "example.com", true},
		{"Example.COM.", "example.com", true},
		{"example.com", "www.example.com", false},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.b.example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "aexample.com", false},
		{"*.example.com", "a.example.com.evil.test", false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestGatePatternsAndRate(t *testing.T) {
	g := &Gate{Patterns: []string{"*.ok.test", "exact.test"}, RetryEvery: time.Hour}
	ctx := context.Background()
	if err := g.Allow(ctx, "a.ok.test"); err != nil {
		t.Errorf("allowed name refused: %v", err)
	}
	if err := g.Allow(ctx, "a.ok.test"); err == nil || !strings.Contains(err.Error(), "tried less than 1h0m0s ago") {
		t.Errorf("second attempt within the hour = %v, want the per-name limit", err)
	}
	if err := g.Allow(ctx, "EXACT.test."); err != nil {
		t.Errorf("exact name (other case, trailing dot) refused: %v", err)
	}
	if err := g.Allow(ctx, "evil.test"); err == nil || err.Error() != `"evil.test" matches none of the allowed patterns` {
		t.Errorf("outside name = %v", err)
	}
}

func TestGateAsk(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := r.URL.Query().Get("domain")
		asked = append(asked, d)
		if d == "yes.test" {
			return
		}
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer srv.Close()
	g := &Gate{Ask: srv.URL + "/check?token=x"}
	ctx := context.Background()
	if err := g.Allow(ctx, "yes.test"); err != nil {
		t.Errorf("ask said yes, gate said %v", err)
	}
	if err := g.Allow(ctx, "no.test"); err == nil || !strings.Contains(err.Error(), "refused \"no.test\" (HTTP 403)") {
		t.Errorf("ask said no, gate said %v", err)
	}
	if strings.Join(asked, ",") != "yes.test,no.test" {
		t.Errorf("asked %v", asked)
	}
	// Patterns and ask together: both must agree; the pattern is checked
	// first, so the ask endpoint is not bothered for names it never allows.
	g = &Gate{Patterns: []string{"*.test"}, Ask: srv.URL}
	asked = nil
	if err := g.Allow(ctx, "yes.other"); err == nil {
		t.Error("name outside the patterns allowed")
	}
	if len(asked) != 0 {
		t.Errorf("ask endpoint asked about a name outside the patterns: %v", asked)
	}
	// An unreachable ask endpoint refuses (fails closed).
	srv.Close()
	if err := (&Gate{Ask: srv.URL}).Allow(ctx, "yes.test"); err == nil {
		t.Error("unreachable ask endpoint allowed issuance")
	}
}

func TestGateTableBounded(t *testing.T) {
	g := &Gate{Patterns: []string{"*.test"}}
	for i := range 2*maxTracked + 10 {
		if err := g.Allow(context.Background(), fmt.Sprintf("n%d.test", i)); err != nil {
			t.Fatalf("fresh name refused: %v", err)
		}
		if n := len(g.limiters); n > maxTracked {
			t.Fatalf("limiter table holds %d names, bound %d", n, maxTracked)
		}
	}
}

// Options that break their documented rules are a programming error: New
// panics rather than accept terms nobody agreed to, write its keys to the
// working directory, or issue certificates on demand for any name.
func TestNewPanicsOnBrokenOptions(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no agreement", Options{Domains: []string{"a.test"}, StorageDir: t.TempDir(), Logger: log}, "Agreed is required"},
		{"no storage", Options{Agreed: true, Domains: []string{"a.test"}, Logger: log}, "StorageDir is required"},
		{"on demand without gate", Options{Agreed: true, OnDemand: true, StorageDir: t.TempDir(), Logger: log}, "OnDemand needs a Gate"},
		{"on demand with an open gate", Options{Agreed: true, OnDemand: true, Gate: &Gate{}, StorageDir: t.TempDir(), Logger: log}, "OnDemand needs a Gate with Patterns or Ask"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if msg, _ := recover().(string); !strings.Contains(msg, tt.want) {
					t.Errorf("New panicked with %q, want a panic containing %q", msg, tt.want)
				}
			}()
			_, _ = New(tt.opts)
		})
	}
}

func TestNewRefusesUnusableStorage(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{Agreed: true, Domains: []string{"a.test"}, StorageDir: filepath.Join(file, "acme"), Logger: log})
	if err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("New = %v, want an error containing %q", err, "not a directory")
	}
	m, err := New(Options{Agreed: true, Domains: []string{"a.test"}, StorageDir: filepath.Join(t.TempDir(), "new", "dir"), Logger: log, CA: "https://127.0.0.1:1/dir"})
	if err != nil {
		t.Fatalf("New with a fresh storage dir: %v", err)
	}
	m.Stop()
}

func TestZapBridge(t *testing.T) {
	var buf bytes.Buffer
	l := newZapLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.With(zap.String("identifier", "a.test")).Warn("could not get certificate", zap.Duration("retry", 2*time.Second), zap.Int("attempt", 3))
	l.Info("chatter")
	out := buf.String()
	for _, want := range []string{`"level":"WARN"`, `"msg":"certmagic: could not get certificate"`, `"identifier":"a.test"`, `"retry":"2s"`, `"attempt":3`, `"level":"DEBUG","msg":"certmagic: chatter"`} {
		if !strings.Contains(out, want) {
			t.Errorf("bridged log lacks %s:\n%s", want, out)
		}
	}
	buf.Reset()
	quiet := newZapLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	quiet.Info("hidden at info")
	if buf.Len() != 0 {
		t.Errorf("certmagic info chatter shown at level info: %s", buf.String())
	}
}
