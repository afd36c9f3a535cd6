package console_test

import (
	"testing"

	"github.com/hotline12345/hotline/internal/hotlinetest"
)

// The console's login page loads from the binary alone, in English or
// Chinese as chosen, with no fault on the browser's console (an
// exception, a label missing, a breach of the content security policy).
func TestLoginPage(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, nil)
	tab := browser.Session(t, h.API())
	tab.Go("/")
	tab.Wait(`document.body.dataset.session === 'none' && !document.getElementById('login').hidden`)
	if got := tab.Text("#login h1"); got != "Log in" {
		t.Errorf("title %q", got)
	}
	tab.SetValue("#lang", "zh")
	if got := tab.Text("#login h1"); got != "登录" {
		t.Errorf("title in Chinese %q", got)
	}
	if lang := tab.Text("html"); lang == "" {
		t.Error("no text")
	}
	tab.Wait(`document.documentElement.lang === 'zh-CN'`)
	// The choice is kept.
	tab.Go("/console/")
	tab.Wait(`document.documentElement.lang === 'zh-CN' && document.querySelector('#login h1').textContent === '登录'`)
}
