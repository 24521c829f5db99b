package testbed

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Result is the grade of a connection or a case.
type Result string

// The results, one spelling each (the table prints them in capitals).
const (
	// Pass: the client did what a correct client does.
	Pass Result = "pass"
	// Fail: the client accepted a bad server, refused a good one, or hung.
	Fail Result = "fail"
	// NotChecked: the client connected to the revoked case without
	// fetching the CRL: it does not check revocation.
	NotChecked Result = "not-checked"
	// NotTried: no client was graded on the case.
	NotTried Result = "not-tried"
	// NotGraded: the connection says nothing about the client's checks
	// (no ClientHello, plaintext, cut by the end of the run).
	NotGraded Result = "not-graded"
)

// rank orders the results of a case: the worst decides.
func (r Result) rank() int {
	switch r {
	case Fail:
		return 3
	case NotChecked:
		return 2
	case Pass:
		return 1
	}
	return 0
}

// Grade is one connection's grade.
type Grade struct {
	Case     string    `json:"case"`
	Client   string    `json:"client"`
	Time     time.Time `json:"time"`
	Result   Result    `json:"result"`
	Evidence string    `json:"evidence"`
}

// String is the grade as the testbed prints it.
func (g Grade) String() string {
	return fmt.Sprintf("[testbed] %s: %s %s %s", g.Case, g.Client, strings.ToUpper(string(g.Result)), g.Evidence)
}

// CaseCard is one case on the card.
type CaseCard struct {
	Case   string `json:"case"`
	Port   int    `json:"port"`
	Expect string `json:"expect"`
	// Result is the worst result of the case's graded connections
	// (fail, not-checked, pass), or not-tried.
	Result Result `json:"result"`
	// Evidence is the evidence of the connection that decided Result.
	Evidence string `json:"evidence"`
	// Connections counts the graded connections; Pass, Fail and
	// NotChecked count them by result.
	Connections int `json:"connections"`
	Pass        int `json:"pass"`
	Fail        int `json:"fail"`
	NotChecked  int `json:"not_checked"`
}

// maxConnections is how many graded connections a Card keeps in detail.
const maxConnections = 1000

// Card is the report card: every case chosen, graded by the connections
// received. It is safe for concurrent use.
type Card struct {
	mu      sync.Mutex
	started time.Time
	cases   []*CaseCard
	byName  map[string]*CaseCard
	conns   []Grade
	dropped int // graded connections beyond maxConnections
	ungrade int // connections not graded
}

// NewCard is an empty card for cases on ports from basePort.
func NewCard(cs []Case, basePort int) *Card {
	c := &Card{started: time.Now(), byName: map[string]*CaseCard{}}
	for _, k := range cs {
		cc := &CaseCard{Case: k.Name, Port: basePort + k.Offset, Expect: k.Expect.String(), Result: NotTried}
		c.cases = append(c.cases, cc)
		c.byName[k.Name] = cc
	}
	return c
}

// Add records a grade.
func (c *Card) Add(g Grade) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.byName[g.Case]
	if cc == nil || g.Result == NotGraded {
		c.ungrade++
		return
	}
	cc.Connections++
	switch g.Result {
	case Pass:
		cc.Pass++
	case Fail:
		cc.Fail++
	case NotChecked:
		cc.NotChecked++
	}
	if g.Result.rank() >= cc.Result.rank() {
		cc.Result, cc.Evidence = g.Result, g.Evidence
	}
	if len(c.conns) < maxConnections {
		c.conns = append(c.conns, g)
	} else {
		c.dropped++
	}
}

// Failed reports whether any case failed.
func (c *Card) Failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.cases {
		if cc.Result == Fail {
			return true
		}
	}
	return false
}

// Report is the card as JSON (see WriteJSON).
type Report struct {
	// Version is the schema's version: 1.
	Version int `json:"version"`
	// Passed is true when no case failed.
	Passed  bool      `json:"passed"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// Totals counts the cases by result, every result present.
	Totals map[Result]int `json:"totals"`
	Cases  []CaseCard     `json:"cases"`
	// Connections are the graded connections, in the order graded, the
	// first 1,000; ConnectionsDropped counts those beyond.
	Connections        []Grade `json:"connections"`
	ConnectionsDropped int     `json:"connections_dropped"`
	// NotGraded counts connections that said nothing about the client
	// (no ClientHello, plaintext, cut by the end of the run).
	NotGraded int `json:"not_graded"`
}

// Report is a copy of the card as it stands.
func (c *Card) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Report{Version: 1, Passed: true, Started: c.started.UTC(), Ended: time.Now().UTC(),
		Totals: map[Result]int{Pass: 0, Fail: 0, NotChecked: 0, NotTried: 0}, Connections: append([]Grade{}, c.conns...),
		ConnectionsDropped: c.dropped, NotGraded: c.ungrade}
	for _, cc := range c.cases {
		r.Cases = append(r.Cases, *cc)
		r.Totals[cc.Result]++
		if cc.Result == Fail {
			r.Passed = false
		}
	}
	return r
}

// WriteJSON writes the card as one indented JSON document.
func (c *Card) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c.Report())
}

// WriteTable writes the card as a table, with a total line.
func (c *Card) WriteTable(w io.Writer) error {
	r := c.Report()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "CASE\tRESULT\tCONNECTIONS\tEVIDENCE\n")
	for _, cc := range r.Cases {
		ev := cc.Evidence
		if cc.Result == NotTried {
			ev = "no client was graded on port " + fmt.Sprint(cc.Port)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", cc.Case, strings.ToUpper(string(cc.Result)), cc.Connections, ev)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var parts []string
	for _, res := range []Result{Pass, Fail, NotChecked, NotTried} {
		if n := r.Totals[res]; n > 0 { // the table names only those that occur
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToUpper(string(res))))
		}
	}
	verdict := "no case failed"
	if !r.Passed {
		verdict = "a case failed"
	}
	_, err := fmt.Fprintf(w, "%s: %s\n", strings.Join(parts, ", "), verdict)
	return err
}
