package console

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dictionary reads i18n.js's labels of one language.
func dictionary(t *testing.T, src, lang, next string) map[string]bool {
	t.Helper()
	head := "\n  " + lang + ": {"
	start := strings.Index(src, head)
	end := strings.Index(src, next)
	if start < 0 || end < start {
		t.Fatalf("no %s dictionary in i18n.js", lang)
	}
	keys := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+'?([A-Za-z0-9_.\-]+)'?:`).FindAllStringSubmatch(src[start+len(head):end], -1) {
		keys[m[1]] = true
	}
	return keys
}

// Every label the pages name exists in Chinese and in English, and the
// two dictionaries have the same labels. (Labels built from a value, as
// 'state.' + state, are checked by the browser tests, which fail on a
// missing one.)
func TestLabels(t *testing.T) {
	t.Parallel()
	src, err := fs.ReadFile(files, "static/js/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	en := dictionary(t, string(src), "en", "\n  zh: {")
	zh := dictionary(t, string(src), "zh", "\nconst storeKey")
	if len(en) < 100 {
		t.Fatalf("only %d English labels read", len(en))
	}
	for k := range en {
		if !zh[k] {
			t.Errorf("%s: no Chinese label", k)
		}
	}
	for k := range zh {
		if !en[k] {
			t.Errorf("%s: no English label", k)
		}
	}
	named := regexp.MustCompile(`(?:\bt\(|label: |Key: |section\(|field\(|stat\(|\[)'([a-z_0-9]+(?:\.[a-z_0-9\-]+)+)'`)
	err = fs.WalkDir(files, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") || path == "static/js/i18n.js" {
			return err
		}
		b, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		for _, m := range named.FindAllStringSubmatch(string(b), -1) {
			if !en[m[1]] && !slices.Contains([]string{"hotline.visit", "hotline.lang"}, m[1]) {
				t.Errorf("%s: label %s is in no dictionary", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	html, err := fs.ReadFile(files, "static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`data-i18n(?:-aria)?="([^"]+)"`).FindAllStringSubmatch(string(html), -1) {
		if !en[m[1]] {
			t.Errorf("index.html: label %s is in no dictionary", m[1])
		}
	}
}
