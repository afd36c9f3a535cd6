package ivr_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
)

// scriptedDialer answers the agent with agent, and the citizen as
// citizen says.
type scriptedDialer struct {
	agent   *ivrtest.FakeCall
	citizen func(ctx context.Context) (ivr.Call, error)
}

func (d scriptedDialer) Dial(ctx context.Context, to ivr.Destination, _ ivr.DialOptions) (ivr.Call, error) {
	if to.Kind() == "agent" {
		return d.agent, nil
	}
	return d.citizen(ctx)
}

func newFake(t *testing.T) *ivrtest.FakeCall {
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	return ivrtest.NewFakeCall(catalog, ivrtest.NewCallerID(), 50)
}

// The citizen answers just as the agent hangs up: the citizen is hung up
// at once, and the failure is the agent's leg.
func TestAgentFirstCitizenAnswersAsTheAgentLeaves(t *testing.T) {
	agent, citizen := newFake(t), newFake(t)
	d := scriptedDialer{agent: agent, citizen: func(context.Context) (ivr.Call, error) {
		_ = agent.Hangup(context.Background()) // the agent's phone hangs up
		return citizen, nil
	}}
	af := &ivr.AgentFirst{Dialer: d, Bridger: ivrtest.FakeDialer{}}
	conv, err := af.Connect(context.Background(), ivr.Agent{AgentID: "a1", SIPUser: "1001"}, ivr.Number{Number: "13900000001"})
	var ce *ivr.ConnectError
	if conv != nil || !errors.As(err, &ce) || ce.Leg != ivr.AgentLeg || !errors.Is(err, ivr.ErrAgentLeft) {
		t.Fatalf("Connect: %v, %v; want the agent gone", conv, err)
	}
	if !errors.Is(citizen.Err(), ivr.ErrHangup) {
		t.Errorf("the citizen's leg: %v, want hung up", citizen.Err())
	}
}

// The caller gives up while the citizen rings: the citizen's leg is
// withdrawn with the caller's context, the agent's is hung up, and the
// error names the citizen's leg.
func TestAgentFirstGivenUpWhileTheCitizenRings(t *testing.T) {
	agent := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	d := scriptedDialer{agent: agent, citizen: func(ctx context.Context) (ivr.Call, error) {
		cancel()
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}}
	af := &ivr.AgentFirst{Dialer: d, Bridger: ivrtest.FakeDialer{}}
	_, err := af.Connect(ctx, ivr.Agent{AgentID: "a1", SIPUser: "1001"}, ivr.Number{Number: "13900000001"})
	var ce *ivr.ConnectError
	if !errors.As(err, &ce) || ce.Leg != ivr.CitizenLeg || !errors.Is(err, context.Canceled) {
		t.Fatalf("Connect: %v; want the citizen's leg cancelled", err)
	}
	if !errors.Is(agent.Err(), ivr.ErrHangup) {
		t.Errorf("the agent's leg: %v, want hung up", agent.Err())
	}
}
