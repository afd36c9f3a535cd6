package sip

// An agent's phone built on sipgo, for what baresip cannot be told to do:
// answer with a chosen status, or in A-law only with its RTP in the test's
// hands.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// deskPhone is an in-process agent's phone; the test answers each INVITE.
type deskPhone struct {
	t       testing.TB
	user    string
	ua      *sipgo.UserAgent
	conn    net.PacketConn
	addr    netip.AddrPort
	dialogs *sipgo.DialogServerCache
	offers  chan *ringing
	byes    chan *sip.Request
	closing chan struct{}
	served  chan struct{}
	wg      sync.WaitGroup // INVITE handlers
}

// ringing is an INVITE at the phone, waiting for the test to answer it.
type ringing struct {
	req       *sip.Request
	tx        sip.ServerTransaction
	cancelled chan struct{} // closed when a CANCEL came
	answered  chan struct{} // closed by the test once it sent a final response
	once      sync.Once
}

func (r *ringing) done() { r.once.Do(func() { close(r.answered) }) }

// respond sends a final (or provisional) status without a body.
func (r *ringing) respond(t testing.TB, code int, reason string) {
	t.Helper()
	res := sip.NewResponseFromRequest(r.req, code, reason, nil)
	if err := r.tx.Respond(res); err != nil {
		t.Fatalf("respond %d: %v", code, err)
	}
	if code >= 200 {
		r.done()
	}
}

func newDeskPhone(t testing.TB, user string) *deskPhone {
	t.Helper()
	ua, client, srv, pc, addr := newLoopbackUA(t, "deskphone")
	p := &deskPhone{
		t: t, user: user, ua: ua, conn: pc, addr: addr,
		dialogs: sipgo.NewDialogServerCache(client, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: int(addr.Port())}}),
		offers:  make(chan *ringing, 8),
		byes:    make(chan *sip.Request, 8),
		closing: make(chan struct{}),
		served:  make(chan struct{}),
	}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		p.wg.Add(1)
		defer p.wg.Done()
		r := &ringing{req: req, tx: tx, cancelled: make(chan struct{}), answered: make(chan struct{})}
		tx.OnCancel(func(*sip.Request) { close(r.cancelled) })
		p.offers <- r
		// The handler's return ends the transaction: wait for the
		// test's answer, or for the CANCEL the transaction answered.
		select {
		case <-r.answered:
		case <-r.cancelled:
		case <-p.closing:
		}
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = p.dialogs.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dialogs.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
			return
		}
		p.byes <- req
	})
	rc := &readyConn{PacketConn: pc, ready: make(chan struct{})}
	go func() {
		defer close(p.served)
		_ = srv.ServeUDP(rc)
	}()
	isClosed(t, rc.ready, "desk phone listening")
	t.Cleanup(func() {
		close(p.closing)
		p.wg.Wait()
		ua.Close()
		pc.Close()
		<-p.served
	})
	return p
}

func (p *deskPhone) binding() Binding {
	return Binding{User: p.user, Contact: fmt.Sprintf("sip:%s@%s", p.user, p.addr), Source: p.addr, Transport: "udp", Expires: time.Now().Add(time.Hour)}
}

// ring waits for the next INVITE.
func (p *deskPhone) ring(t testing.TB) *ringing {
	t.Helper()
	return recv(t, p.offers, "INVITE at the agent's phone")
}

// answer answers r with an SDP answer taking codec (name and payload type)
// and telephone-event 101 on rtpPort, and waits for the ACK.
func (p *deskPhone) answer(t testing.TB, r *ringing, codec string, pt, rtpPort int, extra ...string) *sipgo.DialogServerSession {
	t.Helper()
	dlg, err := p.dialogs.ReadInvite(r.req, r.tx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.done()
	body := offerFormats(rtpPort, fmt.Sprintf("%d 101", pt), append([]string{
		fmt.Sprintf("a=rtpmap:%d %s/8000", pt, codec), "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15",
	}, extra...)...)
	if err := dlg.RespondSDP(body); err != nil {
		t.Fatalf("200 to the INVITE: %v", err)
	}
	return dlg
}

// inDialog sends a request in the phone's dialog and returns the final
// response.
func inDialog(t testing.TB, dlg *sipgo.DialogServerSession, method sip.RequestMethod, contentType string, body []byte) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req := sip.NewRequest(method, dlg.InviteRequest.Contact().Address)
	if body != nil {
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	res, err := dlg.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s from the agent's phone: %v", method, err)
	}
	return res
}
