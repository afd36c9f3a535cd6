package storage

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseURLSingle(t *testing.T) {
	tests := []struct {
		url, network, addr string
		db                 int
		tls                bool
		password           string
	}{
		{"redis://localhost:6380/2", "tcp", "localhost:6380", 2, false, ""},
		{"redis://:s3cret@10.0.0.5", "tcp", "10.0.0.5:6379", 0, false, "s3cret"},
		{"rediss://user:pw@redis.example:6390/0", "tcp", "redis.example:6390", 0, true, "pw"},
		{"unix:///run/redis/redis.sock?db=3", "unix", "/run/redis/redis.sock", 3, false, ""},
		{"redis://[::1]:7000", "tcp", "[::1]:7000", 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := parseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			o := got.single
			if o == nil || got.failover != nil || got.cluster != nil {
				t.Fatalf("want a single-server target, got %+v", got)
			}
			if o.Network != tt.network || o.Addr != tt.addr || o.DB != tt.db || o.Password != tt.password || (o.TLSConfig != nil) != tt.tls {
				t.Fatalf("got network %q addr %q db %d password %q tls %v", o.Network, o.Addr, o.DB, o.Password, o.TLSConfig != nil)
			}
		})
	}
}

func TestParseURLSentinel(t *testing.T) {
	got, err := parseURL("redis-sentinel://:master%40pw@s1:26380,s2,[fd00::3]:26381/hotline-master?db=4&dial_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	o := got.failover
	if o == nil {
		t.Fatalf("want a Sentinel target, got %+v", got)
	}
	if o.MasterName != "hotline-master" {
		t.Errorf("master %q", o.MasterName)
	}
	if want := []string{"s1:26380", "s2:26379", "[fd00::3]:26381"}; !slices.Equal(o.SentinelAddrs, want) {
		t.Errorf("sentinels %v, want %v", o.SentinelAddrs, want)
	}
	if o.DB != 4 || o.DialTimeout != 2*time.Second {
		t.Errorf("db %d dial timeout %v", o.DB, o.DialTimeout)
	}
	// The URL's password is the master's; the sentinels have none here.
	if o.Password != "master@pw" || o.SentinelPassword != "" {
		t.Errorf("password %q sentinel password %q", o.Password, o.SentinelPassword)
	}
	if o.TLSConfig != nil {
		t.Error("TLS on for redis-sentinel://")
	}

	got, err = parseURL("rediss-sentinel://u:p@s1/m?sentinel_password=sp")
	if err != nil {
		t.Fatal(err)
	}
	o = got.failover
	if o.Username != "u" || o.Password != "p" || o.SentinelPassword != "sp" || o.TLSConfig == nil {
		t.Errorf("user %q password %q sentinel password %q tls %v", o.Username, o.Password, o.SentinelPassword, o.TLSConfig != nil)
	}
}

func TestParseURLCluster(t *testing.T) {
	got, err := parseURL("redis+cluster://:pw@n1:7000,n2:7001,n3?read_timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	o := got.cluster
	if o == nil {
		t.Fatalf("want a cluster target, got %+v", got)
	}
	if want := []string{"n1:7000", "n2:7001", "n3:6379"}; !slices.Equal(o.Addrs, want) {
		t.Errorf("nodes %v, want %v", o.Addrs, want)
	}
	if o.Password != "pw" || o.ReadTimeout != time.Second || o.TLSConfig != nil {
		t.Errorf("password %q read timeout %v tls %v", o.Password, o.ReadTimeout, o.TLSConfig != nil)
	}
	got, err = parseURL("rediss+cluster://n1:7000")
	if err != nil || got.cluster == nil || got.cluster.TLSConfig == nil {
		t.Fatalf("rediss+cluster: %+v, %v", got, err)
	}
}

func TestParseURLRejects(t *testing.T) {
	for _, raw := range []string{
		"",
		"localhost:6379",
		"http://localhost:6379",
		"redis://localhost:6379/x",
		"redis://localhost:6379/1/2",
		"redis://localhost:6379?no_such_option=1",
		"unix://",
		"redis-sentinel://s1:26379",
		"redis-sentinel://s1:26379/",
		"redis-sentinel://s1:26379/a/b",
		"redis-sentinel:///mymaster",
		"redis-sentinel://s1,,s2/mymaster",
		"redis-sentinel://s1/m?master_name=other",
		"redis-sentinel://s1/m?addr=s2:1",
		"redis+cluster://",
		"redis+cluster://n1:7000/3",
		"redis+cluster://n1:7000?addr=n2:7001",
		"redis+cluster://n1:notaport",
		"redis+cluster://n1:7000#frag",
		"redis://:secretpw@host:port",
	} {
		t.Run(raw, func(t *testing.T) {
			_, err := parseURL(raw)
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("err = %v, want ErrBadURL", err)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"redis://:pw@host:1/0":                            "redis://:xxxxx@host:1/0",
		"redis://user:pw@host":                            "redis://user:xxxxx@host",
		"redis://user@host":                               "redis://user@host",
		"redis://host/0":                                  "redis://host/0",
		"unix://u:pw@/run/r.sock":                         "unix://u:xxxxx@/run/r.sock",
		"redis-sentinel://:pw@a,b/m?sentinel_password=sp": "redis-sentinel://:xxxxx@a,b/m?sentinel_password=xxxxx",
		"redis://h?password=pw&db=1":                      "redis://h?password=xxxxx&db=1",
	}
	for in, want := range tests {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
