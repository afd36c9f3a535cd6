package asterisk_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/internal/asterisktest"
	"github.com/hotline12345/hotline/internal/baresiptest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
)

// phoneEnd is a baresip softphone as a far end of the agent-first
// scenarios on a real Asterisk: an agent's phone registered to its PJSIP
// endpoint, or a citizen's phone behind a trunk endpoint of its own.
// Answers answers at once; NoAnswer rings until the call is withdrawn;
// Busy turns the call down, which baresip does with 486 Busy Here.
type phoneEnd struct {
	p    *baresiptest.Phone
	far  ivrtest.Far
	tone int
}

var _ ivrtest.Talker = (*phoneEnd)(nil)

func (e *phoneEnd) Rung(t *testing.T) string {
	t.Helper()
	// A phone that answers by itself reports the call once established.
	if e.far == ivrtest.Answers {
		ev := e.p.Await("CALL_ESTABLISHED")
		return callerOf(ev)
	}
	ev := e.p.Await("CALL_INCOMING")
	if e.far == ivrtest.Busy {
		e.p.Command("hangup", "")
	}
	return callerOf(ev)
}

// callerOf is the caller id of the call an event is about: the peer's URI
// is the INVITE's From, sip:<caller id>@host.
func callerOf(ev baresiptest.Event) string {
	user, _, _ := strings.Cut(strings.TrimPrefix(ev.Peer, "sip:"), "@")
	return user
}

func (e *phoneEnd) HangUp(*testing.T) { e.p.Command("hangup", "") }

func (e *phoneEnd) Ended(t *testing.T) {
	t.Helper()
	e.p.Await("CALL_CLOSED")
}

// Hears waits until most of what the phone heard in the last half second
// is other's tone.
func (e *phoneEnd) Hears(t *testing.T, other ivrtest.FarEnd) {
	t.Helper()
	hz := float64(other.(*phoneEnd).tone)
	deadline := time.Now().Add(15 * time.Second)
	for {
		pcm := e.p.HeardPCM()
		if len(pcm) > 4000 && baresiptest.ToneLevel(pcm[len(pcm)-4000:], hz) > 0.5 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the phone %s does not hear %v Hz", e.p.User(), hz)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAgentFirstConformanceOnAsterisk runs the agent-first scenarios on a
// real Asterisk 22 with hotline's configuration: each agent is a baresip
// registered to an agent's endpoint (whose caller id is "Agent <user>"),
// each citizen a baresip behind a trunk endpoint of its own, every phone
// on a loopback address of its own.
func TestAgentFirstConformanceOnAsterisk(t *testing.T) {
	t.Parallel()
	// The phones each scenario takes, by how they behave.
	agentFars := []ivrtest.Far{ivrtest.Answers, ivrtest.Answers, ivrtest.Answers, ivrtest.Answers, ivrtest.Answers, ivrtest.NoAnswer}
	citizenFars := []ivrtest.Far{ivrtest.Answers, ivrtest.Answers, ivrtest.Answers, ivrtest.Busy, ivrtest.NoAnswer}
	mode := func(far ivrtest.Far) string {
		if far == ivrtest.Answers {
			return "auto"
		}
		return "manual"
	}
	ip := func(i int) string { return fmt.Sprintf("127.0.0.%d", 30+i) }

	// Each citizen's trunk has a phone of its own, at an address fixed
	// beforehand; the phone starts with the scenario that takes it, as
	// the user the scenario dials (baresip answers only its own user).
	type trunkPlace struct {
		name string
		addr string // host:port
		ip   string
		port int
	}
	citizens := map[ivrtest.Far]chan trunkPlace{}
	var conf strings.Builder
	for i, far := range citizenFars {
		tp := trunkPlace{name: fmt.Sprintf("visit-%d", i), ip: ip(i), port: baresiptest.FreeSIPPort(t, ip(i))}
		tp.addr = fmt.Sprintf("%s:%d", tp.ip, tp.port)
		fmt.Fprintf(&conf, "\n[%[1]s](trunk-endpoint)\naors = %[1]s\n\n[%[1]s]\ntype = aor\ncontact = sip:%[2]s\n\n[%[1]s](trunk-identify)\nendpoint = %[1]s\nmatch = %[3]s\n", tp.name, tp.addr, tp.ip)
		if citizens[far] == nil {
			citizens[far] = make(chan trunkPlace, len(citizenFars))
		}
		citizens[far] <- tp
	}
	var accounts []asterisktest.Agent
	agents := map[ivrtest.Far]chan int{}
	for i, far := range agentFars {
		accounts = append(accounts, asterisktest.Agent{User: fmt.Sprint(6001 + i), Password: fmt.Sprint("password-", i)})
		if agents[far] == nil {
			agents[far] = make(chan int, len(agentFars))
		}
		agents[far] <- i
	}
	a := asterisktest.Start(t, asterisktest.Options{Agents: accounts, Append: map[string]string{"pjsip.conf": conf.String()}})
	b := runOn(t, a)
	take := func(t *testing.T, pool <-chan int) int {
		select {
		case i := <-pool:
			return i
		default:
			t.Fatal("no phone left that behaves so")
			return 0
		}
	}
	ivrtest.RunAgentFirst(t, ivrtest.AgentFirstHarness{
		Connector: b,
		Agent: func(t *testing.T, far ivrtest.Far) (ivr.Agent, ivrtest.FarEnd) {
			i := take(t, agents[far])
			p := baresiptest.Start(t, baresiptest.Options{
				User: accounts[i].User, Password: accounts[i].Password, Registrar: a.SIP.String(),
				Tone: 440, AnswerMode: mode(far), IP: ip(len(citizenFars) + i),
			})
			a.AwaitEndpoint(t, accounts[i].User, "online")
			return ivr.Agent{AgentID: "a" + p.User(), SIPUser: p.User()}, &phoneEnd{p: p, far: far, tone: 440}
		},
		Citizen: func(t *testing.T, number string, far ivrtest.Far) (ivr.TrunkRoute, ivrtest.FarEnd) {
			var tp trunkPlace
			select {
			case tp = <-citizens[far]:
			default:
				t.Fatalf("no trunk left whose phone behaves as %q", far)
			}
			p := baresiptest.Start(t, baresiptest.Options{User: number, Tone: 1000, AnswerMode: mode(far), IP: tp.ip, Port: tp.port})
			return ivr.TrunkRoute{Name: tp.name, Endpoint: tp.name, CallerID: "12345"}, &phoneEnd{p: p, far: far, tone: 1000}
		},
	})
	t.Cleanup(func() { noLeftoversIn(t, a) })
}
