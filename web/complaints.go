package web

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/evaluation"
)

// The query parameters naming a window of the line.
var windowParams = []Param{
	{Name: "window", Type: "string", Enum: []string{"day", "month", "30d", "range"}, Description: "day, calendar month, the 30 days ending with day, or from..to; days of the hotline's zone. When absent: month with month, range with from or to, else day"},
	{Name: "day", Type: "date", Description: "window day and 30d: the (last) day; today when absent"},
	{Name: "month", Type: "string", Description: "window month: YYYY-MM; this month when absent"},
	{Name: "from", Type: "date", Description: "window range: the first day"},
	{Name: "to", Type: "date", Description: "window range: the last day, included"},
}

// window reads the window parameters; a bad one is answered 400 naming it.
func (a *api) window(w http.ResponseWriter, r *http.Request) (evaluation.Window, bool) {
	q := r.URL.Query()
	spec := evaluation.WindowSpec{Kind: q.Get("window"), Day: q.Get("day"), Month: q.Get("month"), From: q.Get("from"), To: q.Get("to")}
	if spec.Kind == "" {
		// The window the parameters name: ?month=2026-12 is that month.
		switch {
		case spec.Month != "":
			spec.Kind = string(evaluation.WindowMonth)
		case spec.From != "" || spec.To != "":
			spec.Kind = string(evaluation.WindowRange)
		}
	}
	win, err := spec.Resolve(a.now(), a.location())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return evaluation.Window{}, false
	}
	return win, true
}

func (a *api) complaintLine(w http.ResponseWriter, r *http.Request) {
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	a.lineOf(w, r, win, evaluation.Scope{AgentID: q.Get("agent"), Category: appeal.Category(q.Get("category"))})
}

func (a *api) agentComplaintLine(w http.ResponseWriter, r *http.Request) {
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	a.lineOf(w, r, win, evaluation.Scope{AgentID: r.PathValue("id")})
}

func (a *api) lineOf(w http.ResponseWriter, r *http.Request, win evaluation.Window, sc evaluation.Scope) {
	l, err := a.opts.Ratings.Line(r.Context(), win, sc)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, l)
}

func (a *api) complaintLineAgents(w http.ResponseWriter, r *http.Request) {
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	rk, err := a.opts.Ratings.AgentLines(r.Context(), win)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Every agent: those provisioned who served no call in the window
	// come last, with no rate.
	agents, err := a.opts.Agents.Agents(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	counted := map[string]bool{}
	for _, l := range rk.Agents {
		counted[l.AgentID] = true
	}
	for _, ag := range agents {
		if !counted[ag.ID] {
			rk.Agents = append(rk.Agents, evaluation.Evaluate(win, evaluation.Scope{AgentID: ag.ID}, evaluation.Counts{}, rk.LimitPer10000))
		}
	}
	a.reply(w, r, http.StatusOK, rk)
}

// categoryNames are the appeal categories, for a parameter's enum.
func categoryNames() []string {
	var out []string
	for _, c := range appeal.Categories() {
		out = append(out, string(c))
	}
	return out
}

// The query parameters of an audit.
var auditParams = []Param{
	{Name: "from", Type: "date", Description: "the first day; the 30 days ending with to when absent"},
	{Name: "to", Type: "date", Description: "the last day, included; today when absent"},
}

// LineAudit is the line's counters of a range of days checked against a
// recount from the records they follow.
type LineAudit struct {
	evaluation.Window
	// Differences are the days and scopes whose counters differ from the
	// recount, by day and scope; empty when the counters are right.
	Differences []evaluation.Difference `json:"differences"`
}

// complaintLineAudit recounts the range. A day still being served may
// show a call counted between the two reads: audit days that are over.
func (a *api) complaintLineAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to := q.Get("from"), q.Get("to")
	if to == "" {
		to = a.now().Format(time.DateOnly)
	}
	if from == "" {
		last, err := time.Parse(time.DateOnly, to)
		if err != nil {
			writeError(w, http.StatusBadRequest, (&evaluation.ParamError{Param: "to", Value: to, Reason: "want a day, YYYY-MM-DD"}).Error())
			return
		}
		from = last.AddDate(0, 0, -(evaluation.RollingDays - 1)).Format(time.DateOnly)
	}
	win, err := evaluation.WindowSpec{Kind: string(evaluation.WindowRange), From: from, To: to}.Resolve(a.now(), a.location())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	diffs, err := a.opts.Ratings.Audit(r.Context(), win)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if diffs == nil {
		diffs = []evaluation.Difference{}
	}
	a.reply(w, r, http.StatusOK, LineAudit{Window: win, Differences: diffs})
}

// LineReport is a window's line and every call it counts.
type LineReport struct {
	Line  evaluation.Line          `json:"line"`
	Calls []evaluation.CountedCall `json:"calls"`
}

// reportColumns are the CSV report's columns.
var reportColumns = []string{"day", "call_id", "served_at", "agent_id", "category", "rating", "decision", "decided_by", "decided_at", "reversals", "effective"}

// complaintLineReport streams the window's calls: a month of a busy
// hotline is too many to hold. A store error after the first call was
// written aborts the answer, so that a cut report never looks whole.
func (a *api) complaintLineReport(w http.ResponseWriter, r *http.Request) {
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	sc := evaluation.Scope{AgentID: q.Get("agent"), Category: appeal.Category(q.Get("category"))}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		writeError(w, http.StatusBadRequest, "format "+strconv.Quote(format)+": want json or csv")
		return
	}
	line, err := a.opts.Ratings.Line(r.Context(), win, sc)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	started := false
	var each func(evaluation.CountedCall) error
	var finish func()
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="complaint-line-`+win.From+`-`+win.To+`.csv"`)
		cw := csv.NewWriter(w)
		_ = cw.Write(reportColumns)
		each = func(c evaluation.CountedCall) error {
			started = true
			decided := ""
			if c.DecidedAt != nil {
				decided = c.DecidedAt.In(a.location()).Format(time.RFC3339)
			}
			cw.Write([]string{c.Day, c.CallID, c.ServedAt.In(a.location()).Format(time.RFC3339Nano), c.AgentID, string(c.Category),
				string(c.Rating), string(c.Decision), c.DecidedBy, decided, strconv.Itoa(c.Reversals), strconv.FormatBool(c.Effective)})
			return cw.Error()
		}
		finish = func() { cw.Flush() }
	} else {
		w.Header().Set("Content-Type", "application/json")
		head, _ := json.Marshal(presenter{loc: a.location(), mask: true}.present(line))
		_, _ = w.Write([]byte(`{"line":`))
		_, _ = w.Write(head)
		_, _ = w.Write([]byte(`,"calls":[`))
		first := true
		each = func(c evaluation.CountedCall) error {
			started = true
			doc, err := json.Marshal(c)
			if err != nil {
				return err
			}
			if !first {
				_, _ = w.Write([]byte{','})
			}
			first = false
			_, err = w.Write(doc)
			return err
		}
		finish = func() { _, _ = w.Write([]byte("]}\n")) }
	}
	if err := a.opts.Ratings.Report(r.Context(), win, sc, each); err != nil {
		a.opts.Logger.Warn().Err(err).Bool("started", started).Str("path", r.URL.Path).Msg("complaint line report cut short")
		panic(http.ErrAbortHandler)
	}
	finish()
}

func (a *api) complaintLineEvents(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	evs, next, err := a.opts.Ratings.Events(r.Context(), limit, cursor)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, Page[evaluation.Event]{Items: evs, NextCursor: next})
}

func (a *api) getComplaint(w http.ResponseWriter, r *http.Request) {
	c, err := a.opts.Ratings.Complaint(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, c)
}
