package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
  attempt ID --outcome OUTCOME [--note TEXT] [--later TIME]
                     record an attempt: completed, no_answer, busy,
                     unreachable, wrong_number, refused (the number goes on
                     the do-not-call list) or call_later (at TIME, RFC 3339)
` + apiHelp

// visitsCmd runs "hotline visits".
func visitsCmd(args []string, stdout, stderr io.Writer) error {
	a := &cli{api: apiDefault(), stdout: stdout, stderr: stderr}
	cmd, rest, err := a.command("visits", visitsUsage, args)
	if err != nil || cmd == "" {
		return err
	}
	switch cmd {
	case "next":
		return a.nextVisit(rest)
	case "renew":
		return a.renewVisit(rest)
	case "attempt":
		return a.attemptVisit(rest)
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
