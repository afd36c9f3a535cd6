package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hotline12345/hotline/storage"
)

// writeFile writes a settings file in a temporary folder and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hotline.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// envMap is an environment for Load.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// onlyProblem asserts that err holds exactly one KeyError and returns it.
func onlyProblem(t *testing.T, err error) *KeyError {
	t.Helper()
	kes := keyErrors(err)
	if len(kes) != 1 {
		t.Fatalf("want one problem, got %d: %v", len(kes), err)
	}
	return kes[0]
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadWithoutFileIsDefault(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(\"\") = %+v, want %+v", c, Default())
	}
}

func TestExampleIsDefaultAndHasEveryKey(t *testing.T) {
	c, err := Load("example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("example.yaml gives %+v, want Default() %+v", c, Default())
	}

	origins := map[string]origin{}
	scratch := Default()
	if err := scratch.decodeFile("example.yaml", origins); err != nil {
		t.Fatal(err)
	}
	for _, s := range scratch.leaves() {
		if _, ok := origins[s.key]; !ok {
			t.Errorf("example.yaml does not document %s", s.key)
		}
	}
}

func TestFileThenEnvironment(t *testing.T) {
	path := writeFile(t, `
sip:
  listen: 0.0.0.0:5080
  codecs: [PCMA]
  max_calls: 500
ivr:
  tries: 5
  first_digit_timeout: 8s
log:
  level: debug
`)
	c, err := Load(path, envMap(map[string]string{
		"HOTLINE_SIP_LISTEN":              "10.1.2.3:5060",
		"HOTLINE_IVR_FIRST_DIGIT_TIMEOUT": "2500ms",
		"HOTLINE_SIP_CODECS":              "PCMU, PCMA",
		"HOTLINE_SIP_TRANSPORTS":          "udp",
		"HOTLINE_TIME_ZONE":               "UTC",
		"HOTLINE_LOG_LEVEL":               "", // empty counts as unset
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.SIP.Listen = "10.1.2.3:5060"                              // env over file
	want.SIP.Codecs = []string{"PCMU", "PCMA"}                     // env over file
	want.SIP.MaxCalls = 500                                        // file
	want.SIP.Transports = []string{"udp"}                          // env over default
	want.IVR.Tries = 5                                             // file
	want.IVR.FirstDigitTimeout = Duration(2500 * time.Millisecond) // env over file
	want.TimeZone = "UTC"                                          // env over default
	want.Log.Level = "debug"                                       // file; the empty variable is ignored
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

// sample returns a text for setting s and the value it must produce, unlike
// the default.
func sample(t *testing.T, s setting) (string, any) {
	switch {
	case s.value.Type() == reflect.TypeFor[Duration]():
		return "42s", Duration(42 * time.Second)
	case s.value.Kind() == reflect.String:
		return "x-" + s.key, "x-" + s.key
	case s.value.Kind() == reflect.Int:
		return "7", 7
	case s.value.Kind() == reflect.Bool:
		return "true", true
	case s.value.Kind() == reflect.Slice:
		return " a ,b,", []string{"a", "b"}
	}
	t.Fatalf("%s: no sample for type %s", s.key, s.value.Type())
	return "", nil
}

func TestEverySettingHasAnEnvironmentVariable(t *testing.T) {
	c := Default()
	env := map[string]string{}
	want := map[string]any{}
	for _, s := range c.leaves() {
		if _, dup := env[s.env]; dup {
			t.Errorf("two settings share the variable %s", s.env)
		}
		text, value := sample(t, s)
		env[s.env] = text
		want[s.key] = value
	}
	for _, name := range []string{"HOTLINE_BACKEND", "HOTLINE_ARI_URL", "HOTLINE_ARI_PASSWORD", "HOTLINE_ARI_RECONNECT_MIN", "HOTLINE_SIP_LISTEN", "HOTLINE_SIP_RTP_PORTS", "HOTLINE_IVR_FIRST_DIGIT_TIMEOUT", "HOTLINE_REDIS_SERVER_PATH", "HOTLINE_TIME_ZONE", "HOTLINE_SHUTDOWN_GRACE", "HOTLINE_LOG_LEVEL", "HOTLINE_BANS_MAX_FAILURES", "HOTLINE_BANS_ALLOW"} {
		if _, ok := env[name]; !ok {
			t.Errorf("no setting has the variable %s", name)
		}
	}

	origins := map[string]origin{}
	if errs := c.applyEnv(envMap(env), origins); len(errs) != 0 {
		t.Fatal(errors.Join(errs...))
	}
	for _, s := range c.leaves() {
		if got := s.value.Interface(); !reflect.DeepEqual(got, want[s.key]) {
			t.Errorf("%s from %s = %#v, want %#v", s.key, s.env, got, want[s.key])
		}
		if origins[s.key].source != s.env {
			t.Errorf("%s: origin %q, want %s", s.key, origins[s.key].source, s.env)
		}
	}
}

func TestWellKnownVariablesNameSettings(t *testing.T) {
	keys := map[string]bool{}
	c := Default()
	for _, s := range c.leaves() {
		keys[s.key] = true
	}
	for _, a := range wellKnownEnv() {
		if !keys[a.Key] {
			t.Errorf("%s names %s, which is not a setting", a.Var, a.Key)
		}
	}
}

func TestRedisURL(t *testing.T) {
	path := writeFile(t, "redis:\n  url: redis://file:6379/0\n")
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"file", nil, "redis://file:6379/0"},
		{"REDIS_URL", map[string]string{"REDIS_URL": "redis://env:6379/1"}, "redis://env:6379/1"},
		{"HOTLINE_REDIS_URL", map[string]string{"HOTLINE_REDIS_URL": "rediss://env:6380/2"}, "rediss://env:6380/2"},
		{"both agree", map[string]string{"REDIS_URL": "redis://env:6379/1", "HOTLINE_REDIS_URL": "redis://env:6379/1"}, "redis://env:6379/1"},
		{"empty REDIS_URL", map[string]string{"REDIS_URL": ""}, "redis://file:6379/0"},
	}
	for _, tc := range cases {
		c, err := Load(path, envMap(tc.env))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if c.Redis.URL != tc.want {
			t.Errorf("%s: redis.url = %q, want %q", tc.name, c.Redis.URL, tc.want)
		}
	}

	_, err := Load(path, envMap(map[string]string{"REDIS_URL": "redis://a:6379", "HOTLINE_REDIS_URL": "redis://b:6379"}))
	ke := onlyProblem(t, err)
	if !errors.Is(err, ErrConflictingEnv) || ke.Key != "redis.url" {
		t.Errorf("two different Redis URLs: %v", err)
	}
}

// asterisk makes c a valid configuration of the asterisk backend.
func asterisk(c *Config) {
	c.Backend = "asterisk"
	c.ARI.Password = "ari-password"
}

func TestARIFromTheEnvironment(t *testing.T) {
	path := writeFile(t, `
backend: asterisk
ari:
  url: http://file:8088/ari
  username: file-user
  password: file-password
  application: file-app
`)
	fromFile := Default()
	asterisk(&fromFile)
	fromFile.ARI.URL, fromFile.ARI.Username, fromFile.ARI.Password, fromFile.ARI.Application =
		"http://file:8088/ari", "file-user", "file-password", "file-app"

	cases := []struct {
		name string
		env  map[string]string
		want func(*Config)
	}{
		{"file", nil, func(*Config) {}},
		{"ARI_ names", map[string]string{
			"ARI_URL": "https://pbx:8089/ari", "ARI_USERNAME": "env-user", "ARI_PASSWORD": "env-password", "ARI_APPLICATION": "env-app",
		}, func(c *Config) {
			c.ARI.URL, c.ARI.Username, c.ARI.Password, c.ARI.Application = "https://pbx:8089/ari", "env-user", "env-password", "env-app"
		}},
		{"HOTLINE_ARI_ names", map[string]string{
			"HOTLINE_ARI_URL": "https://pbx:8089/ari", "HOTLINE_ARI_PASSWORD": "env-password", "HOTLINE_ARI_PING_TIMEOUT": "2s",
		}, func(c *Config) {
			c.ARI.URL, c.ARI.Password, c.ARI.PingTimeout = "https://pbx:8089/ari", "env-password", Duration(2*time.Second)
		}},
		{"both agree", map[string]string{"ARI_PASSWORD": "same", "HOTLINE_ARI_PASSWORD": "same"}, func(c *Config) { c.ARI.Password = "same" }},
		{"empty ARI_PASSWORD", map[string]string{"ARI_PASSWORD": ""}, func(*Config) {}},
		{"backend from the environment", map[string]string{"HOTLINE_BACKEND": "sip"}, func(c *Config) { c.Backend = "sip" }},
	}
	for _, tc := range cases {
		c, err := Load(path, envMap(tc.env))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		want := fromFile
		tc.want(&want)
		if !reflect.DeepEqual(c, want) {
			t.Errorf("%s: ari %+v, want %+v", tc.name, c.ARI, want.ARI)
		}
	}

	for _, alias := range []string{"ARI_URL", "ARI_USERNAME", "ARI_PASSWORD", "ARI_APPLICATION"} {
		_, err := Load(path, envMap(map[string]string{alias: "a", "HOTLINE_" + alias: "b"}))
		ke := onlyProblem(t, err)
		if !errors.Is(err, ErrConflictingEnv) || ke.Key != "ari."+strings.ToLower(strings.TrimPrefix(alias, "ARI_")) {
			t.Errorf("%s and HOTLINE_%s differ: %v", alias, alias, err)
		}
	}

	// A bad value names the variable it came from.
	_, err := Load("", envMap(map[string]string{"HOTLINE_BACKEND": "asterisk", "ARI_PASSWORD": "pw", "ARI_URL": "http://127.0.0.1:8088"}))
	if ke := onlyProblem(t, err); ke.Key != "ari.url" || ke.Source != "ARI_URL" {
		t.Errorf("bad ARI_URL: problem %+v", ke)
	}
	// The asterisk backend cannot start without a password.
	_, err = Load("", envMap(map[string]string{"HOTLINE_BACKEND": "asterisk"}))
	if ke := onlyProblem(t, err); ke.Key != "ari.password" {
		t.Errorf("no password: problem %+v", ke)
	}
}

func TestARIURLCredentialsStayOutOfMessages(t *testing.T) {
	c := Default()
	asterisk(&c)
	c.ARI.URL = "http://hotline:s3cret-word@127.0.0.1:8088/ari"
	err := c.Validate()
	if ke := onlyProblem(t, err); ke.Key != "ari.url" || strings.Contains(err.Error(), "s3cret-word") {
		t.Errorf("credentials in ari.url: %v", err)
	}
}

func TestARIEventsURL(t *testing.T) {
	cases := map[string]string{
		"http://127.0.0.1:8088/ari":             "ws://127.0.0.1:8088/ari/events",
		"http://127.0.0.1:8088/ari/":            "ws://127.0.0.1:8088/ari/events",
		"https://pbx.example.org/asterisk/ari":  "wss://pbx.example.org/asterisk/ari/events",
		"http://[::1]:8088/ari":                 "ws://[::1]:8088/ari/events",
		"ftp://127.0.0.1/ari":                   "",
		"http://127.0.0.1:port/ari":             "",
		"http://127.0.0.1:8088/ari?app=hotline": "ws://127.0.0.1:8088/ari/events",
	}
	for in, want := range cases {
		c := Default()
		c.ARI.URL = in
		if got := c.ARIEventsURL(); got != want {
			t.Errorf("ARIEventsURL of %q = %q, want %q", in, got, want)
		}
	}
}

func TestBadEnvironmentValueNamesTheVariable(t *testing.T) {
	cases := []struct {
		name, value, key string
	}{
		{"HOTLINE_SIP_MAX_CALLS", "lots", "sip.max_calls"},
		{"HOTLINE_SIP_MEDIA_TIMEOUT", "30", "sip.media_timeout"}, // a duration needs its unit
		{"HOTLINE_SIP_LISTEN", "abc", "sip.listen"},              // reads, but fails Validate
		{"REDIS_URL", "localhost:6379", "redis.url"},
		{"HOTLINE_IVR_TRIES", "0", "ivr.tries"},
	}
	for _, tc := range cases {
		_, err := Load("", envMap(map[string]string{tc.name: tc.value}))
		ke := onlyProblem(t, err)
		if ke.Key != tc.key || ke.Source != tc.name || ke.Line != 0 {
			t.Errorf("%s=%s: problem %+v, want key %s from %s", tc.name, tc.value, ke, tc.key, tc.name)
		}
	}
}

func TestFileProblemsNameKeyAndLine(t *testing.T) {
	cases := []struct {
		name, text, key string
		line            int
		is              error
	}{
		{"unknown key", "sip:\n  listen: 127.0.0.1:5060\n  listn: 0.0.0.0:5060\n", "sip.listn", 3, ErrUnknownKey},
		{"unknown section", "backend: sip\nsipp:\n  listen: x\n", "sipp", 2, ErrUnknownKey},
		{"unknown key in a known section", "\n\nlog:\n  colour: true\n", "log.colour", 4, ErrUnknownKey},
		{"key given twice", "ivr:\n  tries: 3\n  tries: 4\n", "ivr.tries", 3, ErrDuplicateKey},
		{"not a number", "sip:\n  max_calls: many\n", "sip.max_calls", 2, errWantNumber},
		{"bare number as duration", "shutdown:\n  grace: 60\n", "shutdown.grace", 2, errWantDuration},
		{"section as a value", "sip: 5060\n", "sip", 1, errWantMapping},
		{"mapping as a list", "sip:\n  codecs:\n    a: b\n", "sip.codecs", 3, errWantList},
		{"list as a value", "sip:\n  listen: [a, b]\n", "sip.listen", 2, errWantValue},
		{"merge key", "base: &b\n  level: info\nlog:\n  <<: *b\n", "base", 1, ErrUnknownKey},
		{"invalid value", "ivr:\n  language: zh\n  tries: 11\n", "ivr.tries", 3, nil},
		{"unknown key in an agent", "agents:\n  - id: a1\n    sip_user: u1\n    pasword: x\n", "agents[0].pasword", 4, ErrUnknownKey},
		{"agents not a list", "agents:\n  id: a1\n", "agents", 2, errWantList},
		{"ARI without its path", "backend: asterisk\nari:\n  password: pw\n  url: http://127.0.0.1:8088\n", "ari.url", 4, nil},
		{"unknown key in ari", "ari:\n  pasword: pw\n", "ari.pasword", 2, ErrUnknownKey},
	}
	for _, tc := range cases {
		path := writeFile(t, tc.text)
		_, err := Load(path, nil)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		ke := keyErrors(err)[0]
		if ke.Key != tc.key || ke.Line != tc.line || ke.Source != path {
			t.Errorf("%s: problem %+v, want %s at %s:%d", tc.name, ke, tc.key, path, tc.line)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v is not %v", tc.name, err, tc.is)
		}
	}
}

func agentOK(id, user string) Agent {
	return Agent{ID: id, Name: "Agent " + id, SIPUser: user, Password: "password-" + id, Categories: []string{"general", "emergency"}}
}

func TestAgentsFromTheFile(t *testing.T) {
	path := writeFile(t, "agents:\n  - id: a1\n    name: Wang Fang\n    sip_user: wang\n    password: s3cret-pass\n    categories: [general, emergency]\n  - id: a2\n    sip_user: li\n    password: another-pass\n    categories: [livelihood]\n")
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Agent{
		{ID: "a1", Name: "Wang Fang", SIPUser: "wang", Password: "s3cret-pass", Categories: []string{"general", "emergency"}},
		{ID: "a2", SIPUser: "li", Password: "another-pass", Categories: []string{"livelihood"}},
	}
	if !reflect.DeepEqual(c.Agents, want) {
		t.Errorf("agents %+v, want %+v", c.Agents, want)
	}
}

func TestMergeKeyIsRefused(t *testing.T) {
	path := writeFile(t, "log: &l\n  level: info\nshutdown:\n  <<: *l\n")
	_, err := Load(path, nil)
	ke := onlyProblem(t, err)
	if ke.Key != "shutdown.<<" || ke.Line != 4 || !errors.Is(err, errMergeKey) {
		t.Errorf("merge key: %+v", ke)
	}
}

func TestFileEdgeCases(t *testing.T) {
	cases := []struct {
		name, text string
		want       func(*Config)
	}{
		{"empty file", "", func(*Config) {}},
		{"comments only", "# nothing set\n", func(*Config) {}},
		{"empty section", "sip:\nlog:\n", func(*Config) {}},
		{"key without value keeps the default", "sip:\n  listen:\n  codecs: ~\n", func(*Config) {}},
		{"empty string is a value", "sip:\n  external_ip: \"\"\n", func(*Config) {}},
		{"list on one line", "sip:\n  codecs: PCMA, PCMU\n", func(c *Config) { c.SIP.Codecs = []string{"PCMA", "PCMU"} }},
		{"alias", "http:\n  listen: &addr 127.0.0.1:9000\nsip:\n  listen: 127.0.0.2:5060\n  external_ip: 127.0.0.2\n", func(c *Config) {
			c.HTTP.Listen = "127.0.0.1:9000"
			c.SIP.Listen = "127.0.0.2:5060"
			c.SIP.ExternalIP = "127.0.0.2"
		}},
		{"anchored list", "sip:\n  transports: &t [tcp]\n", func(c *Config) { c.SIP.Transports = []string{"tcp"} }},
	}
	for _, tc := range cases {
		c, err := Load(writeFile(t, tc.text), nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		want := Default()
		tc.want(&want)
		if !reflect.DeepEqual(c, want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, c, want)
		}
	}
}

func TestFileErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	for name, text := range map[string]string{
		"syntax":        "sip:\n  listen: [\n",
		"two documents": "backend: sip\n---\nbackend: sip\n",
		"tab indent":    "sip:\n\tlisten: x\n",
	} {
		path := writeFile(t, text)
		_, err := Load(path, nil)
		ke := onlyProblem(t, err)
		if ke.Source != path {
			t.Errorf("%s: problem %+v does not name the file", name, ke)
		}
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	cases := []struct {
		key    string
		mutate func(*Config)
	}{
		{"backend", func(c *Config) { c.Backend = "ari" }},
		{"backend", func(c *Config) { c.Backend = "" }},
		{"ari.password", func(c *Config) { asterisk(c); c.ARI.Password = "" }},
		{"ari.url", func(c *Config) { asterisk(c); c.ARI.URL = "" }},
		{"ari.url", func(c *Config) { asterisk(c); c.ARI.URL = "127.0.0.1:8088/ari" }},
		{"ari.url", func(c *Config) { asterisk(c); c.ARI.URL = "ws://127.0.0.1:8088/ari/events" }},
		{"ari.url", func(c *Config) { asterisk(c); c.ARI.URL = "http://127.0.0.1:8088" }},
		{"ari.url", func(c *Config) { asterisk(c); c.ARI.URL = "http://127.0.0.1:8088/" }},
		{"ari.url", func(c *Config) { asterisk(c); c.ARI.URL = "http:///ari" }},
		{"ari.url", func(c *Config) { asterisk(c); c.ARI.URL = "http://127.0.0.1:8088/ari?app=hotline" }},
		{"ari.url", func(c *Config) { asterisk(c); c.ARI.URL = "http://127.0.0.1:port/ari" }},
		{"ari.url", func(c *Config) { asterisk(c); c.ARI.URL = "http://hotline:secret@127.0.0.1:8088/ari" }},
		{"ari.username", func(c *Config) { asterisk(c); c.ARI.Username = "" }},
		{"ari.username", func(c *Config) { asterisk(c); c.ARI.Username = "hot:line" }},
		{"ari.application", func(c *Config) { asterisk(c); c.ARI.Application = "" }},
		{"ari.application", func(c *Config) { asterisk(c); c.ARI.Application = "hotline,other" }},
		{"ari.application", func(c *Config) { asterisk(c); c.ARI.Application = "hot line" }},
		{"ari.reconnect_min", func(c *Config) { asterisk(c); c.ARI.ReconnectMin = 0 }},
		{"ari.reconnect_max", func(c *Config) { asterisk(c); c.ARI.ReconnectMax = Duration(100 * time.Millisecond) }},
		{"ari.ping_interval", func(c *Config) { asterisk(c); c.ARI.PingInterval = 0 }},
		{"ari.ping_timeout", func(c *Config) { asterisk(c); c.ARI.PingTimeout = Duration(-time.Second) }},
		{"sip.listen", func(c *Config) { c.SIP.Listen = "abc" }},
		{"sip.listen", func(c *Config) { c.SIP.Listen = "127.0.0.1:" }},
		{"sip.listen", func(c *Config) { c.SIP.Listen = "127.0.0.1:sip" }},
		{"sip.listen", func(c *Config) { c.SIP.Listen = "127.0.0.1:65536" }},
		{"sip.listen", func(c *Config) { c.SIP.Listen = "::1:5060" }},
		{"sip.listen", func(c *Config) { c.SIP.Listen = "" }},
		{"sip.transports", func(c *Config) { c.SIP.Transports = nil }},
		{"sip.transports", func(c *Config) { c.SIP.Transports = []string{"udp", "tls"} }},
		{"sip.transports", func(c *Config) { c.SIP.Transports = []string{"udp", "udp"} }},
		{"sip.external_ip", func(c *Config) { c.SIP.ExternalIP = "pbx.example.org" }},
		{"sip.external_ip", func(c *Config) { c.SIP.ExternalIP = "0.0.0.0" }},
		{"sip.rtp_ports", func(c *Config) { c.SIP.RTPPorts = "10000" }},
		{"sip.rtp_ports", func(c *Config) { c.SIP.RTPPorts = "a-b" }},
		{"sip.rtp_ports", func(c *Config) { c.SIP.RTPPorts = "" }},
		{"sip.rtp_ports", func(c *Config) { c.SIP.RTPPorts = "1000-2000" }},
		{"sip.rtp_ports", func(c *Config) { c.SIP.RTPPorts = "60000-65536" }},
		{"sip.rtp_ports", func(c *Config) { c.SIP.RTPPorts = "20000-10000" }},
		{"sip.rtp_ports", func(c *Config) { c.SIP.RTPPorts = "10000-10000" }},
		{"sip.rtp_ports", func(c *Config) { c.SIP.RTPPorts = "10000-10003" }},
		{"sip.rtp_ports", func(c *Config) { c.SIP.RTPPorts = "10001-10003" }},
		{"sip.media_timeout", func(c *Config) { c.SIP.MediaTimeout = Duration(4 * time.Second) }},
		{"http.login_ttl", func(c *Config) { c.HTTP.LoginTTL = Duration(time.Second) }},
		{"http.login_ttl", func(c *Config) { c.HTTP.LoginTTL = Duration(31 * 24 * time.Hour) }},
		{"http.metrics_token", func(c *Config) { c.HTTP.MetricsToken = "short" }},
		{"http.trusted_proxies", func(c *Config) { c.HTTP.TrustedProxies = []string{"10.0.0.1/8"} }},
		{"sip.media_timeout", func(c *Config) { c.SIP.MediaTimeout = 0 }},
		{"sip.ring_time", func(c *Config) { c.SIP.RingTime = Duration(-time.Second) }},
		{"sip.rtp_priority", func(c *Config) { c.SIP.RTPPriority = -1 }},
		{"sip.realm", func(c *Config) { c.SIP.Realm = "" }},
		{"sip.digest_algorithms", func(c *Config) { c.SIP.DigestAlgorithms = []string{"SHA-512"} }},
		{"sip.realm", func(c *Config) { c.SIP.Realm = `a"b` }},
		{"acd.ring_timeout", func(c *Config) { c.ACD.RingTimeout = Duration(time.Second) }},
		{"acd.wrap_up", func(c *Config) { c.ACD.WrapUp = Duration(-time.Second) }},
		{"acd.max_missed", func(c *Config) { c.ACD.MaxMissed = 0 }},
		{"acd.max_wait", func(c *Config) { c.ACD.MaxWait = Duration(2 * time.Hour) }},
		{"acd.reoffer", func(c *Config) { c.ACD.Reoffer = Duration(time.Millisecond) }},
		{"acd.position_every", func(c *Config) { c.ACD.PositionEvery = Duration(time.Second) }},
		{"rating.praise_key", func(c *Config) { c.Rating.PraiseKey = "11" }},
		{"rating.bad_review_key", func(c *Config) { c.Rating.BadReviewKey = "A" }},
		{"rating.bad_review_key", func(c *Config) { c.Rating.BadReviewKey = "1" }},
		{"rating.tries", func(c *Config) { c.Rating.Tries = 0 }},
		{"rating.timeout", func(c *Config) { c.Rating.Timeout = Duration(2 * time.Minute) }},
		{"agents[0].id", func(c *Config) {
			c.Agents = []Agent{{ID: "a 1", SIPUser: "u", Password: "password-long", Categories: []string{"general"}}}
		}},
		{"agents[1].id", func(c *Config) { c.Agents = []Agent{agentOK("a1", "u1"), agentOK("a1", "u2")} }},
		{"agents[1].sip_user", func(c *Config) { c.Agents = []Agent{agentOK("a1", "u1"), agentOK("a2", "u1")} }},
		{"agents[0].password", func(c *Config) { a := agentOK("a1", "u1"); a.Password = "short"; c.Agents = []Agent{a} }},
		{"agents[0].categories", func(c *Config) { a := agentOK("a1", "u1"); a.Categories = []string{"water"}; c.Agents = []Agent{a} }},
		{"node", func(c *Config) { c.Node = "node one" }},
		{"cluster.lease", func(c *Config) { c.Cluster.Lease = Duration(500 * time.Millisecond) }},
		{"cluster.lease", func(c *Config) { c.Cluster.Lease = Duration(time.Hour) }},
		{"sip.rtp_priority", func(c *Config) { c.SIP.RTPPriority = 100 }},
		{"sip.max_calls", func(c *Config) { c.SIP.MaxCalls = 0 }},
		{"sip.codecs", func(c *Config) { c.SIP.Codecs = []string{} }},
		{"sip.codecs", func(c *Config) { c.SIP.Codecs = []string{"PCMU", "G729"} }},
		{"sip.codecs", func(c *Config) { c.SIP.Codecs = []string{"pcmu"} }},
		{"sip.codecs", func(c *Config) { c.SIP.Codecs = []string{"PCMA", "PCMA"} }},
		{"http.listen", func(c *Config) { c.HTTP.Listen = "8080" }},
		{"http.listen", func(c *Config) { c.HTTP.Listen = c.SIP.Listen }},
		{"redis.url", func(c *Config) { c.Redis.URL = "localhost:6379" }},
		{"redis.url", func(c *Config) { c.Redis.URL = "http://cache:6379" }},
		{"redis.url", func(c *Config) { c.Redis.URL = "redis://cache:port" }},
		{"redis.url", func(c *Config) { c.Redis.URL = "redis-sentinel://s1:26379" }},
		{"redis.url", func(c *Config) { c.Redis.URL = "redis-sentinel://s1,,s2/hotline" }},
		{"redis.url", func(c *Config) { c.Redis.URL = "redis+cluster://n1:7000/3" }},
		{"redis.url", func(c *Config) { c.Redis.URL = "redis://cache:6379?no_such_option=1" }},
		{"redis.data_dir", func(c *Config) { c.Redis.DataDir = " " }},
		{"ivr.language", func(c *Config) { c.IVR.Language = "fr" }},
		{"ivr.first_digit_timeout", func(c *Config) { c.IVR.FirstDigitTimeout = Duration(999 * time.Millisecond) }},
		{"ivr.first_digit_timeout", func(c *Config) { c.IVR.FirstDigitTimeout = Duration(61 * time.Second) }},
		{"appeals.retention", func(c *Config) { c.Appeals.Retention = Duration(399 * 24 * time.Hour) }},
		{"ivr.tries", func(c *Config) { c.IVR.Tries = 0 }},
		{"ivr.tries", func(c *Config) { c.IVR.Tries = 11 }},
		{"time_zone", func(c *Config) { c.TimeZone = "Mars/Olympus_Mons" }},
		{"time_zone", func(c *Config) { c.TimeZone = "" }},
		{"time_zone", func(c *Config) { c.TimeZone = "Local" }},
		{"shutdown.grace", func(c *Config) { c.Shutdown.Grace = Duration(-time.Second) }},
		{"journal.deadline", func(c *Config) { c.Journal.Deadline = Duration(10 * time.Millisecond) }},
		{"journal.deadline", func(c *Config) { c.Journal.Deadline = Duration(time.Minute) }},
		{"journal.appeal_numbers", func(c *Config) { c.Journal.AppealNumbers = 0 }},
		{"journal.max_size_mb", func(c *Config) { c.Journal.MaxSizeMB = 0 }},
		{"log.level", func(c *Config) { c.Log.Level = "verbose" }},
		{"log.format", func(c *Config) { c.Log.Format = "xml" }},
		{"bans.max_failures", func(c *Config) { c.Bans.MaxFailures = 0 }},
		{"bans.window", func(c *Config) { c.Bans.Window = 0 }},
		{"bans.window", func(c *Config) { c.Bans.Window = Duration(500 * time.Millisecond) }},
		{"bans.duration", func(c *Config) { c.Bans.Duration = Duration(-time.Minute) }},
		{"bans.allow", func(c *Config) { c.Bans.Allow = []string{"10.0.0.0/8", "office"} }},
		{"bans.allow", func(c *Config) { c.Bans.Allow = []string{"10.0.0.0/33"} }},
		{"bans.allow", func(c *Config) { c.Bans.Allow = []string{"10.0.0.1/8"} }},
		{"bans.allow", func(c *Config) { c.Bans.Allow = []string{"fe80::1%eth0"} }},
		{"bans.allow", func(c *Config) { c.Bans.Allow = []string{""} }},
	}
	for _, tc := range cases {
		c := Default()
		tc.mutate(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: no error for %+v", tc.key, c)
			continue
		}
		if ke := onlyProblem(t, err); ke.Key != tc.key || ke.Source != "" {
			t.Errorf("problem %+v, want key %s", ke, tc.key)
		}
	}
}

// The configuration accepts a Redis URL exactly when storage.Open would:
// one parser decides, and its refusal names the key without the password.
func TestRedisURLIsReadByStorage(t *testing.T) {
	for _, url := range []string{
		"redis://:pw@cache:6379/2?dial_timeout=2s",
		"redis://cache:6379?no_such_option=1",
		"redis://cache:6379/x",
		"unix:///run/redis/redis.sock?db=3",
		"unix://",
		"redis-sentinel://:pw@s1:26379,s2,[fd00::3]:26381/hotline?db=4",
		"redis-sentinel://:pw@s1:26379",
		"redis-sentinel://s1/m?master_name=other",
		"rediss-sentinel://s1/hotline?sentinel_password=sp",
		"redis+cluster://:pw@n1:7000,n2:7001,n3",
		"redis+cluster://n1:7000/3",
		"redis+cluster://n1:notaport",
		"rediss+cluster://n1:7000",
		"memcached://:pw@cache:11211",
	} {
		c := Default()
		c.Redis.URL = url
		err := c.Validate()
		want := storage.CheckURL(url)
		if (err == nil) != (want == nil) {
			t.Errorf("%s: config says %v, storage says %v", url, err, want)
			continue
		}
		if err == nil {
			continue
		}
		if ke := onlyProblem(t, err); ke.Key != "redis.url" || !errors.Is(ke, storage.ErrBadURL) {
			t.Errorf("%s: %+v, want redis.url wrapping storage.ErrBadURL", url, ke)
		}
		if strings.Contains(err.Error(), ":pw@") {
			t.Errorf("%s: the error shows the password: %v", url, err)
		}
	}
}

func TestValidateAcceptsEdges(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
	}{
		{"any free port", func(c *Config) { c.SIP.Listen, c.HTTP.Listen = "127.0.0.1:0", "127.0.0.1:0" }},
		{"every interface", func(c *Config) { c.SIP.Listen, c.HTTP.Listen = ":5060", "0.0.0.0:8080" }},
		{"IPv6", func(c *Config) { c.SIP.Listen, c.SIP.ExternalIP = "[::1]:5060", "2001:db8::1" }},
		{"host name", func(c *Config) { c.HTTP.Listen = "localhost:8080" }},
		{"same address over UDP only", func(c *Config) { c.SIP.Transports, c.HTTP.Listen = []string{"udp"}, c.SIP.Listen }},
		{"widest RTP range", func(c *Config) { c.SIP.RTPPorts = "1024-65534" }},
		{"one RTP pair", func(c *Config) { c.SIP.RTPPorts = "40000-40002" }},
		{"shortest media timeout", func(c *Config) { c.SIP.MediaTimeout = Duration(5 * time.Second) }},
		{"ringing", func(c *Config) { c.SIP.RingTime = Duration(3 * time.Second) }},
		{"one codec", func(c *Config) { c.SIP.Codecs = []string{"PCMA"} }},
		{"shared Redis", func(c *Config) { c.Redis.URL, c.Redis.DataDir = "redis://:secret@cache:6379/0", "" }},
		{"Redis over TLS", func(c *Config) { c.Redis.URL = "rediss://cache:6380" }},
		{"Redis socket", func(c *Config) { c.Redis.URL = "unix:///run/redis.sock" }},
		{"Redis Sentinel", func(c *Config) {
			c.Redis.URL = "redis-sentinel://:secret@s1:26379,s2:26380,s3/hotline?db=1&sentinel_password=sp"
		}},
		{"Redis Sentinel over TLS", func(c *Config) { c.Redis.URL = "rediss-sentinel://s1/hotline" }},
		{"Redis Cluster", func(c *Config) { c.Redis.URL = "redis+cluster://:secret@n1:7000,n2:7001,n3:7002?read_timeout=2s" }},
		{"Redis Cluster over TLS", func(c *Config) { c.Redis.URL = "rediss+cluster://n1:7000" }},
		{"English", func(c *Config) { c.IVR.Language = "en" }},
		{"digit timeout bounds", func(c *Config) { c.IVR.FirstDigitTimeout = Duration(time.Second) }},
		{"digit timeout top", func(c *Config) { c.IVR.FirstDigitTimeout = Duration(time.Minute) }},
		{"tries bounds", func(c *Config) { c.IVR.Tries = 1 }},
		{"tries top", func(c *Config) { c.IVR.Tries = 10 }},
		{"UTC", func(c *Config) { c.TimeZone = "UTC" }},
		{"no grace", func(c *Config) { c.Shutdown.Grace = 0 }},
		{"log names", func(c *Config) { c.Log.Level, c.Log.Format = "error", "json" }},
		{"asterisk", asterisk},
		{"bans at their least", func(c *Config) {
			c.Bans.MaxFailures, c.Bans.Window, c.Bans.Duration = 1, Duration(time.Second), Duration(time.Second)
		}},
		{"allow-list", func(c *Config) {
			c.Bans.Allow = []string{"10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1", "0.0.0.0/0"}
		}},
		{"ARI over TLS behind a prefix", func(c *Config) { asterisk(c); c.ARI.URL = "https://pbx.example.org/asterisk/ari" }},
		{"ARI on IPv6", func(c *Config) { asterisk(c); c.ARI.URL = "http://[::1]:8088/ari" }},
		{"ARI root with a slash", func(c *Config) { asterisk(c); c.ARI.URL = "http://127.0.0.1:8088/ari/" }},
		{"fixed reconnect wait", func(c *Config) { asterisk(c); c.ARI.ReconnectMin = c.ARI.ReconnectMax }},
		{"ari unread by the sip backend", func(c *Config) {
			c.ARI.URL, c.ARI.Username, c.ARI.Password, c.ARI.Application = "", "", "", ""
			c.ARI.ReconnectMin, c.ARI.ReconnectMax, c.ARI.PingInterval, c.ARI.PingTimeout = 0, 0, 0, 0
		}},
	}
	for _, tc := range cases {
		c := Default()
		tc.mutate(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.SIP.Listen = "abc"
	c.IVR.Tries = 0
	c.Log.Level = "loud"
	var keys []string
	for _, ke := range keyErrors(c.Validate()) {
		keys = append(keys, ke.Key)
	}
	if want := []string{"sip.listen", "ivr.tries", "log.level"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("problems for %v, want %v", keys, want)
	}
}

func TestDurations(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d != Duration(90*time.Second) {
		t.Errorf("UnmarshalText(1m30s) = %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("30")); !errors.Is(err, errWantDuration) {
		t.Errorf("UnmarshalText(30) = %v", err)
	}

	var v struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 250ms\n"), &v); err != nil || v.D != Duration(250*time.Millisecond) {
		t.Errorf("yaml 250ms = %v, %v", v.D, err)
	}
	for _, text := range []string{"d: 30\n", "d: [1s]\n", "d: soon\n"} {
		if err := yaml.Unmarshal([]byte(text), &v); !errors.Is(err, errWantDuration) {
			t.Errorf("yaml %q = %v, %v", text, v.D, err)
		}
	}

	out, err := yaml.Marshal(map[string]Duration{"grace": Duration(90 * time.Second)})
	if err != nil || string(out) != "grace: 1m30s\n" {
		t.Errorf("yaml.Marshal = %q, %v", out, err)
	}
	js, err := json.Marshal(Duration(5 * time.Second))
	if err != nil || string(js) != `"5s"` {
		t.Errorf("json.Marshal = %s, %v", js, err)
	}
}

// TestMarshalledConfigLoadsBack checks that a Config written with yaml.v3
// (as a "show the settings in force" command would) reads back the same.
func TestMarshalledConfigLoadsBack(t *testing.T) {
	c := Default()
	c.SIP.RingTime = Duration(1500 * time.Millisecond)
	c.Redis.URL = "redis://cache:6379/3"
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(writeFile(t, string(out)), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("read back %+v, want %+v", back, c)
	}
}

func TestLocation(t *testing.T) {
	loc := Default().Location()
	if _, offset := time.Date(2025, 1, 1, 0, 0, 0, 0, loc).Zone(); offset != 8*3600 {
		t.Errorf("%v: offset %ds, want +8h", loc, offset)
	}
	c := Default()
	c.TimeZone = "Mars/Olympus_Mons"
	if c.Location() != time.UTC {
		t.Errorf("unknown zone gives %v, want UTC", c.Location())
	}
}

func TestAdvertisedIPAndRTPPortRange(t *testing.T) {
	c := Default()
	if got := c.AdvertisedIP(); got != "127.0.0.1" {
		t.Errorf("default AdvertisedIP = %q", got)
	}
	c.SIP.Listen = "0.0.0.0:5060"
	if got := c.AdvertisedIP(); got != "" {
		t.Errorf("wildcard AdvertisedIP = %q, want empty", got)
	}
	c.SIP.ExternalIP = "203.0.113.7"
	if got := c.AdvertisedIP(); got != "203.0.113.7" {
		t.Errorf("AdvertisedIP = %q, want the external IP", got)
	}
	if low, high := c.RTPPortRange(); low != 10000 || high != 20000 {
		t.Errorf("RTPPortRange = %d-%d", low, high)
	}
	c.SIP.RTPPorts = "lots"
	if low, high := c.RTPPortRange(); low != 0 || high != 0 {
		t.Errorf("malformed RTPPortRange = %d-%d", low, high)
	}
}

func TestKeyErrorReadsLikeTheSource(t *testing.T) {
	// The message is what an operator sees; check its parts are where a
	// reader (and an editor jumping to file:line) expects them.
	err := &KeyError{Key: "sip.listen", Source: "hotline.yaml", Line: 7, Err: errWantValue}
	if !strings.HasPrefix(err.Error(), "hotline.yaml:7: sip.listen: ") {
		t.Errorf("message %q", err)
	}
}

func TestBans(t *testing.T) {
	d := Default()
	if d.Bans.MaxFailures != 5 || d.Bans.Window != Duration(time.Minute) || d.Bans.Duration != Duration(10*time.Minute) ||
		len(d.Bans.Allow) != 0 || len(d.BanAllow()) != 0 {
		t.Errorf("default bans %+v, allow %v", d.Bans, d.BanAllow())
	}

	path := writeFile(t, `
bans:
  max_failures: 3
  window: 30s
  duration: 1h
  allow: [10.0.0.0/8, 192.168.1.7, "2001:db8::/32", "2001:db8:1::9"]
`)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Bans.MaxFailures != 3 || c.Bans.Window != Duration(30*time.Second) || c.Bans.Duration != Duration(time.Hour) {
		t.Errorf("bans from the file %+v", c.Bans)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("2001:db8:1::9/128")}
	if got := c.BanAllow(); !reflect.DeepEqual(got, want) {
		t.Errorf("BanAllow %v, want %v", got, want)
	}

	c, err = Load(path, envMap(map[string]string{
		"HOTLINE_BANS_ALLOW":        "10.0.0.0/8, 192.168.1.7",
		"HOTLINE_BANS_MAX_FAILURES": "8",
		"HOTLINE_BANS_DURATION":     "15m",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}
	if got := c.BanAllow(); !reflect.DeepEqual(got, want) || c.Bans.MaxFailures != 8 ||
		c.Bans.Duration != Duration(15*time.Minute) || c.Bans.Window != Duration(30*time.Second) {
		t.Errorf("bans from the environment over the file %+v, allow %v", c.Bans, got)
	}

	// A bad value names the key and where it came from.
	_, err = Load(path, envMap(map[string]string{"HOTLINE_BANS_ALLOW": "10.0.0.0/8,office"}))
	if ke := onlyProblem(t, err); ke.Key != "bans.allow" || ke.Source != "HOTLINE_BANS_ALLOW" || !strings.Contains(ke.Error(), `"office"`) {
		t.Errorf("problem %v", ke)
	}
	_, err = Load(writeFile(t, "bans:\n  max_failures: 0\n"), nil)
	if ke := onlyProblem(t, err); ke.Key != "bans.max_failures" || ke.Line != 2 {
		t.Errorf("problem %v", ke)
	}
	_, err = Load(writeFile(t, "bans:\n  window: 10\n"), nil)
	if ke := onlyProblem(t, err); ke.Key != "bans.window" || !errors.Is(err, errWantDuration) {
		t.Errorf("problem %v", ke)
	}

	// What Validate lets through, BanAllow reads; what it refuses,
	// BanAllow leaves out.
	c = Default()
	c.Bans.Allow = []string{" 10.1.0.0/16 ", "::1", "garbage"}
	if got := c.BanAllow(); !reflect.DeepEqual(got, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("::1/128")}) {
		t.Errorf("BanAllow %v", got)
	}
}

// TestUnknownEnv: a variable with the settings' prefix that is no setting
// is named, with the setting it probably meant.
func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{
		"HOTLINE_SIP_LISTN=127.0.0.1:5070", "HOTLINE_SIP_LISTEN=127.0.0.1:5060", "HOTLINE_TOKEN=x",
		"HOTLINE_API=http://x", "HOTLINE_BANS_ALLOWED=10.0.0.0/8", "HOTLINE_NONSENSE_ENTIRELY_UNLIKE_ANY=1", "PATH=/bin",
	})
	want := []string{
		"HOTLINE_BANS_ALLOWED is no setting; did you mean HOTLINE_BANS_ALLOW (bans.allow)?",
		"HOTLINE_NONSENSE_ENTIRELY_UNLIKE_ANY is no setting",
		"HOTLINE_SIP_LISTN is no setting; did you mean HOTLINE_SIP_LISTEN (sip.listen)?",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UnknownEnv:\n%q\nwant\n%q", got, want)
	}
}

// TestStateDir: one place for the node's state whatever folder it starts
// from: storage.dir, else systemd's StateDirectory, else the XDG state
// home, else ~/.local/state.
func TestStateDir(t *testing.T) {
	env := func(vars map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	}
	for _, c := range []struct {
		dir  string
		vars map[string]string
		want string
	}{
		{"/srv/hotline", map[string]string{"STATE_DIRECTORY": "/var/lib/hotline", "HOME": "/home/li"}, "/srv/hotline"},
		{"", map[string]string{"STATE_DIRECTORY": "/var/lib/hotline:/var/lib/other", "XDG_STATE_HOME": "/x", "HOME": "/home/li"}, "/var/lib/hotline"},
		{"", map[string]string{"XDG_STATE_HOME": "/home/li/.state", "HOME": "/home/li"}, "/home/li/.state/hotline"},
		{"", map[string]string{"XDG_STATE_HOME": "relative", "HOME": "/home/li"}, "/home/li/.local/state/hotline"},
		{"", map[string]string{"HOME": "/home/li"}, "/home/li/.local/state/hotline"},
		{"", nil, ""},
	} {
		cfg := Default()
		cfg.Storage.Dir = c.dir
		if got := cfg.StateDir(env(c.vars)); got != c.want {
			t.Errorf("storage.dir %q, %v: %q, want %q", c.dir, c.vars, got, c.want)
		}
		if c.want != "" {
			if got := cfg.RedisDataDir(env(c.vars)); got != c.want+"/redis" {
				t.Errorf("redis data dir %q, want %q", got, c.want+"/redis")
			}
		}
	}
	cfg := Default()
	cfg.Redis.DataDir = "/data/redis"
	if got := cfg.RedisDataDir(env(map[string]string{"HOME": "/home/li"})); got != "/data/redis" {
		t.Errorf("redis.data_dir set: %q", got)
	}
}
