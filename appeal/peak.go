package appeal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// PeakSwitch is one switch of peak mode ("the traffic is concentrated"):
// general and complex appeals created while it is on get 48 h to be
// dispatched instead of 24.
type PeakSwitch struct {
	On     bool      `json:"on"`
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
}

// PeakStatus is peak mode now, with the switch that set it (absent when
// it was never switched) and the latest switches, newest first.
type PeakStatus struct {
	On       bool         `json:"on"`
	Last     *PeakSwitch  `json:"last,omitempty"`
	Switches []PeakSwitch `json:"switches"`
}

// MaxPeakSwitches is how many switches the audit trail keeps.
const MaxPeakSwitches = 1000

// switchPeakScript sets peak mode and records the switch, at once.
// KEYS: the peak key, its log. ARGV: "1" or "0", the switch, the most
// kept.
var switchPeakScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
`)

// SwitchPeakMode turns peak mode on or off for appeals created from now
// on (appeals already created keep their clocks), recording who, when and
// why. Switching to the mode it has is recorded too: it is what was asked.
func (s *Store) SwitchPeakMode(ctx context.Context, on bool, by, reason string) (PeakSwitch, error) {
	if strings.TrimSpace(by) == "" {
		return PeakSwitch{}, fmt.Errorf("%w: a peak mode switch says who made it", ErrInvalid)
	}
	if strings.TrimSpace(reason) == "" {
		return PeakSwitch{}, fmt.Errorf("%w: a peak mode switch says why (reason)", ErrInvalid)
	}
	sw := PeakSwitch{On: on, At: s.now().In(s.loc), By: by, Reason: reason}
	doc, err := json.Marshal(sw)
	if err != nil {
		return PeakSwitch{}, fmt.Errorf("appeal: encode peak mode switch: %w", err)
	}
	v := "0"
	if on {
		v = "1"
	}
	if err := switchPeakScript.Run(ctx, s.rdb, []string{s.peak, s.peak + ":log"}, v, doc, MaxPeakSwitches).Err(); err != nil {
		return PeakSwitch{}, fmt.Errorf("appeal: switch peak mode: %w", err)
	}
	return sw, nil
}

// PeakModeStatus is peak mode now and its latest switches (up to limit,
// newest first).
func (s *Store) PeakModeStatus(ctx context.Context, limit int) (PeakStatus, error) {
	if limit < 1 {
		limit = 20
	}
	limit = min(limit, MaxPeakSwitches)
	var on *redis.StringCmd
	var log *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		on = p.Get(ctx, s.peak)
		log = p.LRange(ctx, s.peak+":log", 0, int64(limit-1))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return PeakStatus{}, fmt.Errorf("appeal: peak mode: %w", err)
	}
	st := PeakStatus{On: on.Val() == "1", Switches: make([]PeakSwitch, 0, len(log.Val()))}
	for _, doc := range log.Val() {
		var sw PeakSwitch
		if err := json.Unmarshal([]byte(doc), &sw); err != nil {
			return PeakStatus{}, fmt.Errorf("appeal: decode peak mode switch: %w", err)
		}
		st.Switches = append(st.Switches, sw)
	}
	if len(st.Switches) > 0 {
		st.Last = &st.Switches[0]
	}
	return st, nil
}
