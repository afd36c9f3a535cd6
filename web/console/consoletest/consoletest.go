// Package consoletest drives the web console in a real, headless Chromium
// (Debian's chromium) through the DevTools protocol, and in a real,
// headless Firefox (Debian's firefox-esr) through WebDriver BiDi, for the
// console's browser tests.
package consoletest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Width and Height are the window every page is shown in: a common
// office screen, the console's smallest target.
const (
	Width  = 1366
	Height = 768
)

// Timeout bounds one step of a test: a page loading, an element showing.
const Timeout = 30 * time.Second

// Browser is one Chromium, shared by the tests of a test binary; each
// Session is a browser context of its own (its own cookies and storage),
// so sessions do not see each other.
type Browser struct {
	ctx    context.Context
	cancel func()
}

// ExecPath finds Chromium: $CHROMIUM, else chromium on the PATH.
func ExecPath() (string, error) { return browserPath("CHROMIUM", "chromium") }

// browserPath finds a browser: the program $env names, else name (a
// Debian package's program of the same name) on the PATH.
func browserPath(env, name string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (Debian package %s): %w", name, name, err)
	}
	return p, nil
}

// The pages' expressions both browsers evaluate.
const navExpr = `[...document.querySelectorAll('#nav a')].map(a => a.dataset.page)`

func textExpr(sel string) string {
	return fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)
}

// Start starts a headless Chromium. As root Chromium refuses to run
// without --no-sandbox; the tests load only the console's own pages.
func Start() (*Browser, error) {
	path, err := ExecPath()
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(Width, Height),
		chromedp.Flag("lang", "en-US"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		return nil, fmt.Errorf("starting chromium: %w", err)
	}
	return &Browser{ctx: ctx, cancel: func() { cancelBrowser(); cancelAlloc() }}, nil
}

// Close stops the browser.
func (b *Browser) Close() { b.cancel() }

// Tab is one tab of a session.
type Tab struct {
	t    testing.TB
	ctx  context.Context
	base string // the hotline's HTTP address, http://127.0.0.1:port

	mu       sync.Mutex
	problems []string
}

// Session opens a tab in a new browser context, on the console of the
// hotline at base. The test fails, at its end, when a page of the tab
// threw an exception, logged an error or a warning (a label missing from
// the dictionary is one), or broke the content security policy.
func (b *Browser) Session(t testing.TB, base string) *Tab {
	t.Helper()
	return open(t, b.ctx, base, chromedp.WithNewBrowserContext())
}

// Open opens another tab of tab's session: the same cookies.
func (tab *Tab) Open(t testing.TB) *Tab {
	t.Helper()
	return open(t, tab.ctx, tab.base)
}

func open(t testing.TB, parent context.Context, base string, opts ...chromedp.ContextOption) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	tab := &Tab{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(Width, Height)); err != nil {
		cancel()
		t.Fatalf("opening a tab: %v", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	messages := chromedp.Console(watchCtx)
	go func() {
		defer close(watched)
		for m, err := range messages {
			if err != nil {
				return
			}
			tab.note(m)
		}
	}()
	t.Cleanup(func() {
		stopWatch()
		<-watched
		cancel()
		tab.mu.Lock()
		defer tab.mu.Unlock()
		for _, p := range tab.problems {
			t.Errorf("console: %s", p)
		}
	})
	return tab
}

// note keeps a console message that is a fault of the page. Failed
// requests (a 401 at login, a 404 of a route the server does not have)
// are the network's, logged by the browser, and not the page's.
func (tab *Tab) note(m chromedp.ConsoleMessage) {
	fault := false
	switch {
	case m.IsException():
		fault = true
	case m.Source == "":
		fault = m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning
	case m.Source == "security" || m.Source == "violation" || m.Source == "javascript":
		fault = m.Type == chromedp.ConsoleError
	}
	if !fault {
		return
	}
	where := ""
	if m.URL != "" {
		where = fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
	}
	tab.mu.Lock()
	tab.problems = append(tab.problems, m.String()+where)
	tab.mu.Unlock()
}

// Do runs the actions, failing the test with what the page shows when
// one fails or takes longer than Timeout.
func (tab *Tab) Do(actions ...chromedp.Action[chromedp.Void]) {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tab.t.Fatalf("%v\npage: %s", err, tab.snapshot())
	}
}

// snapshot is the page's address and text, for a failure's message.
func (tab *Tab) snapshot() string {
	ctx, cancel := context.WithTimeout(tab.ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
	if err != nil {
		return err.Error()
	}
	return text
}

// Go loads path of the hotline (/console/#/wallboard).
func (tab *Tab) Go(path string) {
	tab.t.Helper()
	tab.Do(chromedp.Navigate(tab.base + path))
}

// Show goes to a page of the console by its name, as clicking its link
// does, and waits for it.
func (tab *Tab) Show(page string) {
	tab.t.Helper()
	tab.Do(chromedp.Evaluate[chromedp.Void](`location.hash = "#/` + page + `"`))
	tab.Wait(`document.querySelector('[data-page="` + page + `"].page-body') !== null`)
}

// Login logs in on the console's login page and waits for the session's
// first page and its live stream.
func (tab *Tab) Login(user, password string) {
	tab.t.Helper()
	tab.Go("/console/")
	tab.Do(
		chromedp.WaitVisible(chromedp.CSS("#login-user")),
		chromedp.SendKeys(chromedp.CSS("#login-user"), user),
		chromedp.SendKeys(chromedp.CSS("#login-password"), password),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-session="open"] .page-body`)),
	)
	tab.WaitLive()
}

// WaitLive waits until the page's live stream is open: a change made
// from then on reaches the page.
func (tab *Tab) WaitLive() {
	tab.t.Helper()
	tab.Wait(`document.getElementById('live').dataset.live === 'open'`)
}

// Wait polls the JavaScript predicate until it is true.
func (tab *Tab) Wait(predicate string) {
	tab.t.Helper()
	tab.Do(chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(Timeout-time.Second)))
}

// WaitFor polls predicate for at most d, and says whether it came true.
func (tab *Tab) WaitFor(predicate string, d time.Duration) bool {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, d+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(d)))
	return err == nil
}

// Eval evaluates a JavaScript expression in the tab.
func Eval[T any](tab *Tab, expression string) T {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression, chromedp.EvalAwaitPromise))
	if err != nil {
		tab.t.Fatalf("evaluating %s: %v\npage: %s", expression, err, tab.snapshot())
	}
	return v
}

// Text is the text of the first element sel selects, "" when none does.
func (tab *Tab) Text(sel string) string {
	tab.t.Helper()
	return Eval[string](tab, textExpr(sel))
}

// Nav is the names of the pages the navigation offers.
func (tab *Tab) Nav() []string {
	tab.t.Helper()
	return Eval[[]string](tab, navExpr)
}

// Screenshot is a PNG of the tab's viewport.
func (tab *Tab) Screenshot() []byte {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, Timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tab.t.Fatalf("screenshot: %v", err)
	}
	return png
}

// Click clicks the element sel selects.
func (tab *Tab) Click(sel string) {
	tab.t.Helper()
	tab.Do(chromedp.Click(chromedp.CSS(sel)))
}

// Type types text into the field sel selects.
func (tab *Tab) Type(sel, text string) {
	tab.t.Helper()
	tab.Do(chromedp.SendKeys(chromedp.CSS(sel), text))
}

// SetValue sets a field's value (a select's option) and tells the page, as
// a person choosing it does.
func (tab *Tab) SetValue(sel, value string) {
	tab.t.Helper()
	Eval[chromedp.Void](tab, fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.value = %q; el.dispatchEvent(new Event('change', {bubbles: true})); })()`, sel, value))
}
