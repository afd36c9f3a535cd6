package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/baresiptest"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/web/console/consoletest"
)

// The console works in Firefox as in Chromium: in a real, headless
// Firefox ESR the login page's module runs, a supervisor logs in through
// the form, the wallboard follows an agent's pause through its live
// stream without a reload, and logging out shows the login form again,
// with no fault on the page.
func TestFirefox(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "a1", Name: "Wang Fang", SIPUser: "agent1", Password: "agent1-pass", Categories: allCategories}}
	})
	addAccounts(t, h, auth.UserSpec{Name: "li", Roles: []auth.Role{auth.Supervisor}})
	baresiptest.Start(t, baresiptest.Options{User: "agent1", Password: "agent1-pass", Registrar: h.SIP.String(), Tone: 440, IP: "127.0.0.5"})
	agentState(t, acd.NewStore(h.Client, acd.StoreOptions{}), "a1", acd.Available)

	ff := consoletest.StartFirefox(t, h.API())
	ff.Go("/console/")
	ff.Wait(`document.body.dataset.session === 'none' && !document.getElementById('login').hidden`)
	if got := ff.Text("#login h1"); got != "Log in" {
		t.Errorf("title %q", got)
	}

	ff.Type("#login-user", "li")
	ff.Type("#login-password", password("li"))
	ff.Click(`#login-form button[type="submit"]`)
	ff.Wait(`document.body.dataset.session === 'open' && document.querySelector('.page-body') !== null`)
	if got, want := ff.Nav(), []string{"wallboard", "reviews", "line", "appeals", "rates"}; !slices.Equal(got, want) {
		t.Errorf("pages offered %v, want %v", got, want)
	}
	ff.Wait(`document.getElementById('live').dataset.live === 'open'`)
	row := `#agents tr[data-key="a1"] td[data-col="state"] .badge`
	ff.Wait(fmt.Sprintf(`document.querySelector(%q)?.dataset.value === 'available'`, row))
	// A page that reloads loses this mark.
	ff.Eval(`window.notReloaded = true`, nil)

	if err := h.APIClient(t, auth.Supervisor).Do(t.Context(), http.MethodPost, "/api/v1/agents/a1/pause", json.RawMessage(`{"reason":"lunch"}`), nil); err != nil {
		t.Fatal(err)
	}
	ff.Wait(fmt.Sprintf(`document.querySelector(%q)?.dataset.value === 'paused'`, row))
	if got := ff.Text(`#agents tr[data-key="a1"] td[data-col="reason"]`); got != "Lunch" {
		t.Errorf("the wallboard's reason %q", got)
	}
	var notReloaded bool
	if ff.Eval(`window.notReloaded === true`, &notReloaded); !notReloaded {
		t.Error("the wallboard reloaded")
	}

	ff.Click("#logout")
	ff.Wait(`document.body.dataset.session === 'none' && !document.getElementById('login').hidden`)
	if got := ff.Text("#login-note"); got != "You have logged out." {
		t.Errorf("the login page says %q", got)
	}
}
