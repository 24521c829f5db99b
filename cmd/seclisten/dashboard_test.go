package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/seclisten/seclisten/pkg/fleet/fleettest"
)

// The Grafana dashboard shipped in scripts/grafana queries only metrics a
// real server exports: each name it uses is in a scrape of the binary run
// with the features those metrics belong to (mTLS with CRL fetching and
// OCSP, bans, metrics, a fleet on Redis). Its expressions are balanced.
func TestGrafanaDashboardMetricsExist(t *testing.T) {
	data, err := os.ReadFile("../../scripts/grafana/seclisten.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr         string `json:"expr"`
				LegendFormat string `json:"legendFormat"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("scripts/grafana/seclisten.json: %v", err)
	}
	if dash.Title != "seclisten" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard %q with %d panels", dash.Title, len(dash.Panels))
	}
	name := regexp.MustCompile(`seclisten_[a-z0-9_]+`)
	used := map[string]string{} // metric -> panel
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if strings.Count(q.Expr, "(") != strings.Count(q.Expr, ")") || strings.Count(q.Expr, "{") != strings.Count(q.Expr, "}") {
				t.Errorf("panel %q: unbalanced expression %q", p.Title, q.Expr)
			}
			// Grafana fills in {{label}}; {{{{label}}}} would show braces.
			if strings.Contains(q.LegendFormat, "{{{") {
				t.Errorf("panel %q: legend %q has doubled braces", p.Title, q.LegendFormat)
			}
			for _, m := range name.FindAllString(q.Expr, -1) {
				used[m] = p.Title
			}
		}
	}

	dir := pkiDir(t)
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	r := fleettest.StartRedis(t) // the fleet's panel
	p := startServe(t, mtlsArgs(dir, "--metrics-addr", maddr, "--crl-fetch", "--ocsp", "--ban-after", "10/1m", "--redis", r.URL(0))...)
	p.waitLog("serving metrics", 1)
	_, body := curl(t, "http://"+maddr+"/metrics")
	for m, panel := range used {
		if !strings.Contains(body, "\n"+m+" ") && !strings.Contains(body, "\n"+m+"{") {
			t.Errorf("panel %q queries %s, which the server does not export", panel, m)
		}
	}
}
