package main

import (
	"strings"
	"testing"

	"github.com/seclisten/seclisten/pkg/batch"
	"github.com/seclisten/seclisten/pkg/config"
)

// TestLoggerWarnWritesAtOnce checks serve's logger: records go through
// the batching writer, and one at warn or above is on stderr when the
// call returns, after every record before it, in both formats and
// through With.
func TestLoggerWarnWritesAtOnce(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			cfg := config.Default()
			cfg.LogFormat = format
			var out lockedBuffer
			w := batch.New(&out)
			log := newLogger(cfg, w).With("conn_id", 7)
			log.Info("first")
			log.Info("second")
			log.Warn("third")
			got := out.String()
			i1, i2, i3 := strings.Index(got, "first"), strings.Index(got, "second"), strings.Index(got, "third")
			if i1 < 0 || i2 < i1 || i3 < i2 || strings.Count(got, "conn_id") != 3 {
				t.Fatalf("after the warn record returned, stderr holds %q: want first, second, third, each with conn_id", got)
			}
			log.Info("fourth")
			w.Flush()
			if got := out.String(); !strings.Contains(got, "fourth") {
				t.Errorf("after Flush, stderr holds %q", got)
			}
		})
	}
}
