package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/web"
)

// visitCalls places return visits' calls the agent-first way: the
// agent's phone rings, then the citizen's through a trunk, and the two
// are bridged. A citizen not reached is an attempt recorded at once
// (busy, no answer, unreachable), by the agent; an agent whose phone did
// not answer records nothing. While the call is up the agent is paused
// for the inbound queue, and resumed after when it was available before.
type visitCalls struct {
	connect *ivr.AgentFirst
	agents  *acd.Store
	dist    *acd.Distributor
	visits  *callback.Store
	log     zerolog.Logger

	mu sync.Mutex
	// calling are the agents with a visit's call under way: one each.
	calling map[string]bool
}

func newVisitCalls(connect *ivr.AgentFirst, agents *acd.Store, dist *acd.Distributor, visits *callback.Store, log zerolog.Logger) *visitCalls {
	return &visitCalls{connect: connect, agents: agents, dist: dist, visits: visits, log: log, calling: map[string]bool{}}
}

// pauseReason is the pause of an agent on a return visit's call.
const pauseReason = "return-visit"

// CallVisit implements web.VisitCaller.
func (vc *visitCalls) CallVisit(ctx context.Context, agentID string, v callback.Visit, number string) (web.VisitCallReply, error) {
	ag, err := vc.agents.Agent(ctx, agentID)
	if err != nil {
		return web.VisitCallReply{}, err
	}
	vc.mu.Lock()
	if vc.calling[agentID] {
		vc.mu.Unlock()
		return web.VisitCallReply{}, fmt.Errorf("%w: agent %s is on a return visit's call already", acd.ErrConflict, agentID)
	}
	vc.calling[agentID] = true
	vc.mu.Unlock()
	release := func() {
		vc.mu.Lock()
		delete(vc.calling, agentID)
		vc.mu.Unlock()
	}
	paused := false
	if st, err := vc.dist.Pause(ctx, agentID, pauseReason); err == nil && st == acd.Paused {
		paused = true
	}
	resume := func() {
		if paused {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := vc.dist.Resume(rctx, agentID); err != nil {
				vc.log.Warn().Err(err).Str("agent", agentID).Msg("return visit: resuming the agent after the call")
			}
		}
	}
	conv, err := vc.connect.Connect(ctx, ivr.Agent{AgentID: agentID, SIPUser: ag.SIPUser}, ivr.Number{Number: number})
	if err != nil {
		release()
		resume()
		var ce *ivr.ConnectError
		reply := web.VisitCallReply{State: web.VisitCallFailed, Reason: err.Error()}
		if errors.As(err, &ce) {
			reply.Leg = string(ce.Leg)
		}
		if reply.Leg != string(ivr.CitizenLeg) {
			return reply, nil
		}
		outcome, ok := outcomeOf(err)
		if !ok {
			return reply, nil
		}
		reply.Outcome = outcome
		got, aerr := vc.visits.Attempted(ctx, v.ID, agentID, callback.Attempt{Outcome: outcome, Note: "dialled by hotline: " + ce.Err.Error()}, "")
		if aerr != nil {
			return reply, fmt.Errorf("the citizen was not reached (%s), and the attempt was not recorded: %w", outcome, aerr)
		}
		reply.Visit = &got
		return reply, nil
	}
	vc.log.Info().Str("visit", v.ID).Str("agent", agentID).Str("call", conv.Citizen.ID()).Msg("return visit: agent and citizen connected")
	go func() {
		<-conv.Done()
		release()
		resume()
		end, err := conv.End()
		vc.log.Info().Str("visit", v.ID).Str("agent", agentID).Str("hung_up", string(end)).AnErr("error", err).Msg("return visit: call ended")
	}()
	return web.VisitCallReply{State: web.VisitCallConnected, CallID: conv.Citizen.ID(), AgentCallID: conv.Agent.ID()}, nil
}
