package main

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// envPrefix starts the name of every environment variable seclisten reads.
const envPrefix = "SECLISTEN_"

// envVars lists the environment variables that flags read: the known ones.
func envVars(flags []cli.Flag) []string {
	var names []string
	for _, f := range flags {
		if df, ok := f.(cli.DocGenerationFlag); ok {
			names = append(names, df.GetEnvVars()...)
		}
	}
	return names
}

// unknownEnv returns one warning, sorted by variable, for each variable of
// environ (KEY=VALUE pairs, as os.Environ) whose name starts with SECLISTEN_,
// in any case, but is not one of known: a typo there would otherwise be
// silently ignored, and the setting it was meant for left at its default.
// The warning names the closest known variable when there is one.
//
// Empty variables are skipped: an empty variable means the default
// (unsetEmptyEnv), so a misspelt one changes nothing.
func unknownEnv(environ, known []string) []string {
	var warnings []string
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if value == "" || !strings.HasPrefix(strings.ToUpper(name), envPrefix) || slices.Contains(known, name) {
			continue
		}
		if near := closest(name, known); len(near) > 0 {
			warnings = append(warnings, fmt.Sprintf("%s is not a seclisten variable; did you mean %s?", name, strings.Join(near, " or ")))
		} else {
			warnings = append(warnings, name+" is not a seclisten variable (see seclisten serve --help)")
		}
	}
	slices.Sort(warnings)
	return warnings
}

// closest returns the known names nearest to name by edit distance (ignoring
// case), if near enough to be a typo: one edit in a name of up to five
// characters after SECLISTEN_, two in a longer one. Several names are
// returned only when they are equally near.
func closest(name string, known []string) []string {
	typed := strings.ToUpper(name)[len(envPrefix):]
	limit := 1
	if len(typed) > 5 {
		limit = 2
	}
	var best []string
	for _, k := range known {
		d := editDistance(typed, strings.TrimPrefix(k, envPrefix))
		switch {
		case d > limit:
		case d < limit:
			limit, best = d, []string{k}
		default:
			best = append(best, k)
		}
	}
	slices.Sort(best)
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// the insertions, deletions, substitutions and transpositions of adjacent
// bytes that turn one into the other.
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// warnUnknownEnv logs a warning for each SECLISTEN_ variable of the
// environment that no flag of the command reads.
func warnUnknownEnv(log *slog.Logger, flags []cli.Flag) {
	for _, w := range unknownEnv(os.Environ(), envVars(flags)) {
		log.Warn(w)
	}
}
