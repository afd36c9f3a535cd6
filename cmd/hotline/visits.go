package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/web"
)

const visitsUsage = `usage: hotline visits [--api URL] <command>

commands (a return-visit agent's, with its own token):
  next               take the next visit due, emergencies first, with a
                     10-minute lease
  renew ID           renew the lease for 10 minutes from now
  call ID            call the citizen: your phone rings first; when you
                     answer, the citizen's is dialled (showing the hotline's
                     number) and you are connected. A citizen not reached is
                     an attempt recorded (busy, no_answer, unreachable)
  attempt ID --outcome OUTCOME [--note TEXT] [--later TIME]
                     record an attempt: completed, no_answer, busy,
                     unreachable, wrong_number, refused (the number goes on
                     the do-not-call list) or call_later (at TIME, RFC 3339)
  complete ID --response yes|no --solution yes|partly|no
           --satisfaction satisfied|basically_satisfied|dissatisfied [--note TEXT]
                     record the citizen's three answers: did the organizer
                     contact you, was it solved, how satisfied are you
` + apiHelp

// visitsCmd runs "hotline visits".
func visitsCmd(a *cli, args []string) error {
	cmd, rest, err := a.command("visits", visitsUsage, args)
	if err != nil || cmd == "" {
		return err
	}
	switch cmd {
	case "next":
		return a.nextVisit(rest)
	case "renew":
		return a.renewVisit(rest)
	case "call":
		return a.callVisit(rest)
	case "attempt":
		return a.attemptVisit(rest)
	case "complete":
		return a.completeVisit(rest)
	}
	return usageError("visits: unknown command %q\n%s", cmd, visitsUsage)
}

func (a *cli) nextVisit(args []string) error {
	fs := a.flags("next")
	asJSON := fs.Bool("json", false, "the API's answer, as JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var w web.VisitWork
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/visits/next", nil, &w); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(w)
	}
	v := w.Visit
	fmt.Fprintf(a.stdout, "visit %s (%s), yours until %s\n", v.ID, strings.ReplaceAll(string(v.Kind), "_", " "), w.LeaseUntil.Format(time.TimeOnly))
	fmt.Fprintf(a.stdout, "appeal %s: %s, taken %s", v.Appeal, w.Category, w.Created.Format("2006-01-02"))
	if len(w.Organizers) > 0 {
		fmt.Fprintf(a.stdout, ", organizers %s", strings.Join(w.Organizers, ", "))
	}
	fmt.Fprintln(a.stdout)
	if fb := w.Feedback; fb != nil {
		fmt.Fprintf(a.stdout, "the organizer's feedback: %s", fb.Result)
		if fb.Reason != "" {
			fmt.Fprintf(a.stdout, ": %s", fb.Reason)
		}
		fmt.Fprintln(a.stdout)
	}
	if len(v.Attempts) > 0 {
		fmt.Fprintf(a.stdout, "%d attempts before, the last %s\n", len(v.Attempts), v.Attempts[len(v.Attempts)-1].Outcome)
	}
	return nil
}

func (a *cli) renewVisit(args []string) error {
	id, err := parseWithID(a.flags("renew"), args)
	if err != nil {
		return err
	}
	if id == "" {
		return usageError("renew: which visit? give its id")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var l web.LeaseReply
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/visits/"+url.PathEscape(id)+"/renew", nil, &l); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "visit %s yours until %s\n", id, l.Until.Format(time.TimeOnly))
	return err
}

func (a *cli) callVisit(args []string) error {
	id, err := parseWithID(a.flags("call"), args)
	if err != nil {
		return err
	}
	if id == "" {
		return usageError("call: which visit? give its id")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "your phone rings: answer it, and the citizen is called")
	var rep web.VisitCallReply
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/visits/"+url.PathEscape(id)+"/call", nil, &rep); err != nil {
		return err
	}
	switch {
	case rep.State == web.VisitCallConnected:
		_, err = fmt.Fprintf(a.stdout, "connected (call %s): when you are done, hotline visits complete %s --response ... --solution ... --satisfaction ...\n", rep.CallID, id)
	case rep.Outcome != "":
		fmt.Fprintf(a.stdout, "the citizen was not reached: %s, recorded", rep.Outcome)
		if rep.Visit != nil && rep.Visit.State == callback.Waiting {
			fmt.Fprintf(a.stdout, "; due again %s", rep.Visit.Due.Format("2006-01-02 15:04"))
		}
		_, err = fmt.Fprintln(a.stdout)
	default:
		return fmt.Errorf("not connected: %s", rep.Reason)
	}
	return err
}

func (a *cli) attemptVisit(args []string) error {
	fs := a.flags("attempt")
	outcome := fs.String("outcome", "", "how it went")
	note := fs.String("note", "", "a note for the record")
	later := fs.String("later", "", "call_later: when the citizen asked to be called, RFC 3339")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if id == "" {
		return usageError("attempt: which visit? give its id")
	}
	b := web.AttemptRequest{Outcome: callback.Outcome(*outcome), Note: *note}
	if *later != "" {
		t, err := time.Parse(time.RFC3339, *later)
		if err != nil {
			return usageError("attempt: --later %q: want an RFC 3339 time such as 2026-12-09T10:00:00+08:00", *later)
		}
		b.Later = &t
	}
	return a.postAttempt(id, b)
}

func (a *cli) completeVisit(args []string) error {
	fs := a.flags("complete")
	response := fs.String("response", "", "did the organizer contact you: yes or no")
	solution := fs.String("solution", "", "was it solved: yes, partly or no")
	satisfaction := fs.String("satisfaction", "", "satisfied, basically_satisfied or dissatisfied")
	note := fs.String("note", "", "a note for the record")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if id == "" {
		return usageError("complete: which visit? give its id")
	}
	ans := callback.Answers{Response: callback.Response(*response), Solution: callback.Solution(*solution), Satisfaction: callback.Satisfaction(*satisfaction)}
	if err := ans.Check(); err != nil {
		return usageError("complete: %s", strings.TrimPrefix(err.Error(), callback.ErrInvalid.Error()+": "))
	}
	return a.postAttempt(id, web.AttemptRequest{Outcome: callback.Completed, Note: *note, Answers: &ans})
}

func (a *cli) postAttempt(id string, b web.AttemptRequest) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	var v callback.Visit
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/visits/"+url.PathEscape(id)+"/attempts", b, &v); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "visit %s: %s", v.ID, v.State)
	if v.State == callback.Waiting {
		fmt.Fprintf(a.stdout, ", due %s", v.Due.Format("2006-01-02 15:04"))
	}
	_, err = fmt.Fprintln(a.stdout)
	return err
}

const ratesUsage = `usage: hotline rates [--api URL] [command]

commands (a supervisor's):
  [show] [--by all|organizer|category|district] [--window ...] [--csv]
                     the three rates of completed return visits, each with
                     its numerator and denominator (this month by default);
                     --csv lists every visit counted, to recompute by hand
  audit [--window ...]
                     recompute the rates' counters from the visit records;
                     exits 3 when they differ or a visit was not counted
` + apiHelp

// ratesCmd runs "hotline rates".
func ratesCmd(a *cli, args []string) error {
	cmd, rest, err := a.command("rates", ratesUsage, withDefault(args, "show"))
	if err != nil || cmd == "" {
		return err
	}
	switch cmd {
	case "show":
		return a.showRates(rest)
	case "audit":
		return a.auditRates(rest)
	}
	return usageError("rates: unknown command %q\n%s", cmd, ratesUsage)
}

// rateWindow adds the window flags of the rates, this month by default.
func rateWindow(fs *flag.FlagSet) func() url.Values {
	days := dayFlags(fs, "", "; month when none is named")
	return func() url.Values {
		q := days()
		if !q.Has("window") && !q.Has("day") && !q.Has("from") && !q.Has("to") {
			q.Set("window", "month")
		}
		return q
	}
}

func (a *cli) showRates(args []string) error {
	fs := a.flags("show")
	query := rateWindow(fs)
	by := fs.String("by", "all", "all, organizer, category or district")
	asCSV := fs.Bool("csv", false, "every visit counted, as CSV")
	asJSON := fs.Bool("json", false, "the API's answer, as JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	q := query()
	q.Set("by", *by)
	c, err := a.client()
	if err != nil {
		return err
	}
	if *asCSV {
		q.Set("format", "csv")
		return c.Copy(context.Background(), "/api/v1/rates?"+q.Encode(), a.stdout)
	}
	var rep web.RatesReply
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/rates?"+q.Encode(), nil, &rep); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(rep)
	}
	fmt.Fprintf(a.stdout, "return visits completed %s, by %s", windowText(rep.Window), rep.By)
	if rep.PartlySolvedCounts {
		fmt.Fprint(a.stdout, " (partly solved counts as solved)")
	}
	fmt.Fprintln(a.stdout)
	var tb table
	tb.add(strings.ToUpper(string(rep.By)), "COMPLETED", "RESPONSE", "SOLUTION", "SATISFACTION")
	for _, r := range rep.Items {
		tb.add(r.Group, strconv.FormatInt(r.Tally.Completed, 10), fractionText(r.Response), fractionText(r.Solution), fractionText(r.Satisfaction))
	}
	return tb.write(a.stdout)
}

// fractionText is a rate with its counts: "2/3 66.7%", or "0/0 -".
func fractionText(f callback.Fraction) string {
	if f.Rate == nil {
		return fmt.Sprintf("%d/%d -", f.Numerator, f.Denominator)
	}
	return fmt.Sprintf("%d/%d %.1f%%", f.Numerator, f.Denominator, *f.Rate*100)
}

func (a *cli) auditRates(args []string) error {
	fs := a.flags("audit")
	query := rateWindow(fs)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var au web.AuditReply
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/rates/audit?"+query().Encode(), nil, &au); err != nil {
		return err
	}
	if au.OK {
		_, err := fmt.Fprintf(a.stdout, "%s: the rates' counters agree with the %d completed return visits' records\n", windowText(au.Window), au.Visits)
		return err
	}
	fmt.Fprintf(a.stdout, "%s: the rates' counters differ from the %d completed return visits' records\n", windowText(au.Window), au.Visits)
	var tb table
	tb.add("DAY", "GROUP", "COUNTER", "KEPT", "RECORDS")
	for _, d := range au.Differences {
		tb.add(d.Day, d.Group, d.Counter, strconv.FormatInt(d.Kept, 10), strconv.FormatInt(d.Records, 10))
	}
	if err := tb.write(a.stdout); err != nil {
		return err
	}
	for _, id := range au.Uncounted {
		fmt.Fprintf(a.stdout, "visit %s completed, counted nowhere\n", id)
	}
	return exitError{auditDiffers, fmt.Sprintf("rates audit: %d counters differ, %d visits not counted", len(au.Differences), len(au.Uncounted))}
}
