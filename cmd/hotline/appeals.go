package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/web"
)

const appealsUsage = `usage: hotline appeals [--api URL] <command>

commands:
  list [--state S] [--organizer ID] [--category C] [--overdue] [--limit N] [--json]
                     appeals, newest first; S: received, dispatched, signed,
                     fed_back, closed, returned; --overdue: those whose stage
                     is past its deadline
  show ID [--json]   an appeal and its history: every step, who, when
  create --caller NUMBER --category C --channel CH --summary TEXT
         --consent yes|no --evidence TEXT [--request-id ID]
                     take an appeal by hand; CH: phone, web, app, wechat,
                     email, letter
  dispatch ID --lead ORG [--others ORG,ORG] [--owner-unknown] [--note TEXT]
                     send it to its organizers; the organizers' clocks start
  sign ID [--organizer ORG] [--note TEXT]
                     the organizer signs for it (an organizer's own token
                     acts for its organizer)
  feedback ID --result solved|not_solved|cannot_be_solved [--reason TEXT]
              [--next-steps TEXT] [--next-at TIME] [--organizer ORG] [--note TEXT]
                     the lead reports back; unless solved, why and what next
                     (and for not_solved when: TIME as RFC 3339)
  return ID --reason TEXT [--organizer ORG]
                     the organizer sends it back as not its own
  close ID [--note TEXT]
` + apiHelp

const peakUsage = `usage: hotline peak [--api URL] [status | on|off --reason TEXT [--by NAME]]

  status             peak mode now and its latest switches (the default)
  on, off            switch it, saying why: general and complex appeals
                     created while it is on get 48 h to dispatch, not 24
` + apiHelp

// appealsCmd runs "hotline appeals".
func appealsCmd(a *cli, args []string) error {
	cmd, rest, err := a.command("appeals", appealsUsage, args)
	if err != nil || cmd == "" {
		return err
	}
	switch cmd {
	case "list":
		return a.listAppeals(rest)
	case "show":
		return a.showAppeal(rest)
	case "create":
		return a.createAppeal(rest)
	case "dispatch":
		return a.dispatchAppeal(rest)
	case "sign":
		return a.organizerStep("sign", rest)
	case "return":
		return a.organizerStep("return", rest)
	case "feedback":
		return a.feedbackAppeal(rest)
	case "close":
		return a.closeAppeal(rest)
	}
	return usageError("appeals: unknown command %q\n%s", cmd, appealsUsage)
}

func (a *cli) listAppeals(args []string) error {
	fs := a.flags("list")
	state := fs.String("state", "", "only appeals in the state")
	organizer := fs.String("organizer", "", "only appeals dispatched to the organizer")
	category := fs.String("category", "", "only appeals of the category")
	overdue := fs.Bool("overdue", false, "only appeals whose current stage is past its deadline")
	limit := fs.Int("limit", 50, "at most this many")
	asJSON := fs.Bool("json", false, "the API's answer, as JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"state": *state, "organizer": *organizer, "category": *category} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *overdue {
		q.Set("overdue", "true")
	}
	q.Set("limit", strconv.Itoa(*limit))
	c, err := a.client()
	if err != nil {
		return err
	}
	var page web.Page[appeal.Appeal]
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/appeals?"+q.Encode(), nil, &page); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(page)
	}
	if len(page.Items) == 0 {
		_, err := fmt.Fprintln(a.stdout, "no appeal")
		return err
	}
	now := time.Now()
	var tb table
	tb.add("APPEAL", "CATEGORY", "STATE", "ORGANIZERS", "CREATED", "WAITS FOR", "DUE", "")
	for _, ap := range page.Items {
		stage, due := ap.Due()
		dueText, late := "-", ""
		if !due.IsZero() {
			dueText = due.Format("2006-01-02 15:04")
			if ap.Overdue(now) {
				late = "OVERDUE"
			}
		}
		tb.add(ap.ID, string(ap.Category), string(ap.State), organizersText(ap.Assignment), ap.CreatedAt.Format("2006-01-02 15:04"),
			dash(stage), dueText, late)
	}
	if err := tb.write(a.stdout); err != nil {
		return err
	}
	if page.NextCursor != "" {
		_, err := fmt.Fprintf(a.stdout, "(more: --limit %d shows more)\n", *limit*2)
		return err
	}
	return nil
}

// organizersText names an assignment's organizers, the lead first and
// marked.
func organizersText(asg *appeal.Assignment) string {
	if asg == nil {
		return "-"
	}
	s := asg.Lead + "*"
	if len(asg.Others) > 0 {
		s += "," + strings.Join(asg.Others, ",")
	}
	return s
}

func (a *cli) showAppeal(args []string) error {
	fs := a.flags("show")
	asJSON := fs.Bool("json", false, "the API's answers, as JSON")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var ap appeal.Appeal
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/appeals/"+url.PathEscape(id), nil, &ap); err != nil {
		return err
	}
	var events web.EventList
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/appeals/"+url.PathEscape(id)+"/events", nil, &events); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(struct {
			Appeal appeal.Appeal  `json:"appeal"`
			Events []appeal.Event `json:"events"`
		}{ap, events.Items})
	}
	stage, due := ap.Due()
	fmt.Fprintf(a.stdout, "appeal %s: %s, %s\ncaller %s, created %s", ap.ID, ap.Category, ap.State, ap.Caller, ap.CreatedAt.Format("2006-01-02 15:04:05"))
	if ap.Channel != "" {
		fmt.Fprintf(a.stdout, " (%s)", ap.Channel)
	}
	fmt.Fprintln(a.stdout)
	if ap.Summary != "" {
		fmt.Fprintf(a.stdout, "summary: %s\n", ap.Summary)
	}
	consent := "no return visit"
	if ap.Consent.Given {
		consent = "consents to a return visit"
	}
	fmt.Fprintf(a.stdout, "%s; organizers %s\n", consent, organizersText(ap.Assignment))
	fmt.Fprintf(a.stdout, "deadlines: dispatch %s, sign %s, feedback %s\n",
		ap.DispatchDue.Format("2006-01-02 15:04"), ap.SignDue.Format("2006-01-02 15:04"), ap.FeedbackDue.Format("2006-01-02 15:04"))
	if stage != "" {
		late := ""
		if ap.Overdue(time.Now()) {
			late = ", OVERDUE"
		}
		fmt.Fprintf(a.stdout, "waits for %s by %s%s\n", stage, due.Format("2006-01-02 15:04"), late)
	}
	if fb := ap.Feedback; fb != nil {
		fmt.Fprintf(a.stdout, "feedback: %s", fb.Result)
		if fb.Reason != "" {
			fmt.Fprintf(a.stdout, ": %s", fb.Reason)
		}
		if fb.NextSteps != "" {
			fmt.Fprintf(a.stdout, "; next: %s", fb.NextSteps)
		}
		if fb.NextAt != nil {
			fmt.Fprintf(a.stdout, " by %s", fb.NextAt.Format("2006-01-02 15:04"))
		}
		fmt.Fprintln(a.stdout)
	}
	fmt.Fprintln(a.stdout)
	var tb table
	tb.add("#", "AT", "STEP", "BY", "FROM", "TO", "WHAT")
	for _, ev := range events.Items {
		tb.add(strconv.Itoa(ev.Seq), ev.At.Format("2006-01-02 15:04:05"), string(ev.Step), ev.By, dash(string(ev.From)), string(ev.To), eventText(ev))
	}
	return tb.write(a.stdout)
}

// eventText says what a step was, briefly.
func eventText(ev appeal.Event) string {
	var parts []string
	if ev.Assignment != nil {
		parts = append(parts, "to "+organizersText(ev.Assignment))
		if ev.Assignment.OwnerUnknown {
			parts = append(parts, "owner unknown")
		}
	}
	if ev.Organizer != "" {
		parts = append(parts, "organizer "+ev.Organizer)
	}
	if ev.Feedback != nil {
		parts = append(parts, string(ev.Feedback.Result))
	}
	if ev.Reason != "" {
		parts = append(parts, "reason: "+ev.Reason)
	}
	if ev.Note != "" {
		parts = append(parts, "note: "+ev.Note)
	}
	if ev.Late {
		parts = append(parts, "LATE")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

func (a *cli) createAppeal(args []string) error {
	fs := a.flags("create")
	var b web.AppealRequest
	fs.StringVar(&b.Caller, "caller", "", "the citizen's number")
	category := fs.String("category", "", "emergency, livelihood, general or complex")
	fs.StringVar(&b.Channel, "channel", "", "where it came from: phone, web, app, wechat, email, letter")
	fs.StringVar(&b.Summary, "summary", "", "what the citizen asks")
	consent := fs.String("consent", "", "yes or no: the citizen's answer to a return visit")
	fs.StringVar(&b.Consent.Evidence, "evidence", "", "how that answer was recorded")
	fs.StringVar(&b.RequestID, "request-id", "", "makes a retry safe: one appeal per id")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	switch *consent {
	case "yes":
		b.Consent.Given = true
	case "no":
	default:
		return usageError("create: --consent yes or --consent no")
	}
	b.Category = appeal.Category(*category)
	c, err := a.client()
	if err != nil {
		return err
	}
	var ap appeal.Appeal
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/appeals", b, &ap); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "appeal %s: %s, to be dispatched by %s\n", ap.ID, ap.Category, ap.DispatchDue.Format("2006-01-02 15:04"))
	return err
}

func (a *cli) dispatchAppeal(args []string) error {
	fs := a.flags("dispatch")
	var b web.DispatchRequest
	fs.StringVar(&b.Lead, "lead", "", "the lead organizer, who signs and reports back")
	others := fs.String("others", "", "co-organizers, comma separated")
	fs.BoolVar(&b.OwnerUnknown, "owner-unknown", false, "no unit's duty covers it: the lead is a district government")
	fs.StringVar(&b.Note, "note", "", "a note for the history")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if *others != "" {
		b.Others = strings.Split(*others, ",")
	}
	return a.appealStep(id, "dispatch", b)
}

func (a *cli) organizerStep(step string, args []string) error {
	fs := a.flags(step)
	var b web.OrganizerStepRequest
	fs.StringVar(&b.Organizer, "organizer", "", "the organizer acted for (an organizer's own token: its own)")
	fs.StringVar(&b.Reason, "reason", "", "why it is not the organizer's (return)")
	fs.StringVar(&b.Note, "note", "", "a note for the history")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	return a.appealStep(id, step, b)
}

func (a *cli) feedbackAppeal(args []string) error {
	fs := a.flags("feedback")
	var b web.FeedbackRequest
	result := fs.String("result", "", "solved, not_solved or cannot_be_solved")
	fs.StringVar(&b.Organizer, "organizer", "", "the lead organizer (an organizer's own token: its own)")
	fs.StringVar(&b.Reason, "reason", "", "why it is not solved")
	fs.StringVar(&b.NextSteps, "next-steps", "", "what comes next")
	nextAt := fs.String("next-at", "", "when the next steps will be taken, RFC 3339")
	fs.StringVar(&b.Note, "note", "", "a note for the history")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	b.Result = appeal.Result(*result)
	if *nextAt != "" {
		t, err := time.Parse(time.RFC3339, *nextAt)
		if err != nil {
			return usageError("feedback: --next-at %q: want an RFC 3339 time such as 2026-12-09T10:00:00+08:00", *nextAt)
		}
		b.NextAt = &t
	}
	return a.appealStep(id, "feedback", b)
}

func (a *cli) closeAppeal(args []string) error {
	fs := a.flags("close")
	var b web.CloseRequest
	fs.StringVar(&b.Note, "note", "", "a note for the history")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	return a.appealStep(id, "close", b)
}

// appealStep posts a step and says where it left the appeal.
func (a *cli) appealStep(id, step string, body any) error {
	if id == "" {
		return usageError("%s: which appeal? give its id", step)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var st web.StepReply
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/appeals/"+url.PathEscape(id)+"/"+step, body, &st); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "appeal %s: %s → %s", st.Appeal.ID, st.Event.From, st.Event.To)
	if st.Event.Late {
		fmt.Fprint(a.stdout, " (late)")
	}
	if stage, due := st.Appeal.Due(); stage != "" {
		fmt.Fprintf(a.stdout, "; waits for %s by %s", stage, due.Format("2006-01-02 15:04"))
	}
	_, err = fmt.Fprintln(a.stdout)
	return err
}

// peakCmd runs "hotline peak".
func peakCmd(a *cli, args []string) error {
	cmd, rest, err := a.command("peak", peakUsage, withDefault(args, "status", "status", "on", "off"))
	if err != nil || cmd == "" {
		return err
	}
	switch cmd {
	case "status":
		return a.peakStatus(rest)
	case "on", "off":
		fs := a.flags(cmd)
		reason := fs.String("reason", "", "why (required): it is audited")
		by := fs.String("by", "", "who ordered it, when not you")
		if err := noArgs(fs, rest); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		var sw appeal.PeakSwitch
		if err := c.Do(context.Background(), http.MethodPost, "/api/v1/peak-mode", web.PeakRequest{On: cmd == "on", By: *by, Reason: *reason}, &sw); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "peak mode %s at %s by %s: %s\n", onOff(sw.On), sw.At.Format("2006-01-02 15:04:05"), sw.By, sw.Reason)
		return err
	}
	return usageError("peak: unknown command %q\n%s", cmd, peakUsage)
}

func (a *cli) peakStatus(args []string) error {
	fs := a.flags("status")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var st appeal.PeakStatus
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/peak-mode", nil, &st); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "peak mode %s\n", onOff(st.On))
	if len(st.Switches) == 0 {
		return nil
	}
	var tb table
	tb.add("AT", "SWITCHED", "BY", "REASON")
	for _, sw := range st.Switches {
		tb.add(sw.At.Format("2006-01-02 15:04:05"), onOff(sw.On), sw.By, sw.Reason)
	}
	return tb.write(a.stdout)
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
