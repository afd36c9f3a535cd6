package sip

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/prompts"
)

// captureOf is pcm as a PCMU capture, 20 ms a packet.
func captureOf(pcm []int16) []byte {
	var payloads [][]byte
	for i := 0; i+media.FrameSamples <= len(pcm); i += media.FrameSamples {
		payloads = append(payloads, media.PCMU.Encode(nil, pcm[i:i+media.FrameSamples]))
	}
	return sipptest.RTPAudioCapture(0, 7000, payloads)
}

// faxCalling is a calling fax's CNG (ITU-T T.30 §5.2.2): 1100 Hz for
// 0.5 s, 3 s of silence, twice.
func faxCalling() []int16 {
	var pcm []int16
	for range 2 {
		for i := range media.SampleRate / 2 {
			pcm = append(pcm, int16(6000*math.Sin(2*math.Pi*1100*float64(i)/media.SampleRate)))
		}
		pcm = append(pcm, make([]int16, 3*media.SampleRate)...)
	}
	return pcm
}

// TestVisitHearsTheFarEnd: the return visit on a number the embedded
// backend dialled through a carrier (sipp): a fax's calling tone from the
// far end ends it as no_answer "fax", and a greeting read out for longer
// than a person's hello (a prompt of ours, 15 s of speech) as
// "answering machine"; neither hears a question.
func TestVisitHearsTheFarEnd(t *testing.T) {
	t.Parallel()
	catalog := defaultCatalog(t)
	greeting, err := catalog.Get(prompts.CategoryMenu, prompts.Mandarin)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		far  []int16
		note string
	}{
		{"fax", faxCalling(), ivr.NoteFax},
		{"answering machine", greeting.PCM, ivr.NoteAnsweringMachine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			capture := filepath.Join(t.TempDir(), "far.pcap")
			if err := os.WriteFile(capture, captureOf(tc.far), 0o644); err != nil {
				t.Fatal(err)
			}
			carrier := sipptest.Serve(t, sipptest.PlayingXML(capture), 1)
			ts := startServer(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			leg, err := ts.Dial(ctx, ivr.Number{Number: "13900000041", Trunk: carrierRoute(carrier, "", "")},
				ivr.DialOptions{RingTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err, carrier.Wait(t, 10*time.Second).Output)
			}
			if _, ok := leg.(ivr.Listener); !ok {
				t.Fatal("the embedded backend's placed call does not hear the far end")
			}
			s := ivr.NewSession(leg, catalog, prompts.Mandarin)
			v := &ivr.Visit{}
			res, err := v.Run(ctx, s, ivr.VisitSubject{
				VisitID: "2612010001", AppealID: "2612010001", Category: appeal.General, Date: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
			})
			if err != nil || res.Outcome != callback.NoAnswer || res.Note != tc.note {
				t.Errorf("visit: %+v, %v; want no_answer, %q", res, err, tc.note)
			}
			for _, ev := range s.Events() {
				if ev.Prompt == string(prompts.VisitConsent) {
					t.Errorf("the consent question was asked: %+v", s.Events())
				}
			}
			if err := leg.Hangup(context.Background()); err != nil {
				t.Fatal(err)
			}
			if r := carrier.Wait(t, 20*time.Second); r.Successful != 1 {
				t.Errorf("the carrier's call: %d successful, %d failed\n%s", r.Successful, r.Failed, r.Output)
			}
			waitAgentLegs(t, ts, 0)
		})
	}
}
