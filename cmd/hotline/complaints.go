package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/web"
	"github.com/hotline12345/hotline/web/client"
)

const complaintsUsage = `usage: hotline complaints [--api URL] <command>

commands:
  line [--window day|month|30d|range] [--day YYYY-MM-DD] [--month YYYY-MM]
       [--from YYYY-MM-DD --to YYYY-MM-DD] [--agent ID | --category C | --agents]
       [--json]
                     effective complaints (bad reviews upheld) against the
                     line (evaluation.complaint_limit_per_10000, 3 per 10,000
                     calls served by default), over a window of days
                     of the hotline's zone (today by default): the whole
                     hotline, one agent, one category, or every agent worst
                     first (--agents)
  pending [--json]   bad reviews waiting for a supervisor's review, oldest
                     first, with their age; OVERDUE past evaluation.review_sla
  show ID [--json]   one complaint and every decision on it
  review ID --upheld|--dismissed --note TEXT [--reverse]
                     decide a pending bad review, as the user the token acts
                     for: upheld is an effective complaint, counted on the
                     day the call was served. --reverse changes the decision
                     on a reviewed one
  report [--window ...] [--agent ID | --category C] [--csv]
                     every call the window counts (this month by default),
                     with its rating and decision, after the window's line:
                     the rate recomputed by hand. --csv writes the rows as
                     CSV, for a spreadsheet
  events [--json]    the line's alert events, newest first: a watched window
                     (the hotline's day, month and 30 days, an agent's 30
                     days) going over the line or back within it
  audit [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--json]
                     recount the line's counters of the days from --from to
                     --to (the 30 days ending today by default) from the
                     stored calls, ratings and reviews, and print every day
                     and scope where they differ; exit status 3 when one does.
                     Audit days that are over: a call served meanwhile may
                     count between the two reads
` + apiHelp

// complaintsCmd runs "hotline complaints".
func complaintsCmd(a *cli, args []string) error {
	cmd, rest, err := a.command("complaints", complaintsUsage, args)
	if err != nil || cmd == "" {
		return err
	}
	switch cmd {
	case "line":
		return a.complaintLine(rest)
	case "audit":
		return a.complaintAudit(rest)
	case "pending":
		return a.pendingComplaints(rest)
	case "show":
		return a.showComplaint(rest)
	case "report":
		return a.complaintReport(rest)
	case "events":
		return a.complaintEvents(rest)
	case "review":
		return a.reviewComplaint(rest)
	}
	return usageError("complaints: unknown command %q\n%s", cmd, complaintsUsage)
}

func (a *cli) complaintLine(args []string) error {
	fs := a.flags("line")
	query := windowFlags(fs, "day")
	var agents, asJSON bool
	fs.BoolVar(&agents, "agents", false, "every agent, worst first")
	fs.BoolVar(&asJSON, "json", false, "the API's answer, as JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	q := query()
	if agents && (q.Get("agent") != "" || q.Get("category") != "") {
		return usageError("--agents lists every agent: not with --agent or --category")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	path := "/api/v1/complaint-line"
	if agents {
		path += "/agents"
	}
	var reply any = &evaluation.Line{}
	if agents {
		reply = &evaluation.Ranking{}
	}
	if err := c.Do(context.Background(), http.MethodGet, path+"?"+q.Encode(), nil, reply); err != nil {
		return err
	}
	if asJSON {
		return a.printJSON(reply)
	}
	if rk, ok := reply.(*evaluation.Ranking); ok {
		return writeRanking(a.stdout, *rk)
	}
	return writeLine(a.stdout, *reply.(*evaluation.Line))
}

// per10000 shows a rate; "-" when there is none (no call served).
func per10000(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 2, 64)
}

func windowText(w evaluation.Window) string {
	if w.From == w.To {
		return fmt.Sprintf("%s %s", w.Kind, w.From)
	}
	return fmt.Sprintf("%s %s to %s", w.Kind, w.From, w.To)
}

func writeLine(w io.Writer, l evaluation.Line) error {
	who := "the hotline"
	switch {
	case l.AgentID != "":
		who = "agent " + l.AgentID
	case l.Category != "":
		who = "category " + string(l.Category)
	}
	_, err := fmt.Fprintf(w, `%s, %s: %s
  served %d  bad reviews %d  upheld %d  dismissed %d  pending %d
  rate %s per 10,000 (the line: %d)  if every pending were upheld %s  95%% upper bound %s
  budget %d more effective complaints
  %s
`, who, windowText(l.Window), l.State,
		l.Served, l.BadReview, l.Upheld, l.Dismissed, l.Pending,
		per10000(l.RatePer10000), l.LimitPer10000, per10000(l.WorstCasePer10000), per10000(l.UpperBoundPer10000),
		l.Budget, l.Message)
	return err
}

func writeRanking(w io.Writer, rk evaluation.Ranking) error {
	if _, err := fmt.Fprintf(w, "agents, %s, the line: %d per 10,000\n", windowText(rk.Window), rk.LimitPer10000); err != nil {
		return err
	}
	if len(rk.Agents) == 0 {
		_, err := fmt.Fprintln(w, "no call served")
		return err
	}
	var tb table
	tb.add("AGENT", "STATE", "SERVED", "UPHELD", "PENDING", "DISMISSED", "PER 10,000", "WORST", "UPPER 95%", "BUDGET")
	for _, l := range rk.Agents {
		tb.add(l.AgentID, string(l.State), fmt.Sprint(l.Served), fmt.Sprint(l.Upheld), fmt.Sprint(l.Pending), fmt.Sprint(l.Dismissed),
			per10000(l.RatePer10000), per10000(l.WorstCasePer10000), per10000(l.UpperBoundPer10000), fmt.Sprint(l.Budget))
	}
	return tb.write(w)
}

// auditDiffers is the exit status of an audit that found a difference.
const auditDiffers = 3

func (a *cli) complaintAudit(args []string) error {
	fs := a.flags("audit")
	var from, to string
	var asJSON bool
	fs.StringVar(&from, "from", "", "the first day, YYYY-MM-DD; the 30 days ending with --to when absent")
	fs.StringVar(&to, "to", "", "the last day, included; today when absent")
	fs.BoolVar(&asJSON, "json", false, "the API's answer, as JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	if from != "" {
		q.Set("from", from)
	}
	if to != "" {
		q.Set("to", to)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var au web.LineAudit
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/complaint-line/audit?"+q.Encode(), nil, &au); err != nil {
		return err
	}
	if asJSON {
		if err := a.printJSON(au); err != nil {
			return err
		}
	} else if err := writeAudit(a.stdout, au); err != nil {
		return err
	}
	if n := len(au.Differences); n > 0 {
		return exitError{auditDiffers, fmt.Sprintf("audit: the counters differ from the records on %d days and scopes", n)}
	}
	return nil
}

// writeAudit prints each difference a line per count that differs.
func writeAudit(w io.Writer, au web.LineAudit) error {
	if len(au.Differences) == 0 {
		_, err := fmt.Fprintf(w, "%s to %s: the counters agree with the stored calls, ratings and reviews\n", au.From, au.To)
		return err
	}
	if _, err := fmt.Fprintf(w, "%s to %s: the counters differ from the stored calls, ratings and reviews on %d days and scopes\n", au.From, au.To, len(au.Differences)); err != nil {
		return err
	}
	var tb table
	tb.add("DAY", "SCOPE", "COUNT", "COUNTED", "RECOUNTED")
	for _, d := range au.Differences {
		scope := "hotline"
		switch {
		case d.Scope.AgentID != "":
			scope = "agent " + d.Scope.AgentID
		case d.Scope.Category != "":
			scope = "category " + string(d.Scope.Category)
		}
		for _, f := range []struct {
			name string
			a, b int64
		}{
			{"served", d.Counted.Served, d.Recounted.Served},
			{"praise", d.Counted.Praise, d.Recounted.Praise},
			{"bad_review", d.Counted.BadReview, d.Recounted.BadReview},
			{"no_rating", d.Counted.NoRating, d.Recounted.NoRating},
			{"upheld", d.Counted.Upheld, d.Recounted.Upheld},
			{"dismissed", d.Counted.Dismissed, d.Recounted.Dismissed},
		} {
			if f.a != f.b {
				tb.add(d.Day, scope, f.name, fmt.Sprint(f.a), fmt.Sprint(f.b))
			}
		}
	}
	return tb.write(w)
}

func (a *cli) pendingComplaints(args []string) error {
	fs := a.flags("pending")
	asJSON := fs.Bool("json", false, "the API's answer, as JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	cs, err := client.All[evaluation.Complaint](context.Background(), c, "/api/v1/complaints?status=pending&limit=500")
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(append([]evaluation.Complaint{}, cs...))
	}
	if len(cs) == 0 {
		_, err := fmt.Fprintln(a.stdout, "no bad review waiting for review")
		return err
	}
	now := time.Now()
	var tb table
	tb.add("ID", "AGENT", "CATEGORY", "SERVED", "RATED", "AGE", "")
	for _, c := range cs {
		served := "-"
		if !c.ServedAt.IsZero() {
			served = c.ServedAt.Format("2006-01-02 15:04")
		}
		overdue := ""
		if c.Overdue {
			overdue = "OVERDUE"
		}
		tb.add(c.ID, c.AgentID, string(c.Category), served, c.OpenedAt.Format("2006-01-02 15:04"), age(now.Sub(c.OpenedAt)), overdue)
	}
	return tb.write(a.stdout)
}

// age shows how long a review has waited: 3d4h, 5h12m, 7m.
func age(d time.Duration) string {
	d = max(d, 0).Truncate(time.Minute)
	days, hours, minutes := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh%dm", hours, minutes)
	}
	return fmt.Sprintf("%dm", minutes)
}

func (a *cli) reviewComplaint(args []string) error {
	fs := a.flags("review")
	var upheld, dismissed, reverse bool
	var note string
	fs.BoolVar(&upheld, "upheld", false, "uphold the bad review: an effective complaint")
	fs.BoolVar(&dismissed, "dismissed", false, "dismiss the bad review")
	fs.StringVar(&note, "note", "", "why: kept with the decision")
	fs.BoolVar(&reverse, "reverse", false, "change the decision on a reviewed complaint")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// The id may come before the flags or after them.
	id := ""
	if fs.NArg() > 0 {
		id = fs.Arg(0)
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
	}
	switch {
	case id == "":
		return usageError("review: which complaint? hotline complaints review ID --upheld|--dismissed --note TEXT")
	case fs.NArg() > 0:
		return usageError("review: one complaint at a time, not %q", fs.Args())
	case upheld == dismissed:
		return usageError("review: --upheld or --dismissed, one of them")
	case strings.TrimSpace(note) == "":
		return usageError("review: --note says why")
	}
	status := evaluation.Upheld
	if dismissed {
		status = evaluation.Dismissed
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	path := "/api/v1/complaints/" + url.PathEscape(id) + "/review"
	if reverse {
		path = "/api/v1/complaints/" + url.PathEscape(id) + "/reverse"
	}
	var got evaluation.Complaint
	err = c.Do(context.Background(), http.MethodPost, path, map[string]string{"status": string(status), "note": note}, &got)
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == http.StatusConflict && !reverse {
		return fmt.Errorf("%w\nhotline: to change the decision: hotline complaints review %s --%s --reverse --note TEXT", err, id, status)
	}
	if err != nil {
		return err
	}
	if got.ID == "" {
		// 202: the server's Redis did not answer.
		_, err := fmt.Fprintf(a.stdout, "complaint %s %s: taken; the server keeps it in its journal and applies it when its store answers again\n", id, status)
		return err
	}
	verb := "reviewed"
	if reverse {
		verb = "reversed"
	}
	at := ""
	if got.ReviewedAt != nil {
		at = " at " + got.ReviewedAt.Format(time.RFC3339)
	}
	served := got.ServedAt
	if served.IsZero() {
		served = got.OpenedAt
	}
	_, err = fmt.Fprintf(a.stdout, "complaint %s %s: %s by %s%s (agent %s, call served %s)\n", got.ID, verb, got.Status, got.ReviewedBy, at,
		got.AgentID, served.Format("2006-01-02 15:04"))
	return err
}

func (a *cli) showComplaint(args []string) error {
	fs := a.flags("show")
	asJSON := fs.Bool("json", false, "the API's answer, as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("show: one complaint: hotline complaints show ID")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var got evaluation.Complaint
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/complaints/"+url.PathEscape(fs.Arg(0)), nil, &got); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(got)
	}
	fmt.Fprintf(a.stdout, "complaint %s: %s\nagent %s, %s, served %s, bad review at %s\n", got.ID, got.Status, got.AgentID, got.Category,
		got.ServedAt.Format("2006-01-02 15:04"), got.OpenedAt.Format("2006-01-02 15:04"))
	if len(got.History) == 0 {
		_, err := fmt.Fprintln(a.stdout, "no decision yet")
		return err
	}
	var tb table
	tb.add("DECIDED", "FROM", "TO", "BY", "NOTE")
	for _, d := range got.History {
		tb.add(d.At.Format("2006-01-02 15:04"), string(d.From), string(d.Status), d.By, d.Note)
	}
	return tb.write(a.stdout)
}

func (a *cli) complaintReport(args []string) error {
	fs := a.flags("report")
	query := windowFlags(fs, "month")
	var asCSV bool
	fs.BoolVar(&asCSV, "csv", false, "the calls as CSV")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	q := query()
	c, err := a.client()
	if err != nil {
		return err
	}
	if asCSV {
		q.Set("format", "csv")
		return c.Copy(context.Background(), "/api/v1/complaint-line/report?"+q.Encode(), a.stdout)
	}
	var rep web.LineReport
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/complaint-line/report?"+q.Encode(), nil, &rep); err != nil {
		return err
	}
	if err := writeLine(a.stdout, rep.Line); err != nil {
		return err
	}
	var tb table
	tb.add("DAY", "CALL", "SERVED", "AGENT", "CATEGORY", "RATING", "DECISION", "BY", "EFFECTIVE")
	for _, cc := range rep.Calls {
		eff := ""
		if cc.Effective {
			eff = "yes"
		}
		tb.add(cc.Day, cc.CallID, cc.ServedAt.Format("15:04:05"), cc.AgentID, string(cc.Category), dash(string(cc.Rating)),
			dash(string(cc.Decision)), dash(cc.DecidedBy), eff)
	}
	fmt.Fprintln(a.stdout)
	return tb.write(a.stdout)
}

func (a *cli) complaintEvents(args []string) error {
	return getShown(a, "events", "/api/v1/complaint-line/events?limit=100", args, func(page web.Page[evaluation.Event]) error {
		return a.writeEvents(page.Items)
	})
}

// writeEvents shows the line's events as a table.
func (a *cli) writeEvents(items []evaluation.Event) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(a.stdout, "no event: no watched window has crossed the line")
		return err
	}
	var tb table
	tb.add("AT", "EVENT", "SCOPE", "WINDOW", "DAYS", "UPHELD", "SERVED", "MESSAGE")
	for _, ev := range items {
		scope := "hotline"
		if ev.Line.AgentID != "" {
			scope = "agent " + ev.Line.AgentID
		}
		tb.add(ev.At.Format("2006-01-02 15:04:05"), string(ev.Kind), scope, string(ev.Watch), windowText(ev.Line.Window),
			strconv.FormatInt(ev.Line.Upheld, 10), strconv.FormatInt(ev.Line.Served, 10), ev.Line.Message)
	}
	return tb.write(a.stdout)
}

// windowFlags adds the flags that name a window of the line and a scope
// (--window, whose default is def, --day, --month, --from, --to, --agent,
// --category) to fs; the returned func gives them, once parsed, as the
// API's query parameters.
func windowFlags(fs *flag.FlagSet, def string) func() url.Values {
	days := dayFlags(fs, def, "")
	var agent, category string
	fs.StringVar(&agent, "agent", "", "one agent's calls")
	fs.StringVar(&category, "category", "", "one category's calls: emergency, livelihood, general or complex")
	return func() url.Values {
		q := days()
		for k, v := range map[string]string{"agent": agent, "category": category} {
			if v != "" {
				q.Set(k, v)
			}
		}
		return q
	}
}

// dayFlags adds the flags that name a window of days (--window, whose
// default is def, --day, --month, --from, --to) to fs, the window's help
// ending with more; the returned func gives those set, once parsed, as the
// API's query parameters.
func dayFlags(fs *flag.FlagSet, def, more string) func() url.Values {
	var window, day, month, from, to string
	fs.StringVar(&window, "window", def, "day, month, 30d (the 30 days ending with --day) or range (--from, --to)"+more)
	fs.StringVar(&day, "day", "", "window day and 30d: the (last) day, YYYY-MM-DD; today when absent")
	fs.StringVar(&month, "month", "", "window month: YYYY-MM; this month when absent")
	fs.StringVar(&from, "from", "", "window range: the first day")
	fs.StringVar(&to, "to", "", "window range: the last day, included")
	return func() url.Values {
		q := url.Values{}
		for k, v := range map[string]string{"window": window, "day": day, "month": month, "from": from, "to": to} {
			if v != "" {
				q.Set(k, v)
			}
		}
		return q
	}
}
