package asteriskconf

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/prompts"
)

// confFiles are the files of the set, all of which go to /etc/asterisk.
var confFiles = []string{"http.conf", "ari.conf", "pjsip.conf", "extensions.conf", "modules.conf", "rtp.conf", "logger.conf", "cdr.conf"}

// Problems the checks find; each is wrapped with where it is.
var (
	errReference   = errors.New("names something that is not there")
	errStasisApp   = errors.New("Stasis() names another application")
	errAnswered    = errors.New("answered before Stasis")
	errFallback    = errors.New("no fallback when hotline is down")
	errPrompt      = errors.New("plays a prompt the catalog does not have")
	errExposed     = errors.New("ARI reachable beyond loopback")
	errHTTP        = errors.New("HTTP server does not serve ari.url")
	errARI         = errors.New("ARI not set up for hotline")
	errSecret      = errors.New("a password that is not a placeholder")
	errModules     = errors.New("modules not loaded as hotline needs")
	errRTP         = errors.New("unsafe RTP settings")
	errLogger      = errors.New("logs fail2ban cannot use")
	errCDR         = errors.New("CDRs without the fallback's note")
	errMissingFile = errors.New("file missing from the set")
)

// problem is a check's finding at a place in a file.
func problem(err error, where string, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", where, err, fmt.Sprintf(format, args...))
}

func at(file string, line int) string { return fmt.Sprintf("%s:%d", file, line) }

// confSet is the parsed files.
type confSet map[string]*conf

// loadSet parses every file of the set in fsys.
func loadSet(fsys fs.FS) (confSet, error) {
	set := confSet{}
	var errs []error
	for _, name := range confFiles {
		if _, err := fs.Stat(fsys, name); err != nil {
			errs = append(errs, problem(errMissingFile, name, "%v", err))
			continue
		}
		c, err := parseConf(fsys, name)
		errs = append(errs, err)
		set[name] = c
	}
	return set, errors.Join(errs...)
}

// checkSet runs every check on the files in fsys and returns what they
// find, joined.
func checkSet(fsys fs.FS) error {
	set, err := loadSet(fsys)
	if err != nil {
		return err
	}
	catalog, err := prompts.Default()
	if err != nil {
		return err
	}
	d, err := readDialplan(set["extensions.conf"])
	if err != nil {
		return err
	}
	hotline := config.Default()
	return errors.Join(
		checkPJSIP(set["pjsip.conf"], d),
		checkDialplan(d, hotline.ARI.Application, catalog),
		checkFallback(d, hotline.ARI.Application),
		checkHTTP(set["http.conf"], hotline.ARI.URL),
		checkARI(set["ari.conf"], hotline.ARI.Username),
		checkSecrets(set),
		checkModules(set["modules.conf"]),
		checkRTP(set["rtp.conf"]),
		checkLogger(set["logger.conf"]),
		checkCDR(set["cdr.conf"]),
	)
}

// typed reports whether a section called name has type=want.
func typed(c *conf, name, want string) bool {
	for _, s := range c.named(name) {
		if t, _ := s.get("type"); t == want {
			return true
		}
	}
	return false
}

// checkPJSIP checks that what PJSIP sections name exists with the right
// type, and that endpoints' contexts are dialplan contexts.
func checkPJSIP(c *conf, d *dialplan) error {
	refs := map[string]map[string]string{ // type -> key -> type it names
		"endpoint":     {"aors": "aor", "auth": "auth", "outbound_auth": "auth", "transport": "transport"},
		"identify":     {"endpoint": "endpoint"},
		"registration": {"transport": "transport", "outbound_auth": "auth", "endpoint": "endpoint"},
	}
	var errs []error
	for _, s := range c.sections {
		typ, ok := s.get("type")
		if !ok {
			if !s.template {
				errs = append(errs, problem(errReference, at(s.file, s.line), "[%s] has no type=", s.name))
			}
			continue
		}
		if s.template {
			continue // checked where it is used
		}
		for key, want := range refs[typ] {
			v, ok := s.get(key)
			if !ok {
				continue
			}
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); !typed(c, name, want) {
					errs = append(errs, problem(errReference, at(s.file, s.line), "[%s] %s = %s: no section %q of type=%s", s.name, key, v, name, want))
				}
			}
		}
		if typ == "endpoint" {
			ctx, _ := s.get("context")
			if d.contexts[ctx] == nil {
				errs = append(errs, problem(errReference, at(s.file, s.line), "endpoint [%s] context = %q: no such context in extensions.conf", s.name, ctx))
			}
		}
	}
	return errors.Join(errs...)
}

// checkDialplan checks every Stasis() names app, every Goto, Gosub and
// include reaches a context that exists, no extension answers before
// Stasis (the application answers), and every hotline/ sound played is a
// prompt of the catalog.
func checkDialplan(d *dialplan, app string, catalog *prompts.Catalog) error {
	sounds := map[string]bool{}
	for _, id := range catalog.IDs() {
		sounds[prompts.AsteriskSoundName(id)] = true
	}
	var errs []error
	answered := map[string]bool{} // context/exten that ran Answer
	for _, st := range d.steps {
		where := at(st.file, st.line)
		key := st.context + "/" + st.exten
		switch strings.ToLower(st.app) {
		case "answer":
			answered[key] = true
		case "stasis":
			if got := strings.TrimSpace(splitTop(st.args, ',')[0]); got != app {
				errs = append(errs, problem(errStasisApp, where, "Stasis(%s): hotline's ari.application is %q", st.args, app))
			}
			if answered[key] {
				errs = append(errs, problem(errAnswered, where, "%s answers before Stasis: hotline answers when it is ready", key))
			}
		case "goto", "gosub":
			errs = append(errs, checkLabel(d, st, st.args))
		case "gotoif", "gosubif", "gotoiftime":
			_, labels, ok := strings.Cut(st.args, "?")
			if !ok {
				errs = append(errs, problem(errReference, where, "%s(%s) without ?", st.app, st.args))
				continue
			}
			for _, l := range splitTop(labels, ':') {
				errs = append(errs, checkLabel(d, st, l))
			}
		case "playback", "background":
			files := splitTop(st.args, ',')[0]
			for _, f := range splitTop(files, '&') {
				if f = strings.TrimSpace(f); strings.HasPrefix(f, "hotline/") && !sounds[f] {
					errs = append(errs, problem(errPrompt, where, "%s(%s): %q is not a prompt of prompts/catalog.yaml", st.app, st.args, f))
				}
			}
		}
	}
	for _, inc := range d.includes {
		if d.contexts[inc.value] == nil {
			errs = append(errs, problem(errReference, at(inc.file, inc.line), "include => %s: no such context", inc.value))
		}
	}
	return errors.Join(errs...)
}

// labelContext returns the context of a Goto/Gosub label
// "[[context,]exten,]priority", the step's own context when it names none.
func labelContext(st step, label string) string {
	if parts := splitTop(label, ','); len(parts) == 3 {
		return strings.TrimSpace(parts[0])
	}
	return st.context
}

// checkLabel checks that a Goto/Gosub label's context exists. A context
// computed at run time (${...}) cannot be checked here.
func checkLabel(d *dialplan, st step, label string) error {
	label = strings.TrimSpace(label)
	if label == "" {
		return nil // GotoIf(cond?label) with no false branch
	}
	ctx := labelContext(st, label)
	if strings.Contains(ctx, "${") || d.contexts[ctx] != nil {
		return nil
	}
	return problem(errReference, at(st.file, st.line), "%s(%s): no context %q", st.app, st.args, ctx)
}

// fallbackDir is where the dialplan records callers' messages while hotline
// is down; README.md tells operators to look there.
const fallbackDir = "${ASTSPOOLDIR}/hotline-fallback/"

// checkFallback checks that every extension of from-trunk hands the call to
// Stasis(app), that 12345 is one of them, and that when Stasis fails
// (STASISSTATUS is FAILED: the application is not registered) the call goes
// to a context that answers, plays the apology, records the caller's
// message with a CDR note, and hangs up.
func checkFallback(d *dialplan, app string) error {
	if d.contexts["from-trunk"] == nil {
		return problem(errFallback, "extensions.conf", "no context from-trunk, which pjsip.conf's trunks use")
	}
	var errs []error
	checked := map[string]bool{} // fallback context,exten already checked
	extens := map[string]bool{}
	for _, st := range d.steps {
		if st.context == "from-trunk" {
			extens[st.exten] = true
		}
	}
	if !extens["12345"] {
		errs = append(errs, problem(errFallback, "extensions.conf", "from-trunk has no extension 12345"))
	}
	for exten := range extens {
		steps := d.extension("from-trunk", exten)
		i := slices.IndexFunc(steps, func(st step) bool { return strings.EqualFold(st.app, "Stasis") })
		if i < 0 {
			errs = append(errs, problem(errFallback, at(steps[0].file, steps[0].line), "from-trunk,%s does not run Stasis(%s)", exten, app))
			continue
		}
		if i+1 >= len(steps) || !isFailedCheck(steps[i+1]) {
			errs = append(errs, problem(errFallback, at(steps[i].file, steps[i].line), "from-trunk,%s: Stasis is not followed by GotoIf($[\"${STASISSTATUS}\" = \"FAILED\"]?context,s,1)", exten))
			continue
		}
		_, labels, _ := strings.Cut(steps[i+1].args, "?")
		label := splitTop(labels, ':')[0]
		parts := splitTop(label, ',')
		if len(parts) != 3 {
			errs = append(errs, problem(errFallback, at(steps[i+1].file, steps[i+1].line), "the fallback label %q does not name context,exten,priority", label))
			continue
		}
		ctx, exten := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
		if !checked[ctx+","+exten] {
			checked[ctx+","+exten] = true
			errs = append(errs, checkFallbackContext(d, ctx, exten))
		}
	}
	return errors.Join(errs...)
}

// isFailedCheck reports whether st is GotoIf on STASISSTATUS being FAILED.
func isFailedCheck(st step) bool {
	cond, _, _ := strings.Cut(st.args, "?")
	return strings.EqualFold(st.app, "GotoIf") && strings.Contains(cond, "${STASISSTATUS}") && strings.Contains(cond, `"FAILED"`)
}

// checkFallbackContext checks the steps the fallback runs.
func checkFallbackContext(d *dialplan, context, exten string) error {
	steps := d.extension(context, exten)
	if len(steps) == 0 {
		return problem(errFallback, "extensions.conf", "fallback %s,%s has no steps", context, exten)
	}
	want := []struct {
		what string
		ok   func(step) bool
	}{
		{"the CDR userfield note", func(st step) bool {
			return strings.EqualFold(st.app, "Set") && strings.HasPrefix(st.args, "CDR(userfield)=")
		}},
		{"Answer", func(st step) bool { return strings.EqualFold(st.app, "Answer") }},
		{"the apology " + prompts.AsteriskSoundName(prompts.AppUnavailable), func(st step) bool {
			return strings.EqualFold(st.app, "Playback") && splitTop(st.args, ',')[0] == prompts.AsteriskSoundName(prompts.AppUnavailable)
		}},
		{"the recording to " + fallbackDir + "${UNIQUEID}.wav", func(st step) bool {
			return strings.EqualFold(st.app, "Record") && splitTop(st.args, ',')[0] == fallbackDir+"${UNIQUEID}.wav"
		}},
		{"Hangup", func(st step) bool { return strings.EqualFold(st.app, "Hangup") }},
	}
	// The steps must come in this order: the note is written before the
	// caller can hang up, the apology before the recording.
	var errs []error
	next := 0
	for _, w := range want {
		i := slices.IndexFunc(steps[next:], w.ok)
		if i < 0 {
			errs = append(errs, problem(errFallback, at(steps[0].file, steps[0].line), "fallback %s,%s: %s missing or out of order", context, exten, w.what))
			continue
		}
		next += i + 1
	}
	return errors.Join(errs...)
}

// checkHTTP checks that the HTTP server serves ari.url's address and path,
// on loopback only.
func checkHTTP(c *conf, ariURL string) error {
	g := c.first("general")
	if g == nil {
		return problem(errHTTP, c.name, "no [general]")
	}
	var errs []error
	if v, _ := g.get("enabled"); v != "yes" {
		errs = append(errs, problem(errHTTP, c.name, "enabled = %q: ARI needs the HTTP server", v))
	}
	bind, _ := g.get("bindaddr")
	if ip := net.ParseIP(bind); ip == nil || !ip.IsLoopback() {
		errs = append(errs, problem(errExposed, c.name, "bindaddr = %q: want 127.0.0.1, as ARI can place calls", bind))
	}
	if v, _ := g.get("tlsenable"); v == "yes" {
		addr, _ := g.get("tlsbindaddr")
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			errs = append(errs, problem(errExposed, c.name, "tlsbindaddr = %q: want a loopback address", addr))
		}
	}
	port, ok := g.get("bindport")
	if !ok {
		port = "8088" // Asterisk's default
	}
	u, err := url.Parse(ariURL)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if u.Hostname() != bind || u.Port() != port {
		errs = append(errs, problem(errHTTP, c.name, "serves %s:%s, but hotline's default ari.url is %s", bind, port, ariURL))
	}
	prefix, _ := g.get("prefix")
	if want := strings.TrimRight(u.Path, "/"); strings.TrimRight(pathJoin(prefix, "ari"), "/") != want {
		errs = append(errs, problem(errHTTP, c.name, "ARI is at %s, but hotline's default ari.url has the path %s", pathJoin(prefix, "ari"), u.Path))
	}
	return errors.Join(errs...)
}

func pathJoin(prefix, p string) string {
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		return "/" + prefix + "/" + p
	}
	return "/" + p
}

// checkARI checks that ARI is on, answers compactly, and has the user
// hotline logs in as, with a password.
func checkARI(c *conf, user string) error {
	g := c.first("general")
	if g == nil {
		return problem(errARI, c.name, "no [general]")
	}
	var errs []error
	if v, _ := g.get("enabled"); v != "yes" {
		errs = append(errs, problem(errARI, c.name, "enabled = %q", v))
	}
	if v, _ := g.get("pretty"); v != "no" {
		errs = append(errs, problem(errARI, c.name, "pretty = %q: want no, as the traffic hotline is tested against", v))
	}
	u := c.first(user)
	if u == nil {
		return errors.Join(append(errs, problem(errARI, c.name, "no [%s], the user of hotline's default ari.username", user))...)
	}
	if t, _ := u.get("type"); t != "user" {
		errs = append(errs, problem(errARI, at(u.file, u.line), "[%s] type = %q, want user", user, t))
	}
	if p, _ := u.get("password"); p == "" {
		errs = append(errs, problem(errARI, at(u.file, u.line), "[%s] has no password", user))
	}
	if v, _ := u.get("read_only"); v == "yes" {
		errs = append(errs, problem(errARI, at(u.file, u.line), "[%s] is read_only: hotline answers, plays and bridges", user))
	}
	return errors.Join(errs...)
}

// placeholder starts every password shipped here: the README tells the
// operator to replace them, and a real secret must never be committed.
const placeholder = "CHANGE_ME"

// checkSecrets checks that every password and secret is a placeholder.
func checkSecrets(set confSet) error {
	var errs []error
	for _, name := range confFiles {
		for _, s := range set[name].sections {
			for _, st := range s.settings {
				if (st.key == "password" || st.key == "secret") && !strings.HasPrefix(st.value, placeholder) {
					errs = append(errs, problem(errSecret, at(st.file, st.line), "[%s] %s is not a %s... placeholder", s.name, st.key, placeholder))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Modules hotline cannot run without, and modules a hotline must not load.
var (
	requiredModules = []string{
		"pbx_config.so", "res_http_websocket.so", "res_ari.so", "res_stasis.so", "app_stasis.so",
		"res_pjsip.so", "chan_pjsip.so", "res_rtp_asterisk.so",
		"codec_ulaw.so", "codec_alaw.so", "format_pcm.so", "format_wav.so", "res_timing_timerfd.so",
		"bridge_simple.so", "bridge_softmix.so", "app_playback.so", "app_record.so", "res_security_log.so",
	}
	loadedModules = []string{
		"res_ari_channels.so", "res_ari_bridges.so", "res_ari_playbacks.so", "res_ari_events.so",
		"res_ari_applications.so", "res_stasis_playback.so", "res_stasis_answer.so",
		"app_echo.so", "app_mixmonitor.so", "func_cdr.so", "res_musiconhold.so",
	}
	refusedModules = []string{"chan_sip.so", "chan_iax2.so", "pbx_dundi.so", "res_phoneprov.so"}
)

// checkModules checks modules.conf autoloads, requires what hotline cannot
// run without, names the rest it uses, and refuses what it must not expose.
func checkModules(c *conf) error {
	m := c.first("modules")
	if m == nil {
		return problem(errModules, c.name, "no [modules]")
	}
	values := func(keys ...string) []string {
		var out []string
		for _, k := range keys {
			for _, st := range m.all(k) {
				out = append(out, st.value)
			}
		}
		return out
	}
	required := values("require", "preload-require")
	loaded := values("load", "preload", "require", "preload-require")
	refused := values("noload")
	var errs []error
	if v, _ := m.get("autoload"); v != "yes" {
		errs = append(errs, problem(errModules, c.name, "autoload = %q: want yes", v))
	}
	for _, mod := range requiredModules {
		if !slices.Contains(required, mod) {
			errs = append(errs, problem(errModules, c.name, "%s is not required", mod))
		}
	}
	for _, mod := range loadedModules {
		if !slices.Contains(loaded, mod) {
			errs = append(errs, problem(errModules, c.name, "%s is not loaded", mod))
		}
	}
	for _, mod := range refusedModules {
		if !slices.Contains(refused, mod) {
			errs = append(errs, problem(errModules, c.name, "%s is not refused with noload", mod))
		}
	}
	for _, mod := range refused {
		if slices.Contains(loaded, mod) {
			errs = append(errs, problem(errModules, c.name, "%s is both loaded and refused", mod))
		}
	}
	return errors.Join(errs...)
}

// checkRTP checks the media port range and that media is accepted only from
// where a call's media comes from, without ICE.
func checkRTP(c *conf) error {
	g := c.first("general")
	if g == nil {
		return problem(errRTP, c.name, "no [general]")
	}
	var errs []error
	start, errStart := strconv.Atoi(valueOf(g, "rtpstart"))
	end, errEnd := strconv.Atoi(valueOf(g, "rtpend"))
	switch {
	case errStart != nil || errEnd != nil:
		errs = append(errs, problem(errRTP, c.name, "rtpstart and rtpend must be port numbers"))
	case start < 1024 || end > 65535 || start >= end:
		errs = append(errs, problem(errRTP, c.name, "rtpstart-rtpend %d-%d: want 1024 <= start < end <= 65535", start, end))
	case start%2 != 0:
		errs = append(errs, problem(errRTP, c.name, "rtpstart %d: RTP takes even ports (RFC 3550 section 11)", start))
	}
	if v := valueOf(g, "strictrtp"); v != "yes" {
		errs = append(errs, problem(errRTP, c.name, "strictrtp = %q: want yes", v))
	}
	if v := valueOf(g, "icesupport"); v != "no" {
		errs = append(errs, problem(errRTP, c.name, "icesupport = %q: want no", v))
	}
	return errors.Join(errs...)
}

func valueOf(s *section, key string) string {
	v, _ := s.get(key)
	return v
}

// checkLogger checks there is a security log for fail2ban, and messages.
func checkLogger(c *conf) error {
	files := c.first("logfiles")
	if files == nil {
		return problem(errLogger, c.name, "no [logfiles]")
	}
	levels := func(name string) []string {
		var out []string
		for l := range strings.SplitSeq(valueOf(files, name), ",") {
			out = append(out, strings.TrimSpace(l))
		}
		return out
	}
	var errs []error
	if !slices.Contains(levels("security"), "security") {
		errs = append(errs, problem(errLogger, c.name, "no security log (security => security) for fail2ban"))
	}
	if l := levels("messages"); !slices.Contains(l, "warning") || !slices.Contains(l, "error") {
		errs = append(errs, problem(errLogger, c.name, "messages does not log warnings and errors"))
	}
	return errors.Join(errs...)
}

// checkCDR checks that cdr_csv writes CDRs with their uniqueid and
// userfield: the fallback's note of a caller's message is the userfield,
// and cdr_csv declines to load without cdr.conf at all.
func checkCDR(c *conf) error {
	var errs []error
	if g := c.first("general"); g != nil && strings.EqualFold(valueOf(g, "enable"), "no") {
		errs = append(errs, problem(errCDR, c.name, "[general] enable = no"))
	}
	csv := c.first("csv")
	if csv == nil {
		return errors.Join(append(errs, problem(errCDR, c.name, "no [csv]"))...)
	}
	for _, key := range []string{"loguserfield", "loguniqueid"} {
		if v := valueOf(csv, key); v != "yes" {
			errs = append(errs, problem(errCDR, c.name, "[csv] %s = %q: want yes", key, v))
		}
	}
	return errors.Join(errs...)
}

// shipped returns the files of this directory as a map the table tests can
// change.
func shipped(t *testing.T) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	for _, name := range confFiles {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: b}
	}
	return fsys
}

func TestEveryFileParses(t *testing.T) {
	names, err := fs.Glob(os.DirFS("."), "*.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range confFiles {
		if !slices.Contains(names, name) {
			t.Errorf("%s is missing", name)
		}
	}
	for _, name := range names {
		c, err := parseConf(os.DirFS("."), name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(c.sections) == 0 {
			t.Errorf("%s has no sections", name)
		}
	}
}

func TestShippedConfiguration(t *testing.T) {
	if err := checkSet(shipped(t)); err != nil {
		t.Fatal(err)
	}
}

// TestChecksFail breaks the shipped files one way at a time and wants the
// check that guards against it to say so.
func TestChecksFail(t *testing.T) {
	cases := []struct {
		name     string
		file     string
		old, new string // old must occur exactly once; "" appends new; both "" remove the file
		want     error
	}{
		{name: "a line without =", file: "pjsip.conf", new: "\n[x]\nnot a setting\n", want: errSyntax},
		{name: "a setting before any section", file: "rtp.conf", old: "[general]\n", new: "strictrtp = yes\n[general]\n", want: errSyntax},
		{name: "an unclosed section", file: "logger.conf", old: "[logfiles]", new: "[logfiles", want: errSyntax},
		{name: "#exec", file: "ari.conf", new: "\n#exec /bin/true\n", want: errSyntax},
		{name: "#include of a missing file", file: "pjsip.conf", new: "\n#include pjsip_trunks.conf\n", want: errInclude},
		{name: "an undefined template", file: "pjsip.conf", new: "\n[1003](agent-endpont)\n", want: errTemplate},
		{name: "a template used above its definition", file: "pjsip.conf", old: "[agent-endpoint](!)", new: "[1003](agent-endpoint)\n\n[agent-endpoint](!)", want: errTemplate},
		{name: "inheriting from a section that is not a template", file: "pjsip.conf", new: "\n[1003](transport-udp)\n", want: errTemplate},
		{name: "aors names no aor", file: "pjsip.conf", old: "aors = 1002", new: "aors = 1003", want: errReference},
		{name: "auth names an aor", file: "pjsip.conf", new: "\n[1003](agent-endpoint)\nauth = carrier\naors = 1001\n", want: errReference},
		{name: "transport names an endpoint", file: "pjsip.conf", old: "transport = transport-udp", new: "transport = carrier", want: errReference},
		{name: "identify names no endpoint", file: "pjsip.conf", old: "endpoint = carrier", new: "endpoint = carier", want: errReference},
		{name: "a section without type", file: "pjsip.conf", new: "\n[orphan]\ncontact = sip:192.0.2.1\n", want: errReference},
		{name: "an endpoint context missing from the dialplan", file: "pjsip.conf", old: "context = agents", new: "context = agent", want: errReference},
		{name: "Stasis of another application", file: "extensions.conf", old: "exten => _X.,1,NoOp(Hotline call to ${EXTEN} from ${CALLERID(all)})\n same => n,Stasis(hotline)", new: "exten => _X.,1,NoOp(Hotline call to ${EXTEN} from ${CALLERID(all)})\n same => n,Stasis(hotline-test)", want: errStasisApp},
		{name: "Goto an unknown context", file: "extensions.conf", new: "\n[more]\nexten => 1,1,Goto(nowhere,s,1)\n", want: errReference},
		{name: "GotoIf's false branch to an unknown context", file: "extensions.conf", new: "\n[more]\nexten => 1,1,GotoIf($[1]?agents,600,1:nowhere,s,1)\n", want: errReference},
		{name: "Gosub to an unknown context", file: "extensions.conf", new: "\n[more]\nexten => 1,1,Gosub(sub-nowhere,s,1(arg))\n", want: errReference},
		{name: "include of an unknown context", file: "extensions.conf", new: "\n[more]\ninclude => nowhere\n", want: errReference},
		{name: "a prompt the catalog does not have", file: "extensions.conf", old: "Playback(hotline/callback_noted)", new: "Playback(hotline/call_back_noted)", want: errPrompt},
		{name: "answering before Stasis", file: "extensions.conf", old: "exten => 12345,1,NoOp(Hotline call from ${CALLERID(all)})", new: "exten => 12345,1,Answer()", want: errAnswered},
		{name: "no STASISSTATUS check", file: "extensions.conf", old: "exten => 12345,1,NoOp(Hotline call from ${CALLERID(all)})\n same => n,Stasis(hotline)\n same => n,GotoIf($[\"${STASISSTATUS}\" = \"FAILED\"]?hotline-fallback,s,1)\n", new: "exten => 12345,1,NoOp(Hotline call from ${CALLERID(all)})\n same => n,Stasis(hotline)\n", want: errFallback},
		{name: "no 12345", file: "extensions.conf", old: "exten => 12345,1,", new: "exten => 12346,1,", want: errFallback},
		{name: "a trunk extension without Stasis", file: "extensions.conf", old: "[hotline-fallback]", new: "exten => 110,1,Hangup()\n\n[hotline-fallback]", want: errFallback},
		{name: "the fallback does not play the apology", file: "extensions.conf", old: "Playback(hotline/app_unavailable)", new: "Playback(hotline/service_closed)", want: errFallback},
		{name: "the fallback does not record", file: "extensions.conf", old: " same => n,Record(", new: " same => n,NoOp(", want: errFallback},
		{name: "the fallback records elsewhere", file: "extensions.conf", old: "Record(${ASTSPOOLDIR}/hotline-fallback/${UNIQUEID}.wav", new: "Record(/tmp/${UNIQUEID}.wav", want: errFallback},
		{name: "CDRs without the userfield", file: "cdr.conf", old: "loguserfield = yes", new: "loguserfield = no", want: errCDR},
		{name: "CDRs off", file: "cdr.conf", old: "enable = yes", new: "enable = no", want: errCDR},
		{name: "no cdr.conf", file: "cdr.conf", want: errMissingFile},
		{name: "the fallback leaves no CDR note", file: "extensions.conf", old: "Set(CDR(userfield)=", new: "Set(NOTE=", want: errFallback},
		{name: "the fallback does not answer", file: "extensions.conf", old: "Answer(500)", new: "Wait(0.5)", want: errFallback},
		{name: "no fallback context", file: "extensions.conf", old: "[hotline-fallback]", new: "[hotline-fallback-old]", want: errReference},
		{name: "HTTP on every interface", file: "http.conf", old: "bindaddr = 127.0.0.1", new: "bindaddr = 0.0.0.0", want: errExposed},
		{name: "HTTPS on every interface", file: "http.conf", old: "tlsenable = no", new: "tlsenable = yes\ntlsbindaddr = 0.0.0.0:8089", want: errExposed},
		{name: "HTTP off", file: "http.conf", old: "enabled = yes", new: "enabled = no", want: errHTTP},
		{name: "HTTP on another port", file: "http.conf", old: "bindport = 8088", new: "bindport = 8089", want: errHTTP},
		{name: "HTTP under a prefix", file: "http.conf", old: "bindport = 8088", new: "bindport = 8088\nprefix = asterisk", want: errHTTP},
		{name: "ARI off", file: "ari.conf", old: "enabled = yes", new: "enabled = no", want: errARI},
		{name: "ARI pretty", file: "ari.conf", old: "pretty = no", new: "pretty = yes", want: errARI},
		{name: "no ARI user hotline", file: "ari.conf", old: "[hotline]", new: "[hotline-app]", want: errARI},
		{name: "ARI user without password", file: "ari.conf", old: "password = CHANGE_ME_ari_password\n", new: "\n", want: errARI},
		{name: "ARI user read-only", file: "ari.conf", old: "read_only = no", new: "read_only = yes", want: errARI},
		{name: "a real ARI password", file: "ari.conf", old: "password = CHANGE_ME_ari_password", new: "password = s3cret-word", want: errSecret},
		{name: "a real agent password", file: "pjsip.conf", old: "password = CHANGE_ME_agent_1002", new: "password = 1002", want: errSecret},
		{name: "no autoload", file: "modules.conf", old: "autoload = yes", new: "autoload = no", want: errModules},
		{name: "res_ari not required", file: "modules.conf", old: "require = res_ari.so\n", new: "", want: errModules},
		{name: "res_ari_channels not loaded", file: "modules.conf", old: "load = res_ari_channels.so\n", new: "", want: errModules},
		{name: "chan_sip not refused", file: "modules.conf", old: "noload = chan_sip.so\n", new: "", want: errModules},
		{name: "a module loaded and refused", file: "modules.conf", new: "\nnoload = app_echo.so\n", want: errModules},
		{name: "odd RTP start", file: "rtp.conf", old: "rtpstart = 10000", new: "rtpstart = 10001", want: errRTP},
		{name: "RTP range upside down", file: "rtp.conf", old: "rtpend = 20000", new: "rtpend = 9000", want: errRTP},
		{name: "lax RTP", file: "rtp.conf", old: "strictrtp = yes", new: "strictrtp = no", want: errRTP},
		{name: "ICE", file: "rtp.conf", old: "icesupport = no", new: "icesupport = yes", want: errRTP},
		{name: "no security log", file: "logger.conf", old: "security => security", new: "security => notice", want: errLogger},
		{name: "messages without errors", file: "logger.conf", old: "messages => notice,warning,error", new: "messages => notice", want: errLogger},
		{name: "a file missing", file: "rtp.conf", want: errMissingFile},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := shipped(t)
			text := string(fsys[tc.file].Data)
			switch {
			case tc.old == "" && tc.new == "":
				delete(fsys, tc.file)
			case tc.old == "":
				fsys[tc.file] = &fstest.MapFile{Data: []byte(text + tc.new)}
			default:
				if n := strings.Count(text, tc.old); n != 1 {
					t.Fatalf("%q occurs %d times in %s, want once", tc.old, n, tc.file)
				}
				fsys[tc.file] = &fstest.MapFile{Data: []byte(strings.Replace(text, tc.old, tc.new, 1))}
			}
			err := checkSet(fsys)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
}
