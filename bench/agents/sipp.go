package main

import (
	"fmt"
	"time"

	"github.com/hotline12345/hotline/bench/internal/rig"
)

// callerPrefix is the From user of sipp process i's callers; sipp appends
// the call number, so every caller of a run has its own number.
func callerPrefix(i int) string { return fmt.Sprintf("138%02d", i) }

// runSipps runs the citizens' calls, split over o.sipps processes at o.nice.
func runSipps(o options, wav, target, dir string) ([]rig.SippResult, error) {
	return rig.Sipps{
		N: o.sipps, Calls: o.calls, Rate: o.rate, Target: target, Nice: o.nice, Dir: dir, Out: o.out,
		// Every caller may wait through the whole run in the worst case.
		Timeout: time.Duration(float64(o.calls)/o.rate*float64(time.Second)) + 10*time.Minute,
		Scenario: func(i int) (string, error) {
			return scenario{
				Caller:     callerPrefix(i),
				Category:   rune(o.categories[i%len(o.categories)]),
				Consent:    '2', // no return visit: no offer to leave the queue for one
				PressFrom:  o.pressFrom,
				PressEvery: o.pressEvery,
				Presses:    o.presses,
				LastWait:   time.Minute,
				PraiseKey:  '1',
				WAV:        wav,
			}.render()
		},
	}.Run()
}
