package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// sizeUnits are the suffixes ParseSize accepts. Sizes are in bytes; K, M and G
// are binary (1K = 1024), as in most servers' configuration files.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	{"B", 1},
}

// ParseSize parses a byte size: a whole number optionally followed by B, K,
// KB, KiB, M, MB, MiB, G, GB or GiB (all binary multiples; case-insensitive).
// "64KiB" and "65536" are the same size.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || t == "" || t[0] == '+' || t[0] == '-' {
		return 0, fmt.Errorf("%q is not a size like 65536, 64KiB or 1MiB", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// ParseDuration parses a duration like 30s, 2m or 1h30m. A bare number is
// refused: its unit would be a guess.
//
// A leading number of days is accepted too ("14d", "1d12h"): certificate
// lifetimes are counted in days.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	var days time.Duration
	if n, rest, ok := strings.Cut(t, "d"); ok && n != "" {
		if v, err := strconv.ParseUint(n, 10, 16); err == nil {
			days = time.Duration(v) * 24 * time.Hour
			if t = rest; t == "" {
				return days, nil
			}
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil {
			return 0, fmt.Errorf("%q has no unit: write it like %ss", s, strings.TrimSpace(s))
		}
		return 0, fmt.Errorf("%q is not a duration like 30s, 2m or 1h30m", s)
	}
	return days + d, nil
}

// ParseLevel parses a log level: debug, info, warn or error. Its error is a
// phrase to follow the setting's name: "must be debug, ..., got ...".
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("must be debug, info, warn or error, got " + strconv.Quote(s))
}
