// Package journal keeps what a caller said or was told while Redis does
// not answer: appeals with their consent evidence, call records, ratings
// and reviews are appended to a local file, fsynced before the caller hears
// anything that depends on them, and replayed into Redis, idempotently,
// once it answers again (see Keeper).
//
// The file, <state dir>/journal/journal.log, starts with an 8-byte magic
// and holds records framed as
//
//	length   uint32, big endian: the payload's bytes
//	checksum uint32, big endian: CRC-32C (Castagnoli) of the payload
//	payload  an Entry, JSON
//
// Entries are keyed by kind and key (the idempotency key: a call id, a
// complaint id, a day): a later entry of the same kind and key supersedes
// the earlier, which is how a call's record, saved at start, answer and
// end, keeps one live entry. Removing an entry once it is applied is
// recorded only in memory until the file is compacted (rewritten with the
// live entries alone, to a temporary file fsynced and renamed over the
// old one); an entry removed but not yet compacted away is replayed again
// after a restart, which the stores' idempotent writes make harmless.
//
// On open, a record cut short at the end of the file (a crash in the
// middle of a write: a torn tail) is truncated away; a record whose
// checksum does not match is set aside, bytes and all, in a corrupt-*.bin
// file beside the journal and skipped, the records after it kept; a length
// that cannot be (zero, or beyond MaxRecord) leaves no way to find the
// next record, so everything from there is set aside and truncated.
package journal

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Errors of the journal; test with errors.Is.
var (
	// ErrFull: appending would take the file past Options.MaxSize. The
	// journal refuses rather than fill the disk; the entry is not kept.
	ErrFull = errors.New("journal: full")
	// ErrClosed: the journal was closed.
	ErrClosed = errors.New("journal: closed")
	// ErrLocked: another process has the journal open.
	ErrLocked = errors.New("journal: in use by another process")
)

// magic starts every journal file (format version 1).
var magic = []byte("HLJRNL1\n")

// MaxRecord is the largest payload a record may have; a length beyond it
// can only be corruption.
const MaxRecord = 16 << 20

// DefaultMaxSize bounds the file when Options.MaxSize is 0: room for some
// hundred thousand calls' records, far more than a node takes in a day.
const DefaultMaxSize = 256 << 20

const headerSize = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Entry is one record of the journal.
type Entry struct {
	// Seq orders the entries; it grows with every append, across
	// restarts.
	Seq uint64 `json:"seq"`
	// Kind and Key identify what the entry is about: a later entry with
	// the same pair supersedes this one.
	Kind string          `json:"kind"`
	Key  string          `json:"key"`
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"data"`
}

// Decode unmarshals the entry's data into v.
func (e Entry) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("journal: entry %d (%s %s): %w", e.Seq, e.Kind, e.Key, err)
	}
	return nil
}

// Options configure a Journal.
type Options struct {
	// Dir holds the journal; it is created when missing. Empty keeps the
	// journal in memory only: nothing survives the process.
	Dir string
	// MaxSize bounds the file, in bytes; 0 means DefaultMaxSize.
	MaxSize int64
	Log     zerolog.Logger
	// Now is the clock of the entries' At; nil means time.Now.
	Now func() time.Time
}

// Journal is an append-only, fsynced, local log of keyed entries. It is
// safe for concurrent use. Appends from several goroutines share fsyncs
// (group commit): each Append returns once its record and every record
// before it are on disk.
type Journal struct {
	opts Options
	path string

	// syncMu serialises fsyncs and compactions; it is taken before mu
	// when both are needed.
	syncMu sync.Mutex
	synced int64 // bytes appended ever that are known on disk

	mu        sync.Mutex
	f         *os.File // nil in memory
	closed    bool
	seq       uint64
	appended  int64 // bytes appended ever (not reset by compaction)
	size      int64 // bytes in the file now
	liveBytes int64
	live      map[liveKey]live
}

type liveKey struct{ kind, key string }

type live struct {
	e    Entry
	size int64 // framed bytes
}

// Open opens the journal in opts.Dir, reading back the entries it holds,
// or makes an empty one.
func Open(opts Options) (*Journal, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	j := &Journal{opts: opts, live: map[liveKey]live{}}
	if opts.Dir == "" {
		return j, nil
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j.path = filepath.Join(opts.Dir, "journal.log")
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := lock(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrLocked, j.path, err)
	}
	j.f = f
	if err := j.load(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return j, nil
}

// load reads the file into live, setting aside what is corrupt and
// truncating a torn tail.
func (j *Journal) load() error {
	data, err := io.ReadAll(j.f)
	if err != nil {
		return fmt.Errorf("journal: read %s: %w", j.path, err)
	}
	if len(data) == 0 {
		if _, err := j.f.Write(magic); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		if err := j.syncFileAndDir(); err != nil {
			return err
		}
		j.size = int64(len(magic))
		return nil
	}
	if !bytes.HasPrefix(data, magic) {
		if len(data) < len(magic) && bytes.HasPrefix(magic, data) {
			// Torn while the magic itself was written.
			return j.rewriteLocked()
		}
		return fmt.Errorf("journal: %s is not a journal (no %q at its start)", j.path, magic)
	}
	off := len(magic)
	end := len(data)
	for off < len(data) {
		rest := data[off:]
		if len(rest) < headerSize {
			j.opts.Log.Warn().Str("path", j.path).Int("offset", off).Int("bytes", len(rest)).Msg("journal: torn record at the end (cut short by a crash): truncated")
			end = off
			break
		}
		n := binary.BigEndian.Uint32(rest[0:4])
		if n == 0 || n > MaxRecord {
			j.setAside(rest, off, "impossible record length")
			end = off
			break
		}
		if len(rest) < headerSize+int(n) {
			j.opts.Log.Warn().Str("path", j.path).Int("offset", off).Int("bytes", len(rest)).Msg("journal: torn record at the end (cut short by a crash): truncated")
			end = off
			break
		}
		rec := rest[:headerSize+int(n)]
		payload := rec[headerSize:]
		var e Entry
		switch {
		case crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(rest[4:8]):
			j.setAside(rec, off, "checksum mismatch")
		case json.Unmarshal(payload, &e) != nil || e.Kind == "":
			j.setAside(rec, off, "undecodable entry")
		default:
			j.seq = max(j.seq, e.Seq)
			j.putLocked(e, int64(len(rec)))
		}
		off += len(rec)
	}
	j.size = int64(end)
	if end < len(data) {
		if err := j.f.Truncate(int64(end)); err != nil {
			return fmt.Errorf("journal: truncate %s: %w", j.path, err)
		}
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	if _, err := j.f.Seek(j.size, io.SeekStart); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if len(j.live) > 0 {
		j.opts.Log.Info().Str("path", j.path).Int("entries", len(j.live)).Int64("bytes", j.size).Msg("journal: entries to replay")
	}
	return nil
}

// setAside keeps corrupt bytes in a file of their own, for a person to
// look at, and says so.
func (j *Journal) setAside(b []byte, off int, why string) {
	name := filepath.Join(j.opts.Dir, fmt.Sprintf("corrupt-%d-%d.bin", j.opts.Now().UnixNano(), off))
	err := os.WriteFile(name, b, 0o600)
	ev := j.opts.Log.Error().Str("path", j.path).Int("offset", off).Int("bytes", len(b)).Str("why", why)
	if err != nil {
		ev.AnErr("set_aside_error", err).Msg("journal: corrupt record skipped, and could not be set aside")
		return
	}
	ev.Str("set_aside", name).Msg("journal: corrupt record skipped and set aside")
}

func (j *Journal) putLocked(e Entry, size int64) {
	k := liveKey{e.Kind, e.Key}
	if old, ok := j.live[k]; ok {
		if old.e.Seq > e.Seq {
			return
		}
		j.liveBytes -= old.size
	}
	j.live[k] = live{e: e, size: size}
	j.liveBytes += size
}

// frame encodes e as a record.
func frame(e Entry) ([]byte, error) {
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("journal: encode %s %s: %w", e.Kind, e.Key, err)
	}
	if len(payload) > MaxRecord {
		return nil, fmt.Errorf("journal: %s %s: %d bytes is more than a record holds", e.Kind, e.Key, len(payload))
	}
	rec := make([]byte, headerSize+len(payload))
	binary.BigEndian.PutUint32(rec[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(rec[4:8], crc32.Checksum(payload, castagnoli))
	copy(rec[headerSize:], payload)
	return rec, nil
}

// Append writes an entry of kind and key with v as its data and returns
// once it is on disk (fsynced). It supersedes the live entry of the same
// kind and key. When the file would grow past MaxSize even once
// compacted, nothing is written and the error wraps ErrFull.
func (j *Journal) Append(kind, key string, v any) (Entry, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Entry{}, fmt.Errorf("journal: encode %s %s: %w", kind, key, err)
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return Entry{}, ErrClosed
	}
	j.seq++
	e := Entry{Seq: j.seq, Kind: kind, Key: key, At: j.opts.Now(), Data: data}
	rec, err := frame(e)
	if err != nil {
		j.mu.Unlock()
		return Entry{}, err
	}
	if j.f == nil {
		j.putLocked(e, int64(len(rec)))
		j.mu.Unlock()
		return e, nil
	}
	if j.size+int64(len(rec)) > j.opts.MaxSize {
		j.mu.Unlock()
		// Compaction may make room: it needs syncMu, taken before mu.
		if err := j.Compact(); err != nil {
			return Entry{}, err
		}
		j.mu.Lock()
		if j.size+int64(len(rec)) > j.opts.MaxSize {
			size := j.size
			j.mu.Unlock()
			return Entry{}, fmt.Errorf("%w: %d bytes of %d used, %d more needed", ErrFull, size, j.opts.MaxSize, len(rec))
		}
		if j.closed {
			j.mu.Unlock()
			return Entry{}, ErrClosed
		}
	}
	if _, err := j.f.Write(rec); err != nil {
		// A short write leaves a torn record: cut it off, so the next
		// append does not land behind it.
		_ = j.f.Truncate(j.size)
		_, _ = j.f.Seek(j.size, io.SeekStart)
		j.mu.Unlock()
		return Entry{}, fmt.Errorf("journal: write: %w", err)
	}
	j.size += int64(len(rec))
	j.appended += int64(len(rec))
	mine := j.appended
	j.putLocked(e, int64(len(rec)))
	j.mu.Unlock()
	if err := j.syncTo(mine); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// syncTo returns once the first upto bytes ever appended are on disk: the
// first appender to get here fsyncs for everyone who wrote before it.
func (j *Journal) syncTo(upto int64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if j.synced >= upto {
		return nil
	}
	j.mu.Lock()
	f, target := j.f, j.appended
	j.mu.Unlock()
	if f == nil {
		return ErrClosed
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("journal: fsync: %w", err)
	}
	j.synced = target
	return nil
}

// Entries returns the live entries, oldest first.
func (j *Journal) Entries() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]Entry, 0, len(j.live))
	for _, l := range j.live {
		out = append(out, l.e)
	}
	slices.SortFunc(out, bySeq)
	return out
}

func bySeq(a, b Entry) int { return cmp.Compare(a.Seq, b.Seq) }

// Get returns the live entry of kind and key.
func (j *Journal) Get(kind, key string) (Entry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	l, ok := j.live[liveKey{kind, key}]
	return l.e, ok
}

// Len is the number of live entries.
func (j *Journal) Len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.live)
}

// Size is the file's size in bytes (the live entries' in memory).
func (j *Journal) Size() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return j.liveBytes
	}
	return j.size
}

// Remove drops entries that are applied: each unless a later entry of its
// kind and key has superseded it. Once the file holds more bytes of dropped
// entries than of live ones, it is compacted.
func (j *Journal) Remove(entries ...Entry) error {
	j.mu.Lock()
	for _, e := range entries {
		k := liveKey{e.Kind, e.Key}
		if l, ok := j.live[k]; ok && l.e.Seq == e.Seq {
			delete(j.live, k)
			j.liveBytes -= l.size
		}
	}
	dead := j.size - int64(len(magic)) - j.liveBytes
	worth := j.f != nil && dead > 0 && dead >= j.liveBytes
	j.mu.Unlock()
	if !worth {
		return nil
	}
	return j.Compact()
}

// rejected is a line of rejected.jsonl.
type rejected struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Entry  Entry     `json:"entry"`
}

// Reject sets aside an entry that can never be applied (the store refuses
// it as invalid): it is appended, with the reason, to rejected.jsonl
// beside the journal, fsynced, and then removed from the journal. Nothing
// is dropped unseen: a person reads that file.
func (j *Journal) Reject(e Entry, reason error) error {
	if j.opts.Dir != "" {
		line, err := json.Marshal(rejected{At: j.opts.Now(), Reason: reason.Error(), Entry: e})
		if err != nil {
			return fmt.Errorf("journal: reject: %w", err)
		}
		f, err := os.OpenFile(filepath.Join(j.opts.Dir, "rejected.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("journal: reject: %w", err)
		}
		_, err = f.Write(append(line, '\n'))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("journal: reject: %w", err)
		}
	}
	return j.Remove(e)
}

// Compact rewrites the file with the live entries alone.
func (j *Journal) Compact() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	if j.f == nil {
		return nil
	}
	if err := j.rewriteLocked(); err != nil {
		return err
	}
	j.synced = j.appended
	return nil
}

// rewriteLocked writes the live entries to a new file, fsyncs it, renames
// it over the journal and fsyncs the directory: at every moment either
// the old file or the new one is whole on disk.
func (j *Journal) rewriteLocked() error {
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	entries := make([]Entry, 0, len(j.live))
	for _, l := range j.live {
		entries = append(entries, l.e)
	}
	slices.SortFunc(entries, bySeq)
	buf := bytes.NewBuffer(append([]byte(nil), magic...))
	for _, e := range entries {
		rec, err := frame(e)
		if err != nil {
			_ = f.Close()
			return err
		}
		buf.Write(rec)
	}
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("journal: compact: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := lock(f); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fail(err)
	}
	old := j.f
	j.f = f
	j.size = int64(buf.Len())
	if old != nil {
		_ = old.Close()
	}
	return j.syncDir()
}

func (j *Journal) syncFileAndDir() error {
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return j.syncDir()
}

// syncDir makes a file created or renamed in the directory durable.
func (j *Journal) syncDir() error {
	d, err := os.Open(j.opts.Dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("journal: fsync %s: %w", j.opts.Dir, err)
	}
	return nil
}

// Path is the journal's file, "" in memory.
func (j *Journal) Path() string { return j.path }

// Close closes the file; the entries stay in it for the next Open.
func (j *Journal) Close() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
