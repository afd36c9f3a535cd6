package agentua

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// call is an answered offer, found by its dialog id when the ACK or a BYE
// comes.
type call struct {
	dlg *sipgo.DialogServerSession
}

// onInvite takes an offer to one of the phones: it rings (if asked to),
// answers, talks for TalkTime and hangs up, all on the handler's
// goroutine, which sipgo starts per request.
func (f *Fleet) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	f.offers.Add(1)
	f.mu.Lock()
	if f.stopping {
		f.mu.Unlock()
		respond(tx, req, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	f.calls.Add(1)
	f.mu.Unlock()
	defer f.calls.Done()

	// The Request-URI is the Contact the agent registered (RFC 3261
	// §10.2.1), which carries the agent's user.
	a := f.agents[req.Recipient.User]
	if a == nil {
		f.refused.Add(1)
		respond(tx, req, sip.StatusNotFound, "Not Found")
		return
	}
	o, err := parseOffer(req.Body())
	if err != nil {
		f.refused.Add(1)
		f.log.Warn().Err(err).Str("agent", a.User).Msg("agentua: offer refused")
		respond(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return
	}
	// One call per phone: a second offer while talking is busy (§21.4.24).
	if !a.busy.CompareAndSwap(false, true) {
		f.busy.Add(1)
		respond(tx, req, sip.StatusBusyHere, "Busy Here")
		return
	}
	// The phone is free again once it hangs up, before its BYE is
	// answered: hotline may offer the next call as soon as the BYE
	// arrives.
	free := sync.OnceFunc(func() { a.busy.Store(false) })
	defer free()

	conv := Conversation{Agent: a.User, Citizen: citizen(req), SIPCallID: req.CallID().Value(), Offered: time.Now()}
	dlg, err := a.dialog.ReadInvite(req, tx)
	if err != nil {
		f.log.Debug().Err(err).Str("agent", a.User).Msg("agentua: offer gone before it was read")
		return
	}
	if !f.ring(dlg) {
		return
	}
	body, err := answerSDP(o, f.media.addr, rand.Uint64()>>1)
	if err != nil {
		f.refused.Add(1)
		_ = dlg.Respond(sip.StatusInternalServerError, "Server Internal Error", nil)
		return
	}
	s := f.media.add(o.remote)
	// Media stops when the phone hangs up (RFC 3261 §15) or the call
	// ends otherwise.
	hangUp := sync.OnceFunc(func() {
		f.media.remove(s)
		free()
	})
	f.mu.Lock()
	f.dialogs[dlg.ID] = &call{dlg: dlg}
	f.mu.Unlock()

	conv.Answered = time.Now()
	f.answered.Add(1)
	// RespondSDP retransmits the 200 until the ACK comes (§13.3.1.4).
	if err := dlg.RespondSDP(body); err != nil {
		conv.Err = fmt.Errorf("answer: %w", err)
		conv.EndedBy = HotlineSide
	} else {
		conv.Confirmed = time.Now()
		f.talk(a, dlg, &conv, hangUp)
	}
	conv.Ended = time.Now()
	hangUp()
	conv.RTPSent, conv.RTPReceived = s.sent.Load(), s.received.Load()
	f.mu.Lock()
	delete(f.dialogs, dlg.ID)
	f.conversations = append(f.conversations, conv)
	f.mu.Unlock()
	if f.opts.OnConversation != nil {
		f.opts.OnConversation(conv)
	}
}

// ring sends 180 Ringing and waits RingTime; it reports false when the
// offer was withdrawn meanwhile or the fleet is stopping.
func (f *Fleet) ring(dlg *sipgo.DialogServerSession) bool {
	if f.opts.RingTime <= 0 {
		return true
	}
	if err := dlg.Respond(sip.StatusRinging, "Ringing", nil); err != nil {
		return false
	}
	t := time.NewTimer(f.opts.RingTime)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-dlg.Context().Done():
		f.cancelled.Add(1)
		return false
	case <-f.ctx.Done():
		_ = dlg.Respond(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", nil)
		return false
	}
}

// talk holds the conversation until TalkTime passes (the agent hangs up),
// the far end hangs up, or the fleet stops (the agent hangs up too).
// hangUp stops the phone's media and frees it for the next call.
func (f *Fleet) talk(a *agent, dlg *sipgo.DialogServerSession, conv *Conversation, hangUp func()) {
	var talkTime <-chan time.Time
	if f.opts.TalkTime > 0 {
		t := time.NewTimer(f.opts.TalkTime)
		defer t.Stop()
		talkTime = t.C
	}
	select {
	case <-talkTime:
	case <-f.ctx.Done():
	case <-dlg.Context().Done():
		conv.EndedBy = HotlineSide
		return
	}
	conv.EndedBy = AgentSide
	conv.HungUp = time.Now()
	hangUp()
	if err := f.bye(a, dlg); err != nil {
		conv.Err = fmt.Errorf("bye: %w", err)
	}
}

// bye hangs up: a BYE to the far end's Contact (§15.1.1), sent from the
// phones' socket like every other request.
func (f *Fleet) bye(a *agent, dlg *sipgo.DialogServerSession) error {
	ctx, cancel := context.WithTimeout(context.Background(), hangupTimeout)
	defer cancel()
	target := dlg.InviteRequest.Recipient
	if c := dlg.InviteRequest.Contact(); c != nil {
		target = c.Address
	}
	bye := sip.NewRequest(sip.BYE, *target.Clone())
	bye.SetTransport(dlg.InviteRequest.Transport())
	bye.Laddr = sip.Addr{IP: f.sipAddr.Addr().AsSlice(), Port: int(f.sipAddr.Port())}
	bye.AppendHeader(&a.contact)
	return dlg.WriteBye(ctx, bye)
}

// onAck confirms an answered call.
func (f *Fleet) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if c := f.dialog(req); c != nil {
		_ = c.dlg.ReadAck(req, tx)
	}
}

// onBye ends a call from the far end; a BYE for no call gets 481 (§15.1.2).
func (f *Fleet) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := f.dialog(req)
	if c == nil {
		respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	if err := c.dlg.ReadBye(req, tx); err != nil {
		f.log.Debug().Err(err).Msg("agentua: answering a BYE")
	}
}

func (f *Fleet) dialog(req *sip.Request) *call {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dialogs[id]
}

// citizen is the caller an offer shows: hotline puts the citizen's number
// in From's display name (RFC 3261 §20.20), and asserts it in
// P-Asserted-Identity (RFC 3325 §9.1) as well.
func citizen(req *sip.Request) string {
	if from := req.From(); from != nil {
		if name := strings.Trim(from.DisplayName, `"`); name != "" {
			return name
		}
	}
	if h := req.GetHeader("P-Asserted-Identity"); h != nil {
		v := h.Value()
		if i := strings.Index(v, "sip:"); i >= 0 {
			user, _, _ := strings.Cut(v[i+len("sip:"):], "@")
			return user
		}
	}
	return ""
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
}
