package app_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/baresiptest"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/tlstest"
	"github.com/hotline12345/hotline/prompts"
)

// An agent's phone, a real baresip, registers over TLS (sip.tls_listen,
// serving HTTP's certificate) and takes a citizen's call over that
// connection: its binding is kept as TLS, and the INVITE to it can only
// have gone over TLS, since the phone takes nothing else at its
// connection's port.
func TestAgentPhoneOverTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	files := ca.Issue("127.0.0.1").Write(t, dir)
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "a1", Name: "Wang Fang", SIPUser: "agent1", Password: "agent1-pass", Categories: allCategories}}
		c.ACD.WrapUp = 0
		c.HTTP.TLSCert, c.HTTP.TLSKey = files.Cert, files.Key
		c.SIP.TLSListen = "127.0.0.1:0"
	})
	if !h.SIPTLS.IsValid() {
		t.Fatal("hotline says no address for SIP over TLS")
	}
	store := acd.NewStore(h.Client, acd.StoreOptions{})
	phone := baresiptest.Start(t, baresiptest.Options{
		User: "agent1", Password: "agent1-pass", Registrar: h.SIPTLS.String(), Transport: "tls",
		CAFile: ca.WriteCAFile(dir), Tone: 440, IP: "127.0.0.2",
	})
	agentState(t, store, "a1", acd.Available)
	if tr := bindingTransports(t, h, "agent1"); !slices.Equal(tr, []string{"tls"}) {
		t.Fatalf("agent1's bindings are over %v, want tls alone", tr)
	}

	const who = "13800000091"
	done := h.Call(t.Context(), t, who, caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "3"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
		{On: prompts.Rating, Press: "1"},
	})
	phone.Await("CALL_ESTABLISHED")
	agentState(t, store, "a1", acd.Talking)
	phone.Command("hangup", "")
	<-done
	if rec := h.Records.Final(t, who); rec.AgentID != "a1" || rec.AgentAnsweredAt == nil {
		t.Fatalf("record: agent %q answered %v, want a1's phone to have answered", rec.AgentID, rec.AgentAnsweredAt)
	}
}

// bindingTransports are the transports of user's bindings, as the
// registrar keeps them in Redis.
func bindingTransports(t *testing.T, h *hotlinetest.Hotline, user string) []string {
	t.Helper()
	keys, err := h.Client.Keys(t.Context(), "*aor:"+user).Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("the registrar's key of %s: %v %v", user, keys, err)
	}
	all, err := h.Client.HGetAll(t.Context(), keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range all {
		var b struct{ Transport string }
		if json.Unmarshal([]byte(v), &b) == nil && b.Transport != "" {
			out = append(out, b.Transport)
		}
	}
	return out
}
