// Package caller is a scriptable citizen: it places a real call, listens for
// the catalog's prompts in the audio it receives, presses keys when prompted
// and reports what it heard. Tests drive hotline with it, and ops point it at
// production as a synthetic probe (`hotline call`).
package caller

import (
	"fmt"
	"strings"
	"time"

	"github.com/hotline12345/hotline/prompts"
)

// Step waits for a prompt and then acts.
type Step struct {
	On      prompts.ID // wait until this prompt is heard (its next occurrence)
	Press   string     // then press these keys, in order
	Hangup  bool       // or hang up
	BargeIn bool       // act as soon as the prompt is recognised, not after it ends
}

// Script is what the caller does, step by step. After the last step the
// caller stays on the line until the far end hangs up.
type Script []Step

// Menus are the prompts that ask for a key, in the order intake asks them.
var Menus = []prompts.ID{prompts.CategoryMenu, prompts.ConsentMenu}

// KeysScript presses one key per menu prompt, in order: "1,1" answers the
// category menu with 1 and the consent menu with 1.
func KeysScript(keys string) (Script, error) {
	var s Script
	if strings.TrimSpace(keys) == "" {
		return s, nil
	}
	for i, k := range strings.Split(keys, ",") {
		k = strings.TrimSpace(k)
		if i >= len(Menus) {
			return nil, fmt.Errorf("keys %q: intake asks %d questions", keys, len(Menus))
		}
		if len(k) != 1 || !validKeys(k) {
			return nil, fmt.Errorf("keys %q: %q is not one DTMF key (0-9, *, #, A-D)", keys, k)
		}
		s = append(s, Step{On: Menus[i], Press: k})
	}
	return s, nil
}

// Transcript is what happened on the call, as the caller saw it.
type Transcript struct {
	Status  int             // final SIP status of the INVITE (200 when answered)
	Heard   []prompts.Heard // prompts recognised in the received audio, in order
	Pressed []string        // keys pressed, in order
	// HungUpBy is "server" when the far end ended the call, "caller" when
	// the script hung up, "" when the call was never answered.
	HungUpBy string
	Answered time.Time
	Ended    time.Time
}

// HeardIDs lists the prompts heard, in order.
func (t Transcript) HeardIDs() []prompts.ID {
	ids := make([]prompts.ID, 0, len(t.Heard))
	for _, h := range t.Heard {
		ids = append(ids, h.ID)
	}
	return ids
}
