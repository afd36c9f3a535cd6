package auth

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/hotline12345/hotline/internal/redistest"
)

// cheap are argon2id parameters that keep tests fast; the benchmark uses
// the defaults.
var cheap = PasswordParams{Memory: 64, Time: 1, Threads: 1}

// goodPassword passes the rules for any account name the tests use.
const goodPassword = "correct horse battery"

func TestPasswordRule(t *testing.T) {
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{
		{"alice", "0123456789", true},
		{"alice", "012345678", false},              // 9 characters
		{"alice", "密码密码密码密码密码", true},              // 10 runes, 30 bytes
		{"alice", "密码密码密码密码密", false},              // 9 runes, 27 bytes: runes count
		{"alice", strings.Repeat("x", 1024), true}, // the most bytes
		{"alice", strings.Repeat("x", 1025), false},
		{"alice", strings.Repeat("密", 342), false}, // 342 runes, 1026 bytes
		{"alice.wong", "Alice.Wong", false},        // the name, in another case
		{"alice.wong", "alice.wong!", true},
		{"alice", "0123456789\xff", false}, // not UTF-8
	} {
		err := checkPasswordRule(tc.name, tc.password)
		if tc.ok != (err == nil) {
			t.Errorf("checkPasswordRule(%q, %.20q) = %v; want ok %v", tc.name, tc.password, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("checkPasswordRule(%q, %.20q) = %v; want ErrInvalid", tc.name, tc.password, err)
		}
	}
}

var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)

func TestHashPasswordIsPHC(t *testing.T) {
	ctx := t.Context()
	h, err := hashPassword(ctx, goodPassword, cheap)
	if err != nil {
		t.Fatal(err)
	}
	m := phcPattern.FindStringSubmatch(h)
	if m == nil || m[1] != "64" || m[2] != "1" || m[3] != "1" {
		t.Fatalf("hash %q is not argon2id PHC with m=64,t=1,p=1", h)
	}
	if h2, _ := hashPassword(ctx, goodPassword, cheap); h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		password string
		want     bool
	}{{goodPassword, true}, {"correct horse battery ", false}, {"", false}} {
		if got, err := verifyPassword(ctx, h, tc.password); err != nil || got != tc.want {
			t.Errorf("verify %q = %v, %v; want %v", tc.password, got, err, tc.want)
		}
	}
}

// TestVerifyReadsParametersFromHash lets the parameters change later: a
// hash made with other ones still verifies.
func TestVerifyReadsParametersFromHash(t *testing.T) {
	ctx := t.Context()
	other := PasswordParams{Memory: 128, Time: 3, Threads: 2}
	h, err := hashPassword(ctx, goodPassword, other)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h, "$m=128,t=3,p=2$") {
		t.Fatalf("hash %q does not name its parameters", h)
	}
	if ok, err := verifyPassword(ctx, h, goodPassword); err != nil || !ok {
		t.Fatalf("verify = %v, %v", ok, err)
	}
}

func TestDecodePHCRefusesBadHashes(t *testing.T) {
	good, err := hashPassword(t.Context(), goodPassword, cheap)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	for _, bad := range []string{
		"",
		"plain",
		strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=64", "m=4194304", 1), // 4 GiB: a planted hash must not take the memory
		strings.Replace(good, "t=1", "t=0", 1),
		strings.Replace(good, "p=1", "p=0", 1),
		strings.Replace(good, "p=1", "p=255", 1),
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$",
		"$argon2id$v=19$m=64,t=1,p=1$!!$" + parts[5],
		good + "$",
	} {
		if _, _, _, err := decodePHC(bad); !errors.Is(err, errPHC) {
			t.Errorf("decodePHC(%q) = %v; want errPHC", bad, err)
		}
	}
}

// TestArgonWaitsForASlot holds both slots and checks that a hash waits
// for one and gives up with its context. Not parallel: it takes the
// process's slots.
func TestArgonWaitsForASlot(t *testing.T) {
	for range cap(argonSlots) {
		argonSlots <- struct{}{}
	}
	defer func() {
		for range cap(argonSlots) {
			<-argonSlots
		}
	}()
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("request gone")
	cancel(cause)
	if _, err := hashPassword(ctx, goodPassword, cheap); !errors.Is(err, cause) {
		t.Fatalf("hash with no slot free and a cancelled context: %v; want %v", err, cause)
	}
}

// BenchmarkCheckPassword measures a login with the default argon2id
// parameters, the figure that sizes argonSlots against the node's logins.
func BenchmarkCheckPassword(b *testing.B) {
	srv := redistest.Start(b)
	s := NewStore(srv.Client(b), StoreOptions{})
	ctx := b.Context()
	if _, err := s.AddUser(ctx, UserSpec{Name: "alice", Roles: []Role{Agent}, Password: goodPassword, By: "root"}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.CheckPassword(ctx, "alice", goodPassword); err != nil {
			b.Fatal(err)
		}
	}
}
