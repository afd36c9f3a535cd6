package journal_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/journal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type doc struct {
	N    int    `json:"n"`
	Text string `json:"text"`
}

func open(t *testing.T, dir string, max int64) *journal.Journal {
	t.Helper()
	j, err := journal.Open(journal.Options{Dir: dir, MaxSize: max, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func keys(entries []journal.Entry) string {
	var out []string
	for _, e := range entries {
		var d doc
		if err := e.Decode(&d); err != nil {
			panic(err)
		}
		out = append(out, e.Kind+"/"+e.Key+"="+d.Text)
	}
	return strings.Join(out, " ")
}

// Entries appended are there after a reopen, in order; a later entry of
// the same kind and key supersedes the earlier.
func TestAppendSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 0)
	for _, a := range []struct{ kind, key, text string }{
		{"appeal", "c1", "a1"}, {"call", "c1", "start"}, {"rating", "c2", "r2"}, {"call", "c1", "end"},
	} {
		if _, err := j.Append(a.kind, a.key, doc{Text: a.text}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = open(t, dir, 0)
	if got, want := keys(j.Entries()), "appeal/c1=a1 rating/c2=r2 call/c1=end"; got != want {
		t.Errorf("entries after reopen: %s, want %s", got, want)
	}
	e, err := j.Append("appeal", "c3", doc{Text: "a3"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 5 {
		t.Errorf("seq after reopen %d, want 5: sequence numbers never go back", e.Seq)
	}
}

// A second process (here a second open) cannot share the journal.
func TestOneOpenAtATime(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, 0)
	_, err := journal.Open(journal.Options{Dir: dir})
	if !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

// A record cut short by a crash at the end of the file is truncated away;
// what came before it is kept, and appends go on after it.
func TestTornTailTruncated(t *testing.T) {
	for _, cut := range []int{1, 5, 8, 12} {
		dir := t.TempDir()
		j := open(t, dir, 0)
		for _, text := range []string{"one", "two", "three"} {
			if _, err := j.Append("appeal", text, doc{Text: text}); err != nil {
				t.Fatal(err)
			}
		}
		_ = j.Close()
		path := filepath.Join(dir, "journal.log")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The last record loses all but cut bytes.
		last := lastRecord(t, b)
		if err := os.WriteFile(path, b[:last+cut], 0o600); err != nil {
			t.Fatal(err)
		}
		j = open(t, dir, 0)
		if got, want := keys(j.Entries()), "appeal/one=one appeal/two=two"; got != want {
			t.Errorf("cut %d: entries %s, want %s", cut, got, want)
		}
		if st, _ := os.Stat(path); st.Size() != int64(last) {
			t.Errorf("cut %d: file is %d bytes, want %d (truncated at the torn record)", cut, st.Size(), last)
		}
		if _, err := j.Append("appeal", "four", doc{Text: "four"}); err != nil {
			t.Fatal(err)
		}
		_ = j.Close()
		j = open(t, dir, 0)
		if got, want := keys(j.Entries()), "appeal/one=one appeal/two=two appeal/four=four"; got != want {
			t.Errorf("cut %d: after another append, entries %s, want %s", cut, got, want)
		}
		_ = j.Close()
	}
}

// lastRecord is the offset of the last record of a journal file, found by
// walking the length prefixes.
func lastRecord(t *testing.T, b []byte) int {
	t.Helper()
	off, last := 8, -1
	for off < len(b) {
		last = off
		n := int(b[off])<<24 | int(b[off+1])<<16 | int(b[off+2])<<8 | int(b[off+3])
		off += 8 + n
	}
	if last < 0 || off != len(b) {
		t.Fatalf("not a well-formed journal of records")
	}
	return last
}

// A record whose checksum does not match is skipped and set aside; the
// records after it are kept.
func TestBadChecksumSetAside(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 0)
	for _, text := range []string{"one", "two", "three"} {
		if _, err := j.Append("appeal", text, doc{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	_ = j.Close()
	path := filepath.Join(dir, "journal.log")
	b, _ := os.ReadFile(path)
	i := strings.Index(string(b), `"text":"two"`)
	b[i+9] = 'X' // "two" becomes "tXo", the checksum is the old one
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	j = open(t, dir, 0)
	if got, want := keys(j.Entries()), "appeal/one=one appeal/three=three"; got != want {
		t.Errorf("entries %s, want %s", got, want)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, "corrupt-*.bin"))
	if len(aside) != 1 {
		t.Fatalf("set aside: %v, want one file", aside)
	}
	if kept, _ := os.ReadFile(aside[0]); !strings.Contains(string(kept), `"text":"tXo"`) {
		t.Errorf("set aside %q, want the corrupt record", kept)
	}
}

// A length that cannot be leaves no way to the next record: the rest of
// the file is set aside and truncated.
func TestImpossibleLengthSetAside(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 0)
	for _, text := range []string{"one", "two"} {
		if _, err := j.Append("appeal", text, doc{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	_ = j.Close()
	path := filepath.Join(dir, "journal.log")
	b, _ := os.ReadFile(path)
	last := lastRecord(t, b)
	b[last] = 0xff
	_ = os.WriteFile(path, b, 0o600)
	j = open(t, dir, 0)
	if got, want := keys(j.Entries()), "appeal/one=one"; got != want {
		t.Errorf("entries %s, want %s", got, want)
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, "corrupt-*.bin")); len(aside) != 1 {
		t.Errorf("set aside: %v, want one file", aside)
	}
}

// A file that is no journal is refused, not overwritten.
func TestForeignFileRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.log")
	_ = os.WriteFile(path, []byte("appendonly yes\n"), 0o600)
	if _, err := journal.Open(journal.Options{Dir: dir}); err == nil {
		t.Fatal("opened a file that is no journal")
	}
	if b, _ := os.ReadFile(path); string(b) != "appendonly yes\n" {
		t.Errorf("the file was changed: %q", b)
	}
}

// Removed entries stay removed across a reopen once compacted; entries
// superseded before removal are not lost.
func TestRemoveCompacts(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 0)
	var applied []journal.Entry
	for i := range 10 {
		e, err := j.Append("call", string(rune('a'+i)), doc{N: i, Text: strings.Repeat("x", 100)})
		if err != nil {
			t.Fatal(err)
		}
		applied = append(applied, e)
	}
	// c is saved again (a later version) while the first is being applied.
	if _, err := j.Append("call", "c", doc{Text: "later"}); err != nil {
		t.Fatal(err)
	}
	before := j.Size()
	if err := j.Remove(applied...); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(j.Entries()), "call/c=later"; got != want {
		t.Fatalf("entries after remove %s, want %s", got, want)
	}
	if after := j.Size(); after >= before/4 {
		t.Errorf("size %d after removing most entries, was %d: not compacted", after, before)
	}
	_ = j.Close()
	j = open(t, dir, 0)
	if got, want := keys(j.Entries()), "call/c=later"; got != want {
		t.Errorf("entries after reopen %s, want %s", got, want)
	}
}

// The journal refuses to grow past its bound, and has room again once
// entries are removed.
func TestBounded(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 2000)
	var kept []journal.Entry
	var err error
	for i := 0; ; i++ {
		var e journal.Entry
		e, err = j.Append("call", string(rune('a'+i)), doc{N: i, Text: strings.Repeat("x", 200)})
		if err != nil {
			break
		}
		kept = append(kept, e)
	}
	if !errors.Is(err, journal.ErrFull) {
		t.Fatalf("append past the bound: %v, want ErrFull", err)
	}
	if len(kept) < 5 || j.Size() > 2000 {
		t.Fatalf("%d entries in %d bytes before full", len(kept), j.Size())
	}
	if err := j.Remove(kept[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append("call", "z", doc{Text: "fits again"}); err != nil {
		t.Errorf("append after a removal: %v", err)
	}
	if j.Len() != len(kept) {
		t.Errorf("%d entries, want %d", j.Len(), len(kept))
	}
}

// Appends from many goroutines are all kept (group commit shares fsyncs
// but loses none).
func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				if _, err := j.Append("rating", string(rune('A'+g))+string(rune('a'+i)), doc{N: i}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	_ = j.Close()
	j = open(t, dir, 0)
	if n := j.Len(); n != 200 {
		t.Errorf("%d entries after reopen, want 200", n)
	}
}

// Without a directory the journal lives in memory.
func TestInMemory(t *testing.T) {
	j := open(t, "", 0)
	if _, err := j.Append("appeal", "c1", doc{Text: "a"}); err != nil {
		t.Fatal(err)
	}
	es := j.Entries()
	if len(es) != 1 || j.Path() != "" {
		t.Fatalf("entries %v, path %q", es, j.Path())
	}
	if err := j.Remove(es...); err != nil || j.Len() != 0 {
		t.Errorf("remove: %v, %d left", err, j.Len())
	}
}
