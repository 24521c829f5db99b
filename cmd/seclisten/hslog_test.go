package main

import (
	"strconv"
	"syscall"
	"testing"
)

// hsSummary is the log record that counts the handshake lines not logged.
const hsSummary = "handshakes not logged"

// Above 100 handshakes a second the handshake line is sampled at info,
// and a summary counts the others: no handshake goes unaccounted for.
// At debug every one is logged.
func TestHandshakeLinesSampled(t *testing.T) {
	// handshakes runs n full handshakes against p with the real load
	// generator.
	handshakes := func(t *testing.T, p *proc, n int) {
		t.Helper()
		res := runBench(t, "--addr", p.addr, "--mode", "handshake", "--max-ops", strconv.Itoa(n),
			"--duration", "10m", "--concurrency", "8")
		if ops, errs := num(t, res, "ops"), num(t, res, "errors"); ops != float64(n) || errs != 0 {
			t.Fatalf("bench: %v operations, %v errors; want %d, 0", ops, errs, n)
		}
	}
	// accounted is the handshake lines logged and the sum of the
	// summaries' counts.
	accounted := func(t *testing.T, p *proc) (lines, held int) {
		t.Helper()
		for _, rec := range p.logRecords(hsSummary) {
			n, ok := rec["count"].(float64)
			if !ok || n < 1 || rec["level"] != "INFO" {
				t.Fatalf("summary %v", rec)
			}
			held += int(n)
		}
		return len(p.logRecords("handshake")), held
	}

	t.Run("info", func(t *testing.T) {
		p := startServe(t, noLimits...)
		const batch = 500
		done := 0
		// A machine that handshakes slower than 100 a second logs every
		// line; a few batches are enough on any other. After each batch
		// one of two events comes: every line (none was held back), or
		// a summary a second after the first line held back.
		for done < 10*batch && len(p.logRecords(hsSummary)) == 0 {
			handshakes(t, p, batch)
			done += batch
			p.await("every handshake line or a summary", func() bool {
				lines, held := accounted(t, p)
				return held > 0 || lines == done
			})
		}
		if len(p.logRecords(hsSummary)) == 0 {
			t.Fatalf("%d handshakes in batches of %d, every one logged: none sampled", done, batch)
		}
		if code, _ := p.signal(syscall.SIGTERM, hangGuard); code != 0 {
			t.Fatalf("exit status %d", code)
		}
		lines, held := accounted(t, p)
		t.Logf("%d handshakes: %d lines, %d counted in %d summaries", done, lines, held, len(p.logRecords(hsSummary)))
		if lines+held != done {
			t.Errorf("%d lines + %d held back = %d, want the %d handshakes", lines, held, lines+held, done)
		}
		if lines < 100 {
			t.Errorf("%d lines, want at least the first 100", lines)
		}
		// Every summary comes before the shutdown's last words.
		recs := p.records()
		if last := recs[len(recs)-1]; last["msg"] != "stopped" {
			t.Errorf("last record %v, want stopped", last)
		}
		if note, _ := p.logRecord(hsSummary)["note"].(string); note == "" {
			t.Errorf("summary without a note: %v", p.logRecord(hsSummary))
		}
	})

	t.Run("debug", func(t *testing.T) {
		p := startServe(t, append([]string{"--log-level", "debug"}, noLimits...)...)
		const n = 500
		handshakes(t, p, n)
		p.waitLog("handshake", n)
		if code, _ := p.signal(syscall.SIGTERM, hangGuard); code != 0 {
			t.Fatalf("exit status %d", code)
		}
		if lines, held := accounted(t, p); lines != n || held != 0 {
			t.Errorf("%d lines, %d held back; want %d, 0", lines, held, n)
		}
	})
}
