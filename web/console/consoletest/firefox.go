package consoletest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Firefox is one headless Firefox (Debian's firefox-esr) with one tab on
// the console, driven through the WebDriver BiDi server Firefox has built
// in (https://w3c.github.io/webdriver-bidi/): no geckodriver. Its methods
// are called from the test's goroutine only.
type Firefox struct {
	t       testing.TB
	base    string // the hotline's HTTP address, http://127.0.0.1:port
	cmd     *exec.Cmd
	exited  chan struct{} // closed when Firefox has exited
	profile string
	closed  bool
	conn    *websocket.Conn
	tab     string // the browsing context's id
	id      int    // the last command's id
}

// FirefoxPath finds Firefox: $FIREFOX, else firefox-esr on the PATH.
func FirefoxPath() (string, error) { return browserPath("FIREFOX", "firefox-esr") }

// faultWatch is a preload script: it runs in every page before the
// page's own scripts and keeps what Chromium's console would show as a
// fault of the page (an exception, a promise nobody caught, an error or
// a warning logged, a breach of the content security policy).
const faultWatch = `() => {
	const faults = [];
	window.consoleFaults = faults;
	window.addEventListener('error', (e) => faults.push(e.message + ' (' + e.filename + ':' + e.lineno + ')'));
	window.addEventListener('unhandledrejection', (e) => faults.push('unhandled rejection: ' + e.reason));
	document.addEventListener('securitypolicyviolation', (e) => faults.push('content security policy: ' + e.violatedDirective + ' ' + e.blockedURI));
	for (const level of ['error', 'warn']) {
		const log = console[level];
		console[level] = (...args) => { faults.push(level + ': ' + args.join(' ')); log.apply(console, args); };
	}
}`

// listening is the line Firefox writes on stderr once its WebDriver BiDi
// server is up.
var listening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// StartFirefox starts a headless Firefox with a fresh profile, opens a
// WebDriver BiDi session and makes its tab Width×Height, for the console
// of the hotline at base. The test fails, at its end, when a page threw
// an exception, logged an error or a warning, or broke the content
// security policy; Firefox is stopped then and its profile removed.
func StartFirefox(t testing.TB, base string) *Firefox {
	t.Helper()
	path, err := FirefoxPath()
	if err != nil {
		t.Fatal(err)
	}
	profile, err := os.MkdirTemp("", "consoletest-firefox-")
	if err != nil {
		t.Fatal(err)
	}
	// The console speaks the browser's language first: English, as the
	// Chromium tests' --lang.
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(`user_pref("intl.accept_languages", "en-US");`+"\n"), 0o644); err != nil {
		os.RemoveAll(profile)
		t.Fatal(err)
	}
	stderr := &stderrWatch{addr: make(chan string, 1)}
	cmd := exec.Command(path, "--headless", "--no-remote", "--profile", profile, "--remote-debugging-port=0")
	cmd.Stderr = stderr
	// Firefox's child processes may hold stderr open a moment after it is
	// killed.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile)
		t.Fatalf("starting firefox: %v", err)
	}
	f := &Firefox{t: t, base: base, cmd: cmd, exited: make(chan struct{}), profile: profile}
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(f.exited)
	}()
	t.Cleanup(f.Close)

	var addr string
	select {
	case addr = <-stderr.addr:
	case <-f.exited:
		t.Fatalf("firefox exited (%v) before its WebDriver BiDi server listened:\n%s", exitErr, stderr.text())
	case <-time.After(Timeout):
		t.Fatalf("firefox's WebDriver BiDi server did not listen within %v:\n%s", Timeout, stderr.text())
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	f.conn, _, err = websocket.Dial(ctx, addr+"/session", nil)
	if err != nil {
		t.Fatalf("connecting to firefox at %s: %v", addr, err)
	}
	f.conn.SetReadLimit(16 << 20) // a page's text, for a failure's message

	f.do("session.new", map[string]any{"capabilities": map[string]any{}})
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := json.Unmarshal(f.do("browsingContext.getTree", map[string]any{}), &tree); err != nil || len(tree.Contexts) == 0 {
		t.Fatalf("firefox's tabs: %v %+v", err, tree)
	}
	f.tab = tree.Contexts[0].Context
	f.do("browsingContext.setViewport", map[string]any{"context": f.tab, "viewport": map[string]int{"width": Width, "height": Height}})
	f.do("script.addPreloadScript", map[string]any{"functionDeclaration": faultWatch})
	return f
}

// stderrWatch keeps what Firefox writes on stderr until its WebDriver
// BiDi server listens, and then gives the server's address.
type stderrWatch struct {
	addr chan string // the server's address, once

	mu   sync.Mutex
	buf  bytes.Buffer
	sent bool
}

func (w *stderrWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent {
		return len(p), nil
	}
	w.buf.Write(p)
	if m := listening.FindSubmatch(w.buf.Bytes()); m != nil {
		w.sent = true
		w.addr <- string(m[1])
	}
	return len(p), nil
}

func (w *stderrWatch) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// Close reports the faults of the page shown, stops Firefox and removes
// its profile. StartFirefox has the test call it at its end.
func (f *Firefox) Close() {
	f.t.Helper()
	if f.closed {
		return
	}
	f.closed = true
	if f.conn != nil && f.tab != "" {
		f.reportFaults()
	}
	if f.conn != nil {
		f.conn.CloseNow()
	}
	f.cmd.Process.Kill()
	<-f.exited
	os.RemoveAll(f.profile)
}

// call sends one command and waits for its answer, skipping events.
func (f *Firefox) call(method string, params any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	f.id++
	msg, err := json.Marshal(map[string]any{"id": f.id, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	if err := f.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	for {
		_, data, err := f.conn.Read(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		var answer struct {
			ID      int             `json:"id"`
			Type    string          `json:"type"`
			Result  json.RawMessage `json:"result"`
			Error   string          `json:"error"`
			Message string          `json:"message"`
		}
		if err := json.Unmarshal(data, &answer); err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		switch {
		case answer.Type == "event" || answer.ID != f.id:
			continue
		case answer.Type == "error":
			return nil, fmt.Errorf("%s: %s: %s", method, answer.Error, answer.Message)
		}
		return answer.Result, nil
	}
}

// do is call failing the test with what the page shows.
func (f *Firefox) do(method string, params any) json.RawMessage {
	f.t.Helper()
	res, err := f.call(method, params)
	if err != nil {
		f.t.Fatalf("firefox: %v\npage: %s", err, f.snapshot())
	}
	return res
}

// evaluate evaluates expression in the tab, awaiting a promise, and
// answers the WebDriver BiDi remote value.
func (f *Firefox) evaluate(expression string) (json.RawMessage, error) {
	res, err := f.call("script.evaluate", map[string]any{
		"expression":      expression,
		"target":          map[string]string{"context": f.tab},
		"awaitPromise":    true,
		"resultOwnership": "none",
	})
	if err != nil {
		return nil, err
	}
	var r struct {
		Type             string          `json:"type"`
		Result           json.RawMessage `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, err
	}
	if r.Type == "exception" {
		return nil, fmt.Errorf("evaluating %s: %s", expression, r.ExceptionDetails.Text)
	}
	return r.Result, nil
}

// value evaluates expression and decodes its value, passed through JSON,
// into v.
func (f *Firefox) value(expression string, v any) error {
	res, err := f.evaluate(`(async () => JSON.stringify(await (` + expression + `)) ?? 'null')()`)
	if err != nil {
		return err
	}
	var s struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(res, &s); err != nil {
		return err
	}
	return json.Unmarshal([]byte(s.Value), v)
}

// snapshot is the page's address and text, for a failure's message.
func (f *Firefox) snapshot() string {
	var text string
	if err := f.value(`location.href + "\n" + document.body.innerText`, &text); err != nil {
		return err.Error()
	}
	return text
}

// reportFaults fails the test with the faults of the page shown.
func (f *Firefox) reportFaults() {
	f.t.Helper()
	var faults []string
	if err := f.value(`window.consoleFaults || []`, &faults); err != nil {
		f.t.Errorf("firefox: reading the page's faults: %v", err)
	}
	for _, p := range faults {
		f.t.Errorf("firefox console: %s", p)
	}
}

// Go loads path of the hotline (/console/#/wallboard) and waits for the
// page to load.
func (f *Firefox) Go(path string) {
	f.t.Helper()
	f.reportFaults()
	f.do("browsingContext.navigate", map[string]any{"context": f.tab, "url": f.base + path, "wait": "complete"})
}

// Eval evaluates a JavaScript expression in the tab, awaiting a promise,
// and decodes its value, passed through JSON, into v (nil: the value is
// not wanted).
func (f *Firefox) Eval(expression string, v any) {
	f.t.Helper()
	if v == nil {
		v = new(any)
	}
	if err := f.value(expression, v); err != nil {
		f.t.Fatalf("firefox: %v\npage: %s", err, f.snapshot())
	}
}

// Text is the text of the first element sel selects, "" when none does.
func (f *Firefox) Text(sel string) string {
	f.t.Helper()
	var text string
	f.Eval(textExpr(sel), &text)
	return text
}

// Wait polls the JavaScript predicate until it is true, failing the test
// when it is not within Timeout.
func (f *Firefox) Wait(predicate string) {
	f.t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(Timeout)
	for {
		var ok bool
		f.Eval(`!!(`+predicate+`)`, &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("firefox: waited %v for %s\npage: %s", Timeout, predicate, f.snapshot())
		}
		<-tick.C
	}
}

// Click clicks the element sel selects with the mouse, in its middle, as
// a person does.
func (f *Firefox) Click(sel string) {
	f.t.Helper()
	node, err := f.evaluate(fmt.Sprintf(`document.querySelector(%q)`, sel))
	if err != nil {
		f.t.Fatalf("firefox: %v\npage: %s", err, f.snapshot())
	}
	var ref struct {
		SharedID string `json:"sharedId"`
	}
	if json.Unmarshal(node, &ref) != nil || ref.SharedID == "" {
		f.t.Fatalf("firefox: no element %s\npage: %s", sel, f.snapshot())
	}
	f.do("input.performActions", map[string]any{"context": f.tab, "actions": []any{map[string]any{
		"type": "pointer", "id": "mouse",
		"actions": []any{
			map[string]any{"type": "pointerMove", "x": 0, "y": 0, "origin": map[string]any{"type": "element", "element": map[string]string{"sharedId": ref.SharedID}}},
			map[string]any{"type": "pointerDown", "button": 0},
			map[string]any{"type": "pointerUp", "button": 0},
		},
	}}})
}

// Type clicks the field sel selects and types text into it with the
// keyboard.
func (f *Firefox) Type(sel, text string) {
	f.t.Helper()
	f.Click(sel)
	var keys []any
	for _, r := range text {
		keys = append(keys,
			map[string]string{"type": "keyDown", "value": string(r)},
			map[string]string{"type": "keyUp", "value": string(r)})
	}
	f.do("input.performActions", map[string]any{"context": f.tab, "actions": []any{map[string]any{
		"type": "key", "id": "keyboard", "actions": keys,
	}}})
}

// Nav is the names of the pages the navigation offers.
func (f *Firefox) Nav() []string {
	f.t.Helper()
	var pages []string
	f.Eval(navExpr, &pages)
	return pages
}
