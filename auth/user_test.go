package auth

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
)

func TestAddAndListUsers(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testAddAndListUsers)
}

func testAddAndListUsers(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	u, err := r.s.AddUser(r.ctx, UserSpec{
		Name: "zhang.wei", Roles: []Role{Visitor, Agent, Agent}, AgentID: "a1001", Password: goodPassword, By: "root",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := User{
		Name: "zhang.wei", Roles: []Role{Agent, Visitor}, AgentID: "a1001", HasPassword: true,
		CreatedAt: start, CreatedBy: "root", UpdatedAt: start,
	}
	if !equalUser(u, want) {
		t.Fatalf("AddUser = %+v; want %+v", u, want)
	}
	r.clock.Add(time.Minute)
	if _, err := r.s.AddUser(r.ctx, UserSpec{Name: "ci-bot", Roles: []Role{Ops}, By: "root"}); err != nil {
		t.Fatal(err)
	}
	r.user("Li@hotline", Supervisor)

	got, err := r.s.User(r.ctx, "zhang.wei")
	if err != nil || !equalUser(got, want) {
		t.Fatalf("User = %+v, %v; want %+v", got, err, want)
	}
	users, err := r.s.Users(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if want := []string{"Li@hotline", "ci-bot", "zhang.wei"}; !slices.Equal(names, want) {
		t.Fatalf("Users = %v; want %v (by name)", names, want)
	}
	if users[1].HasPassword {
		t.Fatal("ci-bot has a password; it was made without one")
	}
	if _, err := r.s.User(r.ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v; want ErrNotFound", err)
	}
}

func equalUser(a, b User) bool {
	return a.Name == b.Name && slices.Equal(a.Roles, b.Roles) && a.AgentID == b.AgentID &&
		a.Disabled == b.Disabled && a.HasPassword == b.HasPassword &&
		a.CreatedAt.Equal(b.CreatedAt) && a.CreatedBy == b.CreatedBy &&
		a.UpdatedAt.Equal(b.UpdatedAt) && a.UpdatedBy == b.UpdatedBy
}

// TestNamesAreUniqueInAnyCase keeps "Admin" from standing beside "admin",
// and finds each account only by its own spelling.
func TestNamesAreUniqueInAnyCase(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testNamesAreUniqueInAnyCase)
}

func testNamesAreUniqueInAnyCase(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	r.user("alice", Agent)
	for _, name := range []string{"alice", "ALICE", "Alice"} {
		_, err := r.s.AddUser(r.ctx, UserSpec{Name: name, Roles: []Role{Admin}, By: "root"})
		wantErr(t, err, ErrConflict)
	}
	if _, err := r.s.User(r.ctx, "Alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("User(Alice) = %v; want ErrNotFound (the account is alice)", err)
	}
	if _, err := r.s.CheckPassword(r.ctx, "Alice", goodPassword); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("CheckPassword(Alice) = %v; want ErrBadCredentials", err)
	}
}

func TestAddUserRefusesBadSpecs(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testAddUserRefusesBadSpecs)
}

func testAddUserRefusesBadSpecs(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	for _, spec := range []UserSpec{
		{Name: "", Roles: []Role{Agent}},
		{Name: ".alice", Roles: []Role{Agent}},
		{Name: "alice wong", Roles: []Role{Agent}},
		{Name: "alice:x", Roles: []Role{Agent}},
		{Name: "ä", Roles: []Role{Agent}},
		{Name: strings.Repeat("a", 65), Roles: []Role{Agent}},
		{Name: "alice"},
		{Name: "alice", Roles: []Role{"root"}},
		{Name: "alice", Roles: []Role{Agent}, AgentID: "a 1"},
		{Name: "alice", Roles: []Role{Agent}, Password: "short"},
		{Name: "alice", Roles: []Role{Agent}, Password: "ALICE"},
		{Name: "alice.wong1", Roles: []Role{Agent}, Password: "Alice.Wong1"},
		{Name: "alice", Roles: []Role{Agent}, Password: strings.Repeat("p", 1025)},
	} {
		if spec.By == "" {
			spec.By = "root"
		}
		_, err := r.s.AddUser(r.ctx, spec)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("AddUser(%+v) = %v; want ErrInvalid", spec, err)
		}
	}
	_, err := r.s.AddUser(r.ctx, UserSpec{Name: "alice", Roles: []Role{Agent}})
	wantErr(t, err, ErrInvalid) // no By
	if keys := redistest.Keys(t, r.rdb, "*"); len(keys) != 0 {
		t.Fatalf("refused specs left keys %v", keys)
	}
	if longest := strings.Repeat("a", 64); r.user(longest, Agent).Name != longest {
		t.Fatal("a 64-character name was not kept")
	}
}

// TestAddUserRetried runs the script twice with one op, as go-redis does
// after a read timeout: the second run finds its own account, not a
// conflict.
func TestAddUserRetried(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testAddUserRetried)
}

func testAddUserRetried(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	for i := range 2 {
		res, err := r.s.run(r.ctx, addUserScript, "alice", "agent", "", "", ms(start), "root", "op1")
		if err != nil || status(res) != "ok" {
			t.Fatalf("run %d: %v %v", i, res, err)
		}
	}
	res, err := r.s.run(r.ctx, addUserScript, "alice", "agent", "", "", ms(start), "root", "op2")
	if err != nil || status(res) != "exists" {
		t.Fatalf("another AddUser of alice: %v %v; want exists", res, err)
	}
}

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testUpdateUser)
}

func testUpdateUser(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	r.user("alice", Agent)
	r.clock.Add(time.Hour)
	roles, agent, off := []Role{Supervisor, Agent}, "a7", true
	u, err := r.s.UpdateUser(r.ctx, "alice", UserChange{Roles: &roles, AgentID: &agent, Disabled: &off, By: "boss"})
	if err != nil {
		t.Fatal(err)
	}
	want := User{Name: "alice", Roles: []Role{Agent, Supervisor}, AgentID: "a7", Disabled: true, HasPassword: true,
		CreatedAt: start, CreatedBy: "root", UpdatedAt: start.Add(time.Hour), UpdatedBy: "boss"}
	if !equalUser(u, want) {
		t.Fatalf("UpdateUser = %+v; want %+v", u, want)
	}
	// Nil fields stay as they are.
	on, none := false, ""
	u, err = r.s.UpdateUser(r.ctx, "alice", UserChange{Disabled: &on, AgentID: &none, By: "boss"})
	if err != nil || u.Disabled || u.AgentID != "" || !slices.Equal(u.Roles, want.Roles) {
		t.Fatalf("enable = %+v, %v", u, err)
	}
	if u, err := r.s.UpdateUser(r.ctx, "alice", UserChange{}); err != nil || u.Name != "alice" {
		t.Fatalf("empty change = %+v, %v", u, err)
	}

	noRoles, badRole, badAgent := []Role{}, []Role{"root"}, "a b"
	for _, c := range []UserChange{
		{Roles: &noRoles, By: "boss"},
		{Roles: &badRole, By: "boss"},
		{AgentID: &badAgent, By: "boss"},
		{Disabled: &off},
	} {
		_, err := r.s.UpdateUser(r.ctx, "alice", c)
		wantErr(t, err, ErrInvalid)
	}
	_, err = r.s.UpdateUser(r.ctx, "bob", UserChange{Disabled: &off, By: "boss"})
	wantErr(t, err, ErrNotFound)
	_, err = r.s.UpdateUser(r.ctx, "ALICE", UserChange{Disabled: &off, By: "boss"})
	wantErr(t, err, ErrNotFound)
}

func TestSetPassword(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testSetPassword)
}

func testSetPassword(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	if _, err := r.s.AddUser(r.ctx, UserSpec{Name: "alice", Roles: []Role{Agent}, By: "root"}); err != nil {
		t.Fatal(err)
	}
	_, err := r.s.CheckPassword(r.ctx, "alice", "new password 1")
	wantErr(t, err, ErrBadCredentials)
	wantErr(t, r.s.SetPassword(r.ctx, "alice", "short", "root"), ErrInvalid)
	wantErr(t, r.s.SetPassword(r.ctx, "alice", "", "root"), ErrInvalid)
	wantErr(t, r.s.SetPassword(r.ctx, "bob", "new password 1", "root"), ErrNotFound)
	r.clock.Add(time.Minute)
	if err := r.s.SetPassword(r.ctx, "alice", "new password 1", "alice"); err != nil {
		t.Fatal(err)
	}
	u, err := r.s.CheckPassword(r.ctx, "alice", "new password 1")
	if err != nil || !u.HasPassword || u.UpdatedBy != "alice" || !u.UpdatedAt.Equal(start.Add(time.Minute)) {
		t.Fatalf("CheckPassword after SetPassword = %+v, %v", u, err)
	}
}

// TestCheckPassword checks each answer, and that each way of failing
// costs one argon2id, as the right password does. Not parallel: it counts
// the process's argon2id runs.
func TestCheckPassword(t *testing.T) {
	redistest.Backends(t, testCheckPassword)
}

func testCheckPassword(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	r.user("alice", Agent)
	r.user("carol", Agent)
	off := true
	if _, err := r.s.UpdateUser(r.ctx, "carol", UserChange{Disabled: &off, By: "root"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.s.AddUser(r.ctx, UserSpec{Name: "bot", Roles: []Role{Ops}, By: "root"}); err != nil {
		t.Fatal(err)
	}
	writes := r.writes()
	for _, tc := range []struct {
		name, password string
		want           error
	}{
		{"alice", goodPassword, nil},
		{"alice", "wrong horse battery", ErrBadCredentials},
		{"alice", "", ErrBadCredentials},
		{"nobody", goodPassword, ErrBadCredentials},
		{"bad name!", goodPassword, ErrBadCredentials},
		{"bot", "", ErrBadCredentials}, // no password: no password login
		{"bot", goodPassword, ErrBadCredentials},
		{"carol", goodPassword, ErrDisabled},
		{"carol", "wrong horse battery", ErrBadCredentials}, // disabled tells only the right password
	} {
		before := argonRuns.Load()
		u, err := r.s.CheckPassword(r.ctx, tc.name, tc.password)
		if runs := argonRuns.Load() - before; runs != 1 {
			t.Errorf("CheckPassword(%s, %q) ran argon2id %d times; want 1", tc.name, tc.password, runs)
		}
		if tc.want == nil {
			if err != nil || u.Name != tc.name {
				t.Errorf("CheckPassword(%s, %q) = %+v, %v; want the account", tc.name, tc.password, u, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || u.Name != "" {
			t.Errorf("CheckPassword(%s, %q) = %+v, %v; want %v", tc.name, tc.password, u, err, tc.want)
		}
	}
	if w := r.writes(); w != writes {
		t.Fatalf("CheckPassword wrote %d changes; want none", w-writes)
	}
	_, err := r.s.CheckPassword(r.ctx, "alice", strings.Repeat("p", MaxPasswordBytes+1))
	wantErr(t, err, ErrBadCredentials)
}

// TestStoredPasswordIsPHCOnly reads the account's record as Redis holds
// it and as JSON shows it: the password is nowhere, its hash only in the
// record.
func TestStoredPasswordIsPHCOnly(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testStoredPasswordIsPHCOnly)
}

func testStoredPasswordIsPHCOnly(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	u := r.user("alice", Agent)
	h, err := r.rdb.HGetAll(r.ctx, r.s.userKey("alice")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !phcPattern.MatchString(h["pw"]) {
		t.Fatalf("stored hash %q is not argon2id PHC", h["pw"])
	}
	for _, k := range redistest.Keys(t, r.rdb, "*") {
		v, _ := r.rdb.Dump(r.ctx, k).Result()
		if strings.Contains(v, goodPassword) || strings.Contains(k, goodPassword) {
			t.Fatalf("key %s holds the password", k)
		}
	}
	doc, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), "argon2") || strings.Contains(string(doc), goodPassword) {
		t.Fatalf("JSON of a user shows a secret: %s", doc)
	}
}
