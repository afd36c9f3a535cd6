package grafana_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/synthetic"
)

const (
	dashboardFile = "hotline.json"
	// The recording rules of deploy/prometheus, which a query may read.
	rulesFile = "../prometheus/hotline-rules.yml"
)

// wantDatasource is what every query names: the dashboard's data source
// variable, so that the dashboard imports into any Grafana.
var wantDatasource = datasource{Type: "prometheus", UID: "${datasource}"}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func (d datasource) String() string { return fmt.Sprintf("%s %q", d.Type, d.UID) }

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         *int        `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Collapsed  bool        `json:"collapsed"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	// Panels are a collapsed row's.
	Panels []panel `json:"panels"`
}

func (p panel) String() string {
	if p.ID == nil {
		return fmt.Sprintf("panel %q", p.Title)
	}
	return fmt.Sprintf("panel %d %q", *p.ID, p.Title)
}

type variable struct {
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Multi      bool        `json:"multi"`
	IncludeAll bool        `json:"includeAll"`
	Datasource *datasource `json:"datasource"`
	Definition string      `json:"definition"`
	// Query is a string, or an object holding the query in "query".
	Query json.RawMessage `json:"query"`
}

// query is the variable's query, whichever way it is written.
func (v variable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &q)
	return q.Query
}

// load reads the dashboard, and its top-level fields raw.
func load(t *testing.T) (dashboard, map[string]json.RawMessage) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s is not JSON: %v", dashboardFile, err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d, raw
}

// allPanels lists the panels, a collapsed row's after the row.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// The dashboard is Grafana's JSON model with what importing it needs: its
// uid and title, no id of its own, the data source and instance variables;
// every panel has an id of its own and a title, and every panel that
// queries names the data source variable, never one Grafana's data source.
func TestDashboardShape(t *testing.T) {
	d, raw := load(t)
	for _, k := range []string{"uid", "title", "panels", "templating", "schemaVersion", "id"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("%s has no %q", dashboardFile, k)
		}
	}
	if d.UID != "hotline" || d.Title != "hotline" {
		t.Errorf("uid %q, title %q: want hotline and hotline", d.UID, d.Title)
	}
	// Grafana numbers a dashboard it imports; a number from elsewhere
	// would overwrite another dashboard.
	if id := string(raw["id"]); id != "null" {
		t.Errorf(`"id" is %s, want null`, id)
	}

	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || v.query() != "prometheus" {
		t.Errorf("variable datasource: type %q, query %q; want a datasource variable of prometheus", v.Type, v.query())
	}
	if v := vars["instance"]; v.Type != "query" || !v.Multi || !v.IncludeAll {
		t.Errorf("variable instance: type %q, multi %v, include all %v; want a query, multi, with all", v.Type, v.Multi, v.IncludeAll)
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && (v.Datasource == nil || *v.Datasource != wantDatasource) {
			t.Errorf("variable %s: data source %v, want %v", v.Name, v.Datasource, wantDatasource)
		}
	}

	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]panel{}
	for _, p := range allPanels(d.Panels) {
		switch {
		case p.ID == nil || *p.ID <= 0:
			t.Errorf("%s has no id", p)
		case ids[*p.ID].ID != nil:
			t.Errorf("%s has the id of %s", p, ids[*p.ID])
		default:
			ids[*p.ID] = p
		}
		if strings.TrimSpace(p.Title) == "" {
			t.Errorf("%s has no title", p)
		}
		switch p.Type {
		case "row":
			// An open row's panels follow it; Grafana ignores any it holds.
			if !p.Collapsed && len(p.Panels) > 0 {
				t.Errorf("%s is open and holds %d panels", p, len(p.Panels))
			}
			continue
		case "text":
			if len(p.Targets) > 0 {
				t.Errorf("%s is text with queries", p)
			}
			continue
		}
		if len(p.Panels) > 0 {
			t.Errorf("%s, a %s, holds panels", p, p.Type)
		}
		if p.Datasource == nil || *p.Datasource != wantDatasource {
			t.Errorf("%s: data source %v, want %v", p, p.Datasource, wantDatasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s has no query", p)
		}
		for _, q := range p.Targets {
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("%s: query %s has no expr", p, q.RefID)
			}
			if q.Datasource == nil || *q.Datasource != wantDatasource {
				t.Errorf("%s: query %s: data source %v, want %v", p, q.RefID, q.Datasource, wantDatasource)
			}
		}
	}

	// Nowhere a data source of one Grafana: every "datasource" object
	// in the file is the variable.
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	eachDatasource(doc, "", func(path string, v any) {
		m, _ := v.(map[string]any)
		if m["type"] != wantDatasource.Type || m["uid"] != wantDatasource.UID || len(m) != 2 {
			t.Errorf("%s is %v, want %v", path, v, wantDatasource)
		}
	})
}

// eachDatasource calls f with every value of a "datasource" key in v.
func eachDatasource(v any, path string, f func(path string, v any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == "datasource" {
				f(path+"."+k, e)
				continue
			}
			eachDatasource(e, path+"."+k, f)
		}
	case []any:
		for i, e := range v {
			eachDatasource(e, fmt.Sprintf("%s[%d]", path, i), f)
		}
	}
}

// query is one PromQL query of the dashboard and where it is.
type query struct {
	where string // `panel 3 "Calls in progress" query A`
	expr  string
}

// queries lists the panels' queries and the variables' (these are
// Grafana's label_values(...), not PromQL).
func queries(d dashboard) (promql, variables []query) {
	for _, p := range allPanels(d.Panels) {
		for _, q := range p.Targets {
			promql = append(promql, query{fmt.Sprintf("%s query %s", p, q.RefID), q.Expr})
		}
	}
	for _, v := range d.Templating.List {
		for _, e := range []string{v.query(), v.Definition} {
			if v.Type == "query" && e != "" {
				variables = append(variables, query{"variable " + v.Name, e})
			}
		}
	}
	return promql, variables
}

var (
	// stringLiteral is a PromQL string: label values and label_replace's
	// arguments are not metrics.
	stringLiteral = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	identifier    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// metricNames are the hotline series and recording rules expr reads:
// hotline_… and, with colons, rules such as
// scope_window:hotline_calls_served:max and hotline:complaint_limit_per_10000:min.
func metricNames(expr string) []string {
	var out []string
	for _, w := range identifier.FindAllString(stringLiteral.ReplaceAllString(expr, `""`), -1) {
		if strings.HasPrefix(w, "hotline_") || strings.Contains(w, ":") && strings.Contains(w, "hotline") {
			out = append(out, w)
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`max by (window) (hotline_complaint_rate_per_10000{scope="hotline"})`:                                                      {"hotline_complaint_rate_per_10000"},
		`histogram_quantile(0.99, sum by (le) (rate(hotline_queue_wait_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`: {"hotline_queue_wait_seconds_bucket"},
		`label_replace(x{scope=~"agent:hotline_x"}, "agent", "$1", "scope", "agent:(.+)")`:                                         nil,
		`scope_window:hotline_calls_served:max / on () hotline:complaint_limit_per_10000:min`:                                      {"scope_window:hotline_calls_served:max", "hotline:complaint_limit_per_10000:min"},
		`label_values(hotline_redis_up, instance)`:                                                                                 {"hotline_redis_up"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %q, want %q", expr, got, want)
		}
	}
}

// Every hotline metric a query reads is a series a running hotline
// exports (a histogram's _bucket, _sum and _count, a counter by its name
// with _total), or `hotline probe` does, or a recording rule of
// deploy/prometheus; and every bucket a query picks by its le is one the
// histogram has. A metric renamed or misspelt, or a bound that is not a
// bucket's, leaves a panel empty, which nothing else would notice.
func TestDashboardReadsExportedMetrics(t *testing.T) {
	d, _ := load(t)
	promql, variables := queries(d)
	readBy := map[string][]string{}
	for _, q := range append(promql, variables...) {
		for _, name := range metricNames(q.expr) {
			readBy[name] = append(readBy[name], q.where)
		}
	}
	if len(readBy) == 0 {
		t.Fatal("the dashboard reads no hotline metric")
	}
	rules := recordingRules(t)
	exp := exportedSeries(t)
	for _, name := range sortedKeys(readBy) {
		where := strings.Join(slices.Compact(readBy[name]), "; ")
		switch {
		case strings.Contains(name, ":"):
			if !rules[name] {
				t.Errorf("%s, read by %s, is not a recording rule of %s", name, where, rulesFile)
			}
		case !exp.series[name]:
			t.Errorf("%s, read by %s, is not a series hotline exports", name, where)
		}
	}
	for _, q := range promql {
		for _, b := range bucketBounds(q.expr) {
			le, err := strconv.ParseFloat(b.le, 64)
			if err != nil {
				t.Errorf("%s: %s{le=%q}: %v", q.where, b.series, b.le, err)
				continue
			}
			if bounds, ok := exp.bounds[b.series]; ok && !math.IsInf(le, 1) && !slices.Contains(bounds, le) {
				t.Errorf("%s: %s has no bucket le=%q; its bounds are %v", q.where, b.series, b.le, bounds)
			}
		}
	}
}

// bucketBound is a bucket a query picks by its bound: the le of a
// histogram's _bucket series.
type bucketBound struct{ series, le string }

var (
	bucketSelector = regexp.MustCompile(`\b(hotline_[a-zA-Z0-9_]*_bucket)\s*\{([^}]*)\}`)
	leMatcher      = regexp.MustCompile(`\ble\s*=\s*"([^"]*)"`)
)

// bucketBounds are the buckets expr picks by an le="..." matcher.
func bucketBounds(expr string) []bucketBound {
	var out []bucketBound
	for _, m := range bucketSelector.FindAllStringSubmatch(expr, -1) {
		for _, le := range leMatcher.FindAllStringSubmatch(m[2], -1) {
			out = append(out, bucketBound{m[1], le[1]})
		}
	}
	return out
}

func TestBucketBounds(t *testing.T) {
	for expr, want := range map[string][]bucketBound{
		`sum by (trunk) (rate(hotline_call_mos_bucket{le="3.6", instance=~"$instance"}[15m])) / sum by (trunk) (rate(hotline_call_mos_count[15m]))`: {{"hotline_call_mos_bucket", "3.6"}},
		`histogram_quantile(0.9, sum by (le) (rate(hotline_queue_wait_seconds_bucket{outcome="answered"}[5m])))`:                                    nil,
		`hotline_queue_wait_seconds_bucket{le=~"15|\\+Inf"} - hotline_x_bucket{le!="1"}`:                                                            nil,
	} {
		if got := bucketBounds(expr); !slices.Equal(got, want) {
			t.Errorf("bucketBounds(%s) = %q, want %q", expr, got, want)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// recordingRules are the names the rules of deploy/prometheus record.
func recordingRules(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	out := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out[r.Record] = true
			}
		}
	}
	return out
}

// exported is what the scraped /metrics hold: the series names, and the
// bucket bounds of each histogram by the name of its _bucket series.
type exported struct {
	series map[string]bool
	bounds map[string][]float64
}

// exportedSeries runs two nodes of a hotline on one Redis, the embedded
// SIP backend with a trunk to a carrier that answers its OPTIONS and
// REGISTER, and the Asterisk one (against an ARI that answers 404, so it
// exports its connection's metrics and keeps reconnecting), makes the
// few events after which the rest of the families appear, and answers
// what both nodes' /metrics hold, and what `hotline probe`'s does: the
// probe is a process of its own, so its families are served here from a
// registry of them as the probe builds it.
func exportedSeries(t *testing.T) exported {
	t.Helper()
	ari := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(ari.Close)
	probeReg := prometheus.NewRegistry()
	synthetic.NewMetrics(probeReg)
	probe := httptest.NewServer(promhttp.HandlerFor(probeReg, promhttp.HandlerOpts{}))
	t.Cleanup(probe.Close)
	// The trunk metrics are the configured trunks'; the round trip needs
	// an answered OPTIONS, the registration a trunk with register: true.
	// The carrier outlives the node, which unregisters as it stops.
	carrier := startCarrier(t)
	sipNode := hotlinetest.Start(t, func(c *config.Config) {
		c.Node = "sip-node"
		c.Bans.MaxFailures = 1
		c.Evaluation.CheckInterval = config.Duration(time.Second)
		c.Trunks = []config.Trunk{{
			Name: "carrier-a", Host: carrier.Addr().String(), Port: int(carrier.Port()), Transport: "udp",
			Username: "hotline-a", Password: "s3cret", Register: true, RegisterExpiry: config.Duration(time.Hour),
			Channels: 30, Endpoint: "carrier-a",
			Probe: config.TrunkProbe{
				Interval: config.Duration(time.Second), Timeout: config.Duration(time.Second),
				DownAfter: 3, UpAfter: 2,
			},
		}}
	})
	astNode := hotlinetest.StartOn(t, sipNode.Redis.URL(), sipNode.Client, func(c *config.Config) {
		c.Node = "asterisk-node"
		c.Backend = "asterisk"
		c.ARI.URL = ari.URL + "/ari"
		c.ARI.Password = "unused"
	})
	ctx := t.Context()

	// hotline_auth_failures_total{service} and hotline_bans_total{service,kind}
	// have a series only once a failure, and a ban, is counted: one
	// unknown token, with a ban after one failure, makes both.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sipNode.API()+"/api/v1/calls", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer not-a-token")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an unknown token: %s, want 401", res.Status)
	}
	// hotline_answer_rate_15s is absent until a call's wait has ended
	// today: a call turned away (no agent registered) ends one.
	loc := sipNode.Config.Location()
	if err := acd.NewStore(sipNode.Client, acd.StoreOptions{Location: loc}).TurnedAway(ctx, "dashboard-turned-away", appeal.General); err != nil {
		t.Fatal(err)
	}
	// hotline_complaint_rate_per_10000 is absent for a window with no call
	// served: one call served, seen at the complaint line's next look.
	if err := evaluation.NewStore(sipNode.Client, evaluation.StoreOptions{Location: loc}).Served(ctx,
		evaluation.ServedCall{CallID: "dashboard-served", AgentID: "a1", Category: appeal.General}); err != nil {
		t.Fatal(err)
	}

	afterEvents := []string{"hotline_auth_failures_total", "hotline_bans_total", "hotline_answer_rate_15s", "hotline_complaint_rate_per_10000", "hotline_ari_connected",
		"hotline_trunk_options_rtt_seconds"}
	deadline := time.Now().Add(20 * time.Second)
	for {
		exp := exported{series: map[string]bool{}, bounds: map[string][]float64{}}
		for _, url := range []string{sipNode.API() + "/metrics", astNode.API() + "/metrics", probe.URL + "/metrics"} {
			scrape(t, url, exp)
		}
		missing := slices.DeleteFunc(slices.Clone(afterEvents), func(n string) bool { return exp.series[n] })
		if len(missing) == 0 {
			return exp
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics still has no %s after the events that make them", strings.Join(missing, ", "))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startCarrier plays a carrier on a free loopback UDP port: it answers
// every OPTIONS and REGISTER with 200, granting a registration an hour.
func startCarrier(t *testing.T) netip.AddrPort {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("carrier"),
		sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
	)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		res.AppendHeader(sip.NewHeader("Expires", "3600"))
		_ = tx.Respond(res)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.ServeUDP(pc)
	}()
	t.Cleanup(func() {
		ua.Close()
		pc.Close()
		<-served
	})
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// scrape adds what url's metrics hold to exp: a family's name, or for a
// histogram or summary the names of its series, and a histogram's
// bucket bounds.
func scrape(t *testing.T, url string, exp exported) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	series := exp.series
	for name, f := range families {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			series[name+"_bucket"], series[name+"_sum"], series[name+"_count"] = true, true, true
			for _, m := range f.GetMetric() {
				for _, b := range m.GetHistogram().GetBucket() {
					if !slices.Contains(exp.bounds[name+"_bucket"], b.GetUpperBound()) {
						exp.bounds[name+"_bucket"] = append(exp.bounds[name+"_bucket"], b.GetUpperBound())
					}
				}
			}
		case dto.MetricType_SUMMARY:
			series[name], series[name+"_sum"], series[name+"_count"] = true, true, true
		default:
			series[name] = true
		}
	}
}

// grafanaVariables stands in for the variables Grafana fills in before a
// query reaches Prometheus.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__range", "6h",
	"$__interval", "1m",
	"$instance", ".*",
)

// Every query parses in Prometheus's own promtool: each, its variables
// filled in, is checked as a recording rule named after its panel.
// test.sh installs promtool (Debian package prometheus): without it the
// test fails.
func TestDashboardQueriesParse(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus, which test.sh installs): %v", err)
	}
	d, _ := load(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range allPanels(d.Panels) {
		for _, q := range p.Targets {
			name := fmt.Sprintf("dashboard:panel_%d:%s", *p.ID, q.RefID)
			rules = append(rules, rule{Record: name, Expr: grafanaVariables.Replace(q.Expr)})
		}
	}
	if len(rules) == 0 {
		t.Fatal("no queries")
	}
	type group struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	}
	b, err := yaml.Marshal(map[string][]group{"groups": {{Name: "dashboard", Rules: rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), promtool, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s\nthe rules are the dashboard's queries, dashboard:panel_<id>:<query>", err, out)
	}
}
