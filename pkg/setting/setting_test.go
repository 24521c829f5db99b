package setting_test

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/seclisten/seclisten/pkg/setting"
)

func flag(key string) string { return "--" + key }

func TestRender(t *testing.T) {
	for _, tt := range []struct {
		name      string
		err       *setting.Error
		asIs, cli string
		keys      []string
	}{
		{"two keys", setting.Errorf("`cert` and `key` go together: give both or neither"),
			"`cert` and `key` go together: give both or neither", "--cert and --key go together: give both or neither",
			[]string{"cert", "key"}},
		{"no key", setting.Errorf("the reload interval must be positive"),
			"the reload interval must be positive", "the reload interval must be positive", nil},
		{"a key and a value", setting.Errorf("`tls-min` must be 1.2 or 1.3, got %q", "1.1"),
			"`tls-min` must be 1.2 or 1.3, got \"1.1\"", "--tls-min must be 1.2 or 1.3, got \"1.1\"", []string{"tls-min"}},
		// What a user typed is never read as a key or a verb.
		{"backquote and verb in a value", setting.Errorf("`addr`: %q is not host:port", "`a`%d:1"),
			"`addr`: \"`a`%d:1\" is not host:port", "--addr: \"`a`%d:1\" is not host:port", []string{"addr"}},
		{"key at the end", setting.Errorf("ACME needs a storage directory (`acme-storage`)"),
			"ACME needs a storage directory (`acme-storage`)", "ACME needs a storage directory (--acme-storage)",
			[]string{"acme-storage"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.asIs {
				t.Errorf("Error() = %q, want %q", got, tt.asIs)
			}
			if got := tt.err.Render(flag); got != tt.cli {
				t.Errorf("Render(flag) = %q, want %q", got, tt.cli)
			}
			if got := tt.err.Keys(); !slices.Equal(got, tt.keys) {
				t.Errorf("Keys() = %q, want %q", got, tt.keys)
			}
		})
	}
}

// A name holding a percent sign is written as it is, not read as a verb.
func TestRenderNameWithPercent(t *testing.T) {
	err := setting.Errorf("`rate` must be 0 or more, got %g", -5.0)
	got := err.Render(func(key string) string { return key + " (100% sure)" })
	if want := "rate (100% sure) must be 0 or more, got -5"; got != want {
		t.Errorf("Render = %q, want %q", got, want)
	}
}

func TestUnwrap(t *testing.T) {
	err := setting.Errorf("`acme-storage`: %w", fs.ErrPermission)
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("errors.Is(%v, fs.ErrPermission) = false", err)
	}
	if !strings.Contains(err.Render(flag), "--acme-storage: permission denied") {
		t.Errorf("Render = %q", err.Render(flag))
	}
	if errors.Is(setting.Errorf("`a`: %v", fs.ErrPermission), fs.ErrPermission) {
		t.Error("an error formatted with the v verb is wrapped")
	}
	var se *setting.Error
	if !errors.As(fmtWrap(err), &se) || se != err {
		t.Error("errors.As does not find the Error")
	}
}

func fmtWrap(err error) error { return errors.Join(err) }
