package auth

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
)

// TestBootstrapOnce starts eight nodes at once on one empty Redis, each
// with its own connection: exactly one makes the admin token.
func TestBootstrapOnce(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testBootstrapOnce)
}

func testBootstrapOnce(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	const nodes = 8
	stores := make([]*Store, nodes)
	for i := range stores {
		stores[i] = NewStore(r.rdb, StoreOptions{Now: r.clock.Now, Password: cheap})
	}
	type result struct {
		secret  string
		created bool
		err     error
	}
	results := make([]result, nodes)
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-ready
			secret, created, err := s.Bootstrap(r.ctx, time.Hour)
			results[i] = result{secret, created, err}
		})
	}
	close(ready)
	wg.Wait()
	var secret string
	made := 0
	for i, res := range results {
		if res.err != nil {
			t.Fatalf("node %d: %v", i, res.err)
		}
		if res.created {
			made++
			secret = res.secret
		} else if res.secret != "" {
			t.Fatalf("node %d got a secret without creating: %q", i, res.secret)
		}
	}
	if made != 1 {
		t.Fatalf("%d nodes made an admin token; want exactly 1", made)
	}
	p, err := r.s.Authenticate(r.ctx, secret)
	if err != nil || p.User != BootstrapUser || !p.Has(Admin) || !p.ExpiresAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("bootstrap token: %+v, %v; want admin for an hour", p, err)
	}
	u, err := r.s.User(r.ctx, BootstrapUser)
	if err != nil || u.CreatedBy != "bootstrap" || u.HasPassword || u.Disabled || !u.Has(Admin) {
		t.Fatalf("admin account = %+v, %v", u, err)
	}
	if ok, err := r.s.HasAdmin(r.ctx); err != nil || !ok {
		t.Fatalf("HasAdmin after bootstrap = %v, %v", ok, err)
	}
	tok, err := r.s.Token(r.ctx, p.TokenID)
	if err != nil || tok.CreatedBy != "bootstrap" || tok.Login {
		t.Fatalf("bootstrap token = %+v, %v", tok, err)
	}
}

// TestBootstrapRetried runs the script twice with one id and hash, as
// go-redis does after a read timeout: the second run reports the token
// the first made, so its secret is not lost.
func TestBootstrapRetried(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testBootstrapRetried)
}

func testBootstrapRetried(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	id, _, sha := newSecret()
	for i := range 2 {
		res, err := r.s.run(r.ctx, bootstrapScript, id, sha, ms(start), ms(start.Add(time.Hour)), r.s.retention.Milliseconds(), BootstrapUser)
		if err != nil || len(res) != 2 || res[0] != int64(1) {
			t.Fatalf("run %d: %v, %v; want {1, admin}", i, res, err)
		}
	}
	if _, created, err := r.s.Bootstrap(r.ctx, time.Hour); err != nil || created {
		t.Fatalf("another Bootstrap: created %v, %v", created, err)
	}
}

// TestBootstrapNotNeeded leaves a hotline that has a way in as admin as it
// is.
func TestBootstrapNotNeeded(t *testing.T) {
	for _, tc := range []struct {
		what  string
		setup func(r *rig)
	}{
		{"an admin with a password", func(r *rig) { r.user("root", Admin) }},
		{"a live admin token of an admin", func(r *rig) {
			if _, err := r.s.AddUser(r.ctx, UserSpec{Name: "root", Roles: []Role{Admin}, By: "ops"}); err != nil {
				r.t.Fatal(err)
			}
			r.token(TokenSpec{User: "root", Roles: []Role{Admin}})
		}},
		{"a live admin token of no account", func(r *rig) { r.token(TokenSpec{Roles: []Role{Admin}}) }},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
				r := newRig(t, rdb)
				tc.setup(r)
				if ok, err := r.s.HasAdmin(r.ctx); err != nil || !ok {
					t.Fatalf("HasAdmin = %v, %v", ok, err)
				}
				writes := r.writes()
				secret, created, err := r.s.Bootstrap(r.ctx, time.Hour)
				if err != nil || created || secret != "" {
					t.Fatalf("Bootstrap = %q, %v, %v; want nothing made", secret, created, err)
				}
				if w := r.writes(); w != writes {
					t.Fatalf("Bootstrap wrote %d changes", w-writes)
				}
			})
		})
	}
}

// TestBootstrapNeeded makes an admin token when what there is does not
// let anyone in as admin.
func TestBootstrapNeeded(t *testing.T) {
	for _, tc := range []struct {
		what  string
		setup func(r *rig)
	}{
		{"an empty hotline", func(*rig) {}},
		{"an admin without password or token", func(r *rig) {
			if _, err := r.s.AddUser(r.ctx, UserSpec{Name: "root", Roles: []Role{Admin}, By: "ops"}); err != nil {
				r.t.Fatal(err)
			}
		}},
		{"a disabled admin", func(r *rig) {
			r.user("root", Admin)
			off := true
			if _, err := r.s.UpdateUser(r.ctx, "root", UserChange{Disabled: &off, By: "root"}); err != nil {
				r.t.Fatal(err)
			}
		}},
		{"an expired admin token", func(r *rig) {
			r.token(TokenSpec{Roles: []Role{Admin}, TTL: time.Minute})
			r.clock.Add(time.Minute)
		}},
		{"a revoked admin token", func(r *rig) {
			_, tok := r.token(TokenSpec{Roles: []Role{Admin}})
			if _, err := r.s.RevokeToken(r.ctx, tok.ID, "root"); err != nil {
				r.t.Fatal(err)
			}
		}},
		{"an admin token of an account no longer admin", func(r *rig) {
			r.user("root", Admin, Ops)
			r.token(TokenSpec{User: "root", Roles: []Role{Admin}})
			ops := []Role{Ops}
			if _, err := r.s.UpdateUser(r.ctx, "root", UserChange{Roles: &ops, By: "root"}); err != nil {
				r.t.Fatal(err)
			}
		}},
		{"non-admins only", func(r *rig) {
			r.user("alice", Supervisor, Ops)
			r.token(TokenSpec{Roles: []Role{Ops, Supervisor}})
		}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
				r := newRig(t, rdb)
				tc.setup(r)
				if ok, err := r.s.HasAdmin(r.ctx); err != nil || ok {
					t.Fatalf("HasAdmin = %v, %v; want false", ok, err)
				}
				secret, created, err := r.s.Bootstrap(r.ctx, time.Hour)
				if err != nil || !created {
					t.Fatalf("Bootstrap = %v, %v; want an admin token", created, err)
				}
				if p, err := r.s.Authenticate(r.ctx, secret); err != nil || !p.Has(Admin) {
					t.Fatalf("bootstrap token: %+v, %v", p, err)
				}
			})
		})
	}
}

// TestBootstrapTakesBackDisabledAdmin: an "admin" that was disabled comes
// back with the admin role, without its old password and old tokens, so
// only the new token gets in.
func TestBootstrapTakesBackDisabledAdmin(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testBootstrapTakesBackDisabledAdmin)
}

func testBootstrapTakesBackDisabledAdmin(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	r.user("admin", Ops, Admin)
	old, _ := r.token(TokenSpec{User: "admin", Roles: []Role{Ops}})
	off, ops := true, []Role{Ops}
	if _, err := r.s.UpdateUser(r.ctx, "admin", UserChange{Disabled: &off, Roles: &ops, By: "root"}); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(time.Minute)
	secret, created, err := r.s.Bootstrap(r.ctx, time.Hour)
	if err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v", created, err)
	}
	u, err := r.s.User(r.ctx, "admin")
	want := []Role{Ops, Admin}
	if err != nil || u.Disabled || u.HasPassword || !slices.Equal(u.Roles, want) || u.UpdatedBy != "bootstrap" || u.CreatedBy != "root" {
		t.Fatalf("admin = %+v, %v; want enabled, no password, roles %v", u, err, want)
	}
	if _, err := r.s.CheckPassword(r.ctx, "admin", goodPassword); err == nil {
		t.Fatal("the old password still works")
	}
	_, err = r.s.Authenticate(r.ctx, old)
	wantErr(t, err, ErrRevoked)
	if _, err := r.s.Authenticate(r.ctx, secret); err != nil {
		t.Fatal(err)
	}
}

// TestBootstrapResetsNonAdmin: an "admin" account that holds no admin role
// becomes one, but whoever knew its password does not become an admin
// with it.
func TestBootstrapResetsNonAdmin(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testBootstrapResetsNonAdmin)
}

func testBootstrapResetsNonAdmin(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	r.user("admin", Supervisor)
	old, _ := r.token(TokenSpec{User: "admin", Roles: []Role{Supervisor}})
	if _, created, err := r.s.Bootstrap(r.ctx, time.Hour); err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v", created, err)
	}
	u, err := r.s.User(r.ctx, "admin")
	if err != nil || u.HasPassword || !slices.Equal(u.Roles, []Role{Supervisor, Admin}) {
		t.Fatalf("admin = %+v, %v; want supervisor and admin, no password", u, err)
	}
	_, err = r.s.Authenticate(r.ctx, old)
	wantErr(t, err, ErrRevoked)
}

// TestBootstrapKeepsAdminsTokens: an "admin" that is an enabled admin
// without a password (its bootstrap token expired unused) keeps its other
// tokens when it gets a new one.
func TestBootstrapKeepsAdminsTokens(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testBootstrapKeepsAdminsTokens)
}

func testBootstrapKeepsAdminsTokens(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	if _, err := r.s.AddUser(r.ctx, UserSpec{Name: "admin", Roles: []Role{Ops, Admin}, By: "root"}); err != nil {
		t.Fatal(err)
	}
	opsToken, _ := r.token(TokenSpec{User: "admin", Roles: []Role{Ops}})
	if _, created, err := r.s.Bootstrap(r.ctx, time.Hour); err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v", created, err)
	}
	if _, err := r.s.Authenticate(r.ctx, opsToken); err != nil {
		t.Fatalf("the admin's ops token: %v", err)
	}
}

func TestBootstrapRefusesBadTTL(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testBootstrapRefusesBadTTL)
}

func testBootstrapRefusesBadTTL(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	for _, ttl := range []time.Duration{0, -time.Hour, MaxTokenTTL + time.Hour} {
		_, _, err := r.s.Bootstrap(r.ctx, ttl)
		wantErr(t, err, ErrInvalid)
	}
}
