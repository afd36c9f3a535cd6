package redistest_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }

// Backends runs its body on each deployment, with a client of its kind,
// and the shared ones start empty for every test.
func TestBackends(t *testing.T) {
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			var ran []string
			redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
				ran = append(ran, t.Name())
				ctx := t.Context()
				if err := rdb.Get(ctx, "{left}:over").Err(); !errors.Is(err, redis.Nil) {
					t.Fatalf("a key of an earlier test: %v", err)
				}
				if err := rdb.Set(ctx, "{left}:over", name, 0).Err(); err != nil {
					t.Fatal(err)
				}
				_, cluster := rdb.(*redis.ClusterClient)
				if want := t.Name() == "TestBackends/"+name+"/"+redistest.BackendCluster; cluster != want {
					t.Errorf("%s: a %T", t.Name(), rdb)
				}
				// A Sentinel's client reaches the master, not the
				// replica.
				if info, err := rdb.Info(ctx, "replication").Result(); err != nil || !strings.Contains(info, "role:master") {
					t.Errorf("not a master: %v\n%s", err, info)
				}
			})
			want := 3
			if testing.Short() {
				want = 1
			}
			if len(ran) != want {
				t.Errorf("ran on %v, want %d deployments", ran, want)
			}
		})
	}
}
