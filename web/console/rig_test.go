package console_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/web/console/consoletest"
)

var update = flag.Bool("update", false, "write the pages' screenshots to docs/console")

// allCategories are the categories an agent of the tests takes.
var allCategories = []string{"emergency", "livelihood", "general", "complex"}

// password is the password the tests give an account.
func password(user string) string { return user + "-password" }

// addAccounts makes accounts with passwords, as an admin does.
func addAccounts(t *testing.T, h *hotlinetest.Hotline, specs ...auth.UserSpec) {
	t.Helper()
	store := auth.NewStore(h.Client, auth.StoreOptions{})
	for _, u := range specs {
		u.Password = password(u.Name)
		u.By = "test"
		if _, err := store.AddUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
}

// login opens a session of user on the console.
func login(t *testing.T, h *hotlinetest.Hotline, user string) *consoletest.Tab {
	t.Helper()
	tab := browser.Session(t, h.API())
	tab.Login(user, password(user))
	return tab
}

// shoot writes the tab's screenshot as docs/console/name.png with -update.
func shoot(t *testing.T, tab *consoletest.Tab, name string) {
	t.Helper()
	if !*update {
		return
	}
	dir := filepath.Join("..", "..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), tab.Screenshot(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// agentState polls until the agent is in state want.
func agentState(t *testing.T, store *acd.Store, id string, want acd.State) acd.Agent {
	t.Helper()
	return hotlinetest.AgentState(t, store, id, want)
}
