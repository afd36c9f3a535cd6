package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/app"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/baresiptest"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/web"
	"github.com/hotline12345/hotline/web/console/consoletest"
)

// Each role logs in and sees its own pages only: the navigation offers
// them, and a page of another role, asked for by its address, is refused
// without asking the API. An account of two roles sees both's pages.
func TestRolesSeeTheirPagesOnly(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "a1", Name: "Wang Fang", SIPUser: "agent1", Password: "agent1-pass", Categories: allCategories}}
		c.Trunks = []config.Trunk{{Name: "carrier", Host: "127.0.0.9", Port: 5060, Transport: "udp", CallerID: "12345", Channels: 30, Endpoint: "carrier",
			Probe: config.TrunkProbe{Interval: config.Duration(time.Hour), Timeout: config.Duration(time.Second), DownAfter: 3, UpAfter: 1}}}
	})
	addAccounts(t, h,
		auth.UserSpec{Name: "wang", Roles: []auth.Role{auth.Agent}, AgentID: "a1"},
		auth.UserSpec{Name: "qian", Roles: []auth.Role{auth.Visitor}, AgentID: "a1"},
		auth.UserSpec{Name: "both", Roles: []auth.Role{auth.Agent, auth.Visitor}, AgentID: "a1"},
		auth.UserSpec{Name: "li", Roles: []auth.Role{auth.Supervisor}},
		auth.UserSpec{Name: "zhao", Roles: []auth.Role{auth.Ops}},
		auth.UserSpec{Name: "root", Roles: []auth.Role{auth.Admin}},
	)
	for _, c := range []struct {
		user      string
		pages     []string
		forbidden string
	}{
		{"wang", []string{"agent"}, "wallboard"},
		{"qian", []string{"visits"}, "agent"},
		{"both", []string{"agent", "visits"}, "audit"},
		{"li", []string{"wallboard", "reviews", "line", "appeals", "rates"}, "ops"},
		{"zhao", []string{"ops"}, "audit"},
		{"root", []string{"audit"}, "reviews"},
	} {
		t.Run(c.user, func(t *testing.T) {
			tab := login(t, h, c.user)
			if got := tab.Nav(); !slices.Equal(got, c.pages) {
				t.Errorf("pages offered %v, want %v", got, c.pages)
			}
			for _, p := range c.pages {
				tab.Show(p)
				if p == "audit" {
					// Searched on the server by account: li's login and
					// logout, from the subtest before.
					tab.Type("#audit-user", "li")
					tab.Click("#audit-search button[type=submit]")
					tab.Wait(`(() => { const rows = [...document.querySelectorAll('#audit-table tbody tr')]; ` +
						`return rows.length === 2 && rows.every((tr) => tr.children[1].textContent === 'li'); })()`)
					// The export is searched the same way.
					tab.Wait(`new URL(document.querySelector('#audit-csv').href).searchParams.get('user') === 'li'`)
				}
				if p == "ops" {
					// The node this test runs, with its checks as it
					// reported them.
					tab.Wait(`[...document.querySelectorAll('#nodes-table tbody tr')].some((tr) => tr.textContent.includes('redis: ok'))`)
				}
				if *update && c.user != "both" {
					tab.Wait(`!document.querySelector('.page-body .message.error')`)
					shoot(t, tab, p)
				}
			}
			tab.Go("/console/#/" + c.forbidden)
			tab.Wait(fmt.Sprintf(`document.querySelector('[data-forbidden=%q]') !== null`, c.forbidden))
			if tab.Text(".page-body") != "" {
				t.Errorf("the page of another role was shown")
			}
			tab.Click("#logout")
			tab.Wait(`document.body.dataset.session === 'none'`)
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		tab := browser.Session(t, h.API())
		tab.Go("/console/")
		tab.Type("#login-user", "li")
		tab.Type("#login-password", "not-the-password")
		tab.Click("#login-form button[type=submit]")
		tab.Wait(`document.getElementById('login-error').textContent !== ''`)
		if got := tab.Text("#login-error"); got != "Wrong user or password." {
			t.Errorf("error %q", got)
		}
		if tab.Text("body") == "" || consoletest.Eval[string](tab, `document.body.dataset.session`) != "none" {
			t.Errorf("a wrong password opened a session")
		}
	})
}

// An agent pauses for lunch on the console and the supervisor's
// wallboard, open in another browser, shows it without a reload; then
// the agent resumes and the wallboard shows them available again.
func TestPauseAndResumeShowOnTheWallboard(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "a1", Name: "Wang Fang", SIPUser: "agent1", Password: "agent1-pass", Categories: allCategories}}
	})
	addAccounts(t, h,
		auth.UserSpec{Name: "wang", Roles: []auth.Role{auth.Agent}, AgentID: "a1"},
		auth.UserSpec{Name: "li", Roles: []auth.Role{auth.Supervisor}},
	)
	baresiptest.Start(t, baresiptest.Options{User: "agent1", Password: "agent1-pass", Registrar: h.SIP.String(), Tone: 440, IP: "127.0.0.2"})
	agentState(t, acd.NewStore(h.Client, acd.StoreOptions{}), "a1", acd.Available)

	board := login(t, h, "li")
	row := `#agents tr[data-key="a1"] td[data-col="state"] .badge`
	board.Wait(fmt.Sprintf(`(document.querySelector(%q) || {}).dataset?.value === 'available'`, row))
	// A page that reloads loses this mark.
	consoletest.Eval[bool](board, `window.notReloaded = true`)

	desk := login(t, h, "wang")
	desk.Wait(`document.querySelector('#agent-state .badge')?.dataset.value === 'available'`)
	desk.SetValue("#pause-reason", "lunch")
	desk.Click("#pause")
	desk.Wait(`document.querySelector('#agent-state .badge')?.dataset.value === 'paused'`)
	if got := desk.Text(`#agent-state [data-fact="reason"]`); got != "Lunch" {
		t.Errorf("the desk's reason %q", got)
	}
	shoot(t, desk, "agent")

	board.Wait(fmt.Sprintf(`(document.querySelector(%q) || {}).dataset?.value === 'paused'`, row))
	if got := board.Text(`#agents tr[data-key="a1"] td[data-col="reason"]`); got != "Lunch" {
		t.Errorf("the wallboard's reason %q", got)
	}
	if got := board.Text(`#agents-by-state [data-state="paused"] .stat-value`); got != "1" {
		t.Errorf("paused agents on the wallboard %q", got)
	}

	desk.Click("#resume")
	desk.Wait(`document.querySelector('#agent-state .badge')?.dataset.value === 'available'`)
	board.Wait(fmt.Sprintf(`(document.querySelector(%q) || {}).dataset?.value === 'available'`, row))
	if !consoletest.Eval[bool](board, `window.notReloaded === true`) {
		t.Error("the wallboard reloaded")
	}
}

// A citizen's call from sipp, waiting in the queue, shows on the
// wallboard within a second of joining the queue. The test runs before
// the parallel ones, alone with the browser: it measures a second.
func TestCallShowsOnTheWallboardWithinASecond(t *testing.T) {
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "a1", Name: "Wang Fang", SIPUser: "agent1", Password: "agent1-pass", Categories: allCategories}}
	})
	addAccounts(t, h, auth.UserSpec{Name: "li", Roles: []auth.Role{auth.Supervisor}})
	// The only agent is registered but paused: the call waits for them.
	phone := baresiptest.Start(t, baresiptest.Options{User: "agent1", Password: "agent1-pass", Registrar: h.SIP.String(), Tone: 440, IP: "127.0.0.3"})
	agents := acd.NewStore(h.Client, acd.StoreOptions{})
	agentState(t, agents, "a1", acd.Available)
	if err := h.APIClient(t, auth.Supervisor).Do(t.Context(), http.MethodPost, "/api/v1/agents/a1/pause", json.RawMessage(`{"reason":"meeting"}`), nil); err != nil {
		t.Fatal(err)
	}

	board := login(t, h, "li")
	board.Wait(`document.querySelector('#agents tr[data-key="a1"] td[data-col="state"] .badge')?.dataset.value === 'paused'`)
	// The page notes when the call's row appears.
	consoletest.Eval[bool](board, `(() => {
		window.rowSeen = null;
		const look = () => {
			const row = document.querySelector('#queue-calls tbody tr[data-key]');
			if (row && !window.rowSeen) window.rowSeen = {at: Date.now(), since: row.querySelector('[data-since]').dataset.since};
		};
		new MutationObserver(look).observe(document.body, {subtree: true, childList: true});
		return true;
	})()`)

	done := make(chan sipptest.Result, 1)
	go func() {
		done <- sipptest.Run(t, h.SIP, sipptest.Scenario{
			Caller:  "1390000",
			Actions: sipptest.Keys(time.Second, 500*time.Millisecond, "31"),
			WaitBye: time.Minute,
		}, sipptest.Options{})
	}()
	board.Wait(`window.rowSeen !== null`)
	seen := consoletest.Eval[struct {
		At    int64  `json:"at"`
		Since string `json:"since"`
	}](board, `window.rowSeen`)
	since, err := time.Parse(time.RFC3339Nano, seen.Since)
	if err != nil {
		t.Fatal(err)
	}
	if lag := time.UnixMilli(seen.At).Sub(since); lag > time.Second || lag < -time.Second {
		t.Errorf("the call showed %v after it joined the queue, want within a second", lag)
	}
	board.Wait(`document.querySelector('#wallboard-tiles [data-fact="in-progress"]')?.dataset.waiting === '1'`)
	if got := board.Text(`#queue-by-category tr[data-key="general"] td[data-col="waiting"]`); got != "1" {
		t.Errorf("general calls waiting %q", got)
	}
	shoot(t, board, "wallboard")

	// The phone unregisters while the hotline answers, then the hotline
	// stops and hangs the caller up.
	phone.Stop()
	h.Stop(t, app.ErrInterrupt)
	if res := <-done; res.Successful+res.Failed != 1 {
		t.Errorf("sipp: %s", res)
	}
}

// A real call rated with a bad review: the supervisor sees it pending
// with the call's record, upholds it, and the complaint line on the
// wallboard in another tab counts it without a reload.
func TestUpholdingABadReviewMovesTheLine(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "a1", Name: "Wang Fang", SIPUser: "agent1", Password: "agent1-pass", Categories: allCategories}}
		c.ACD.WrapUp = 0
	})
	addAccounts(t, h, auth.UserSpec{Name: "li", Roles: []auth.Role{auth.Supervisor}})
	phone := baresiptest.Start(t, baresiptest.Options{User: "agent1", Password: "agent1-pass", Registrar: h.SIP.String(), Tone: 440, IP: "127.0.0.4"})
	agentState(t, acd.NewStore(h.Client, acd.StoreOptions{}), "a1", acd.Available)

	const who = "13800000009"
	done := h.Call(t.Context(), t, who, caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "3"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
		{On: prompts.Rating, Press: "2"},
	})
	phone.Await("CALL_ESTABLISHED")
	phone.Command("hangup", "")
	<-done
	rec := h.Records.Final(t, who)
	if rec.Rating != "bad_review" {
		t.Fatalf("the call's rating %q, want a bad review", rec.Rating)
	}

	board := login(t, h, "li")
	line := `#complaint-line [data-window="day"]`
	board.Wait(fmt.Sprintf(`document.querySelector(%q)?.dataset.served === '1'`, line))
	if got := consoletest.Eval[string](board, fmt.Sprintf(`document.querySelector(%q).dataset.upheld`, line)); got != "0" {
		t.Fatalf("upheld before the review: %s", got)
	}

	reviews := board.Open(t)
	reviews.Go("/console/#/reviews")
	reviews.WaitLive()
	reviews.Wait(`document.querySelector('#pending tbody tr[data-key] button') !== null`)
	reviews.Click(`#pending tbody tr[data-key] button`)
	reviews.Wait(fmt.Sprintf(`document.querySelector('#call-record')?.dataset.call === %q`, rec.ID))
	if got := reviews.Text(`#call-record [data-fact="rating"]`); got != "bad review" {
		t.Errorf("the record's rating %q", got)
	}
	if got := reviews.Text(`#call-record [data-fact="caller"]`); got != who {
		t.Errorf("the record's caller %q, want the whole number for a supervisor", got)
	}
	reviews.Type("#review-note", "rude to the caller")
	shoot(t, reviews, "reviews")
	reviews.Click("#uphold")
	reviews.Wait(`document.querySelector('#reviewed tbody tr[data-key] [data-value="upheld"]') !== null && document.querySelector('#pending tbody tr[data-key]') === null`)

	board.Wait(fmt.Sprintf(`document.querySelector(%q)?.dataset.upheld === '1'`, line))
	if got := consoletest.Eval[string](board, fmt.Sprintf(`document.querySelector(%q).dataset.state`, line)); got != "over" {
		t.Errorf("the day's line is %q with 1 upheld of 1 served, want over", got)
	}

	reviews.Show("line")
	reviews.Wait(`document.querySelector('#line-agents tr[data-key="a1"] td[data-col="upheld"]')?.textContent === '1'`)
	shoot(t, reviews, "line")
}

// A return visit through the console: the visitor takes the visit, calls
// (their phone rings, then the citizen's behind the carrier), records the
// three answers, and the water bureau's rates count it.
func TestReturnVisitThroughTheConsole(t *testing.T) {
	t.Parallel()
	loc := appeal.DefaultLocation()
	clock := testclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, loc))
	citizen := sipptest.Serve(t, sipptest.CarrierXML(200, false, "", ""), 10)
	h := hotlinetest.StartWith(t, hotlinetest.Options{Now: clock.Now, Tune: func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "v1", Name: "Qian Li", SIPUser: "visitor1", Password: "visitor1-pass", Categories: []string{"emergency"}}}
		c.ACD.WrapUp = 0
		c.Organizers = []config.Organizer{{ID: "water", Name: "Water bureau", Kind: "utility", District: "chaoyang"}}
		c.Trunks = []config.Trunk{{Name: "carrier", Host: citizen.Addr.Addr().String(), Port: int(citizen.Addr.Port()), Transport: "udp",
			CallerID: "12345", Channels: 2, Endpoint: "carrier",
			Probe: config.TrunkProbe{Interval: config.Duration(time.Hour), Timeout: config.Duration(time.Second), DownAfter: 3, UpAfter: 1}}}
	}})
	addAccounts(t, h,
		auth.UserSpec{Name: "qian", Roles: []auth.Role{auth.Visitor}, AgentID: "v1"},
		auth.UserSpec{Name: "li", Roles: []auth.Role{auth.Supervisor}},
	)
	phone := baresiptest.Start(t, baresiptest.Options{User: "visitor1", Password: "visitor1-pass", Registrar: h.SIP.String(), Tone: 440, IP: "127.0.0.7"})
	agentState(t, acd.NewStore(h.Client, acd.StoreOptions{}), "v1", acd.Available)

	a := h.FedBack(t, "call-1", "13900000081", appeal.Livelihood, "water")
	clock.Set(callback.DefaultWindows(loc).Next(a.FeedbackDue.Add(time.Minute)))
	staff := h.APIClient(t, auth.Supervisor)
	waiting := func() bool {
		var page web.Page[callback.Visit]
		err := staff.Do(t.Context(), http.MethodGet, "/api/v1/visits?state=waiting", nil, &page)
		return err == nil && len(page.Items) == 1
	}
	for deadline := time.Now().Add(20 * time.Second); !waiting(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no visit waiting")
		}
	}

	desk := login(t, h, "qian")
	desk.Click("#visit-next")
	desk.Wait(fmt.Sprintf(`document.querySelector('#visit-current [data-fact="appeal"]')?.textContent === %q`, a.ID))
	if got := desk.Text(`#visit-current [data-fact="caller"]`); got == "13900000081" || got == "" {
		t.Errorf("the citizen's number %q, want it masked for a visitor", got)
	}
	if got := desk.Text(`#visit-current [data-fact="feedback"]`); got != "Solved" {
		t.Errorf("the organizer's feedback %q", got)
	}
	desk.Click("#visit-call")
	desk.Wait(`document.getElementById('visit-current').dataset.call === 'connected'`)
	phone.Await("CALL_ESTABLISHED")
	for _, id := range []string{"#answer-response-yes", "#answer-solution-yes", "#answer-satisfaction-satisfied"} {
		desk.Click(id)
	}
	desk.Type("#visit-note", "the water came back the next day")
	shoot(t, desk, "visits")
	desk.Click("#visit-submit")
	desk.Wait(`document.querySelector('#visit-current [data-fact="no-visit"]') !== null`)
	// The day's attempts list it, from the visits' own records.
	desk.Wait(fmt.Sprintf(`[...document.querySelectorAll('#visits-attempts tbody tr')].some((tr) => tr.textContent.includes(%q) && tr.textContent.includes('Completed'))`, a.ID))
	phone.Command("hangup", "")

	var done web.Page[callback.Visit]
	if err := staff.Do(context.Background(), http.MethodGet, "/api/v1/visits?state=completed", nil, &done); err != nil || len(done.Items) != 1 {
		t.Fatalf("completed visits %+v %v", done, err)
	}
	v := done.Items[0]
	last := v.Attempts[len(v.Attempts)-1]
	if last.Answers == nil || last.Answers.Response != "yes" || last.Answers.Solution != "yes" || last.Answers.Satisfaction != "satisfied" || last.Note != "the water came back the next day" {
		t.Errorf("the attempt recorded %+v", last)
	}

	board := login(t, h, "li")
	board.Show("rates")
	board.SetValue("#rates-window", "day")
	board.Wait(`document.querySelector('#rates-table tr[data-key="water"] td[data-col="completed"]')?.textContent === '1'`)
	if got := board.Text(`#rates-table tr[data-key="water"] td[data-col="satisfaction"]`); got != "100.0 % (1/1)" {
		t.Errorf("the water bureau's satisfaction rate %q", got)
	}
	shoot(t, board, "rates")
}

// Logging out in one tab ends the session in every tab: the other tab
// goes to the login page by itself, and its cookie no longer opens the
// API.
func TestLogoutEndsEveryTab(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, nil)
	addAccounts(t, h, auth.UserSpec{Name: "li", Roles: []auth.Role{auth.Supervisor}})
	first := login(t, h, "li")
	second := first.Open(t)
	second.Go("/console/#/reviews")
	second.Wait(`document.body.dataset.session === 'open'`)
	second.WaitLive()

	first.Click("#logout")
	first.Wait(`document.body.dataset.session === 'none'`)
	second.Wait(`document.body.dataset.session === 'none' && !document.getElementById('login').hidden`)
	if got := second.Text("#login-note"); got != "Your session has ended. Please log in again." {
		t.Errorf("the other tab says %q", got)
	}
	if status := consoletest.Eval[int](second, `fetch('/api/v1/me').then(r => r.status)`); status != http.StatusUnauthorized {
		t.Errorf("the ended session's cookie: %d, want 401", status)
	}
	shoot(t, second, "login")
}
