package asterisk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/asterisk"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/prompts"
)

// Requests about a channel that is already gone get 404 from Asterisk:
// the events saying so are held back (a slow socket), and the flow's
// answer meets the 404. It learns the caller hung up; hanging up is a
// no-op; nothing is left in Asterisk.
func TestRequestsAfterTheCallerLeft(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	calls := make(chan ivr.Call, 1)
	proceed := make(chan struct{})
	results := make(chan error, 3)
	b, err := asterisk.New(asterisk.Options{
		URL: srv.URL(), Username: "hotline", Password: "hotline", Catalog: catalog,
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
		Handler: func(ctx context.Context, call ivr.Call) {
			calls <- call
			<-proceed
			results <- call.Answer(ctx)
			_, err := call.Play(ctx, prompts.Mandarin, prompts.Greeting)
			results <- err
			results <- call.Hangup(ctx)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(10 * time.Second)
	for b.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not connected: %v", b.Healthy())
		}
		time.Sleep(5 * time.Millisecond)
	}
	ictx, icancel := context.WithTimeout(context.Background(), 10*time.Second)
	p, err := srv.Inbound(ictx, "hotline", "13800000301", "12345")
	icancel()
	if err != nil {
		t.Fatal(err)
	}
	call := <-calls
	resume := srv.Freeze("hotline")
	p.Hangup()
	<-p.Done()
	close(proceed)
	if err := <-results; !errors.Is(err, ivr.ErrCallerHangup) {
		t.Errorf("Answer on a gone channel: %v, want %v", err, ivr.ErrCallerHangup)
	}
	if err := <-results; !errors.Is(err, ivr.ErrCallerHangup) {
		t.Errorf("Play on a gone channel: %v, want %v", err, ivr.ErrCallerHangup)
	}
	if err := <-results; err != nil {
		t.Errorf("Hangup of a gone channel: %v", err)
	}
	resume()
	if !errors.Is(call.Err(), ivr.ErrCallerHangup) {
		t.Errorf("call ended with %v", call.Err())
	}
	noLeftovers(t, srv)
}
