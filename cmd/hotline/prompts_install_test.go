package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotline12345/hotline/prompts"
)

func TestPromptsInstall(t *testing.T) {
	t.Parallel()
	c, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	// Asterisk's data folder is there; its sounds folder is made.
	lib := filepath.Join(t.TempDir(), "var", "lib", "asterisk")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(lib, "sounds")
	code, out, errs := environ(nil).hotline("prompts", "install", "--asterisk-sounds", dir)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	files := 3 * len(c.IDs()) * len(c.Langs())
	var want strings.Builder
	for _, lang := range c.Langs() {
		fmt.Fprintf(&want, "%s: %d prompts\n", lang, len(c.IDs()))
	}
	fmt.Fprintf(&want, "%d files written under %s\n", files, dir)
	if out != want.String() {
		t.Errorf("output\n%s\nwant\n%s", out, want.String())
	}

	// The dialplan's fallback plays hotline/app_unavailable: it is there in
	// both languages, in every format, and the WAV is the catalog's audio.
	for _, lang := range c.Langs() {
		p, err := c.Get(prompts.AppUnavailable, lang)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Join(dir, string(lang), "hotline", "app_unavailable")
		for ext, size := range map[string]int{"ulaw": len(p.PCM), "alaw": len(p.PCM), "wav": 44 + 2*len(p.PCM)} {
			fi, err := os.Stat(base + "." + ext)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != int64(size) {
				t.Errorf("%s.%s: %d bytes, want %d", base, ext, fi.Size(), size)
			}
		}
		embedded, err := os.ReadFile(filepath.Join("..", "..", "prompts", "audio", string(lang), "app_unavailable.wav"))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(base + ".wav"); !bytes.Equal(got, embedded) {
			t.Errorf("%s.wav differs from prompts/audio/%s/app_unavailable.wav", base, lang)
		}
	}

	// A second run changes nothing.
	code, out, errs = environ(nil).hotline("prompts", "install", "--asterisk-sounds", dir)
	if code != 0 {
		t.Fatalf("second run: exit %d, stderr %q", code, errs)
	}
	if last := lastLine(out); last != fmt.Sprintf("0 files written under %s", dir) {
		t.Errorf("second run ends %q, want no files written", last)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestPromptsInstallUsage(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"no folder":      {"prompts", "install"},
		"empty folder":   {"prompts", "install", "--asterisk-sounds", ""},
		"an argument":    {"prompts", "install", "--asterisk-sounds", t.TempDir(), "extra"},
		"no subcommand":  {"prompts"},
		"unknown action": {"prompts", "uninstall"},
	}
	for name, args := range cases {
		if code, out, _ := environ(nil).hotline(args...); code != 2 || out != "" {
			t.Errorf("%s: exit %d, output %q; want usage error 2 and nothing written", name, code, out)
		}
	}
}

// TestPromptsInstallWantsTheParent: a sounds folder whose parent is not
// there is a mistyped path, not a tree to make.
func TestPromptsInstallWantsTheParent(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "var", "lib", "asterisk", "sounds")
	if code, out, errs := environ(nil).hotline("prompts", "install", "--asterisk-sounds", dir); code != 1 || !strings.Contains(errs, "does not exist") || out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 naming the missing parent", code, out, errs)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the parent was made: %v", err)
	}
}

func TestPromptsInstallIntoAFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "sounds")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := environ(nil).hotline("prompts", "install", "--asterisk-sounds", file); code != 1 || errs == "" || out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 with an error", code, out, errs)
	}
}
