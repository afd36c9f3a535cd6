// Package evaluation keeps the callers' ratings of the service (好评 praise,
// 差评 bad review), one per call (一次一评), their daily counters per agent
// and for the whole hotline, and the supervisors' review of bad reviews: a
// bad review is a candidate complaint that is either upheld as an effective
// complaint (合理差评) or dismissed. The standard holds the effective
// complaint rate of service quality to at most three ten-thousandths of the
// calls served; the upheld counters here are its numerator. It owns the
// evaluation keys in Redis.
package evaluation

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hotline12345/hotline/appeal"
)

// Errors of the package; test with errors.Is.
var (
	ErrNotFound        = errors.New("evaluation: not found")
	ErrAlreadyRated    = errors.New("evaluation: call already rated")
	ErrAlreadyReviewed = errors.New("evaluation: complaint already reviewed")
	ErrInvalid         = errors.New("evaluation: invalid")
)

// Verdict is what the caller's key said about the service.
type Verdict string

// The verdicts. NoRating is recorded when the caller was asked but gave no
// valid key, so that "asked and not rated" stays distinct from "never
// asked" (a caller who never reached an agent has no rating at all).
const (
	Praise    Verdict = "praise"     // 好评
	BadReview Verdict = "bad_review" // 差评
	NoRating  Verdict = "none"
)

// Valid reports whether v is one of the verdicts.
func (v Verdict) Valid() bool {
	switch v {
	case Praise, BadReview, NoRating:
		return true
	}
	return false
}

// Why a call ended without a rating (Rating.Reason).
const (
	ReasonNoInput      = "no_input"      // silence after the last repetition of the question
	ReasonInvalidKey   = "invalid_key"   // only keys the question does not offer
	ReasonCallerHangup = "caller_hangup" // the caller hung up before pressing a key
)

func validReason(r string) bool {
	switch r {
	case ReasonNoInput, ReasonInvalidKey, ReasonCallerHangup:
		return true
	}
	return false
}

// Rating is the one rating of a call, with the key and the prompt as
// evidence of what the caller was asked and answered.
type Rating struct {
	CallID   string          `json:"call_id"`
	AppealID string          `json:"appeal_id,omitempty"`
	AgentID  string          `json:"agent_id"`
	Category appeal.Category `json:"category"`
	Verdict  Verdict         `json:"verdict"`
	Key      string          `json:"key,omitempty"`    // the key pressed; empty for none
	Reason   string          `json:"reason,omitempty"` // why none: ReasonNoInput, ReasonInvalidKey, ReasonCallerHangup
	At       time.Time       `json:"at"`
	// ServedAt is when the agent answered the call: the rating and its
	// review count on its day. Zero counts the rating's time.
	ServedAt      time.Time `json:"served_at,omitzero"`
	PromptID      string    `json:"prompt_id"`
	PromptVersion string    `json:"prompt_version"`
}

// dtmfKeys are the sixteen DTMF symbols (ITU-T Q.23; RFC 4733 events 0-15).
const dtmfKeys = "0123456789*#ABCD"

// Validate checks what Record relies on. A rating is asked only after an
// agent served the call, so the agent is always known.
func (r Rating) Validate() error {
	switch {
	case r.CallID == "":
		return fmt.Errorf("%w: rating without call id", ErrInvalid)
	case r.AgentID == "":
		return fmt.Errorf("%w: rating of call %s without agent id", ErrInvalid, r.CallID)
	case strings.Contains(r.AgentID, "|"):
		// The line's call records separate their fields with it.
		return fmt.Errorf("%w: rating of call %s: agent id %q", ErrInvalid, r.CallID, r.AgentID)
	case !r.Verdict.Valid():
		return fmt.Errorf("%w: rating of call %s: verdict %q", ErrInvalid, r.CallID, r.Verdict)
	case !r.Category.Valid():
		return fmt.Errorf("%w: rating of call %s: category %q", ErrInvalid, r.CallID, r.Category)
	case r.PromptID == "":
		return fmt.Errorf("%w: rating of call %s without prompt id", ErrInvalid, r.CallID)
	}
	if r.Verdict == NoRating {
		if r.Key != "" {
			return fmt.Errorf("%w: call %s: no rating but key %q", ErrInvalid, r.CallID, r.Key)
		}
		if !validReason(r.Reason) {
			return fmt.Errorf("%w: call %s: no rating, reason %q", ErrInvalid, r.CallID, r.Reason)
		}
		return nil
	}
	if len(r.Key) != 1 || !strings.Contains(dtmfKeys, r.Key) {
		return fmt.Errorf("%w: call %s: %s with key %q", ErrInvalid, r.CallID, r.Verdict, r.Key)
	}
	if r.Reason != "" {
		return fmt.Errorf("%w: call %s: %s with reason %q", ErrInvalid, r.CallID, r.Verdict, r.Reason)
	}
	return nil
}

// sameRating reports whether b says what a says. The times are left out:
// a key delivered twice by the media layer is recorded again with a later
// time, and it is still the same rating.
func sameRating(a, b Rating) bool {
	a.At, b.At = time.Time{}, time.Time{}
	a.ServedAt, b.ServedAt = time.Time{}, time.Time{}
	return a == b
}

// servedAt is the time the rating counts at.
func (r Rating) servedAt() time.Time {
	if r.ServedAt.IsZero() {
		return r.At
	}
	return r.ServedAt
}

// AgentDay counts one day's calls served, ratings and reviewed complaints
// of one agent, or of the whole hotline when AgentID is empty. Ratings and
// complaints count on the day the call was served, not of their rating or
// review, so that a day's effective complaints and its calls served cover
// the same calls.
type AgentDay struct {
	AgentID   string `json:"agent_id"`
	Day       string `json:"day"` // 2026-11-27, in the store's Location
	Served    int64  `json:"served"`
	Praise    int64  `json:"praise"`
	BadReview int64  `json:"bad_review"`
	NoRating  int64  `json:"no_rating"`
	Upheld    int64  `json:"upheld"`    // bad reviews confirmed as effective complaints (合理差评)
	Dismissed int64  `json:"dismissed"` // bad reviews dismissed on review
	Pending   int64  `json:"pending"`   // bad reviews not yet reviewed
}

// ComplaintStatus is where a complaint is in its review.
type ComplaintStatus string

// The statuses. A complaint opens pending and is reviewed once.
const (
	Pending   ComplaintStatus = "pending"
	Upheld    ComplaintStatus = "upheld" // an effective complaint, 合理差评
	Dismissed ComplaintStatus = "dismissed"
)

// Complaint is a bad review waiting for, or after, a supervisor's review.
// Its ID is the id of the rated call: a call has at most one.
type Complaint struct {
	ID       string          `json:"id"`
	CallID   string          `json:"call_id"`
	AppealID string          `json:"appeal_id,omitempty"`
	AgentID  string          `json:"agent_id"`
	Category appeal.Category `json:"category"`
	OpenedAt time.Time       `json:"opened_at"` // the time of the bad review
	// ServedAt is when the agent answered the call, the time the
	// complaint counts at; zero for OpenedAt.
	ServedAt   time.Time       `json:"served_at,omitzero"`
	Status     ComplaintStatus `json:"status"`
	ReviewedAt *time.Time      `json:"reviewed_at,omitempty"`
	ReviewedBy string          `json:"reviewed_by,omitempty"`
	Note       string          `json:"note,omitempty"`
	// History is every decision on the complaint, oldest first: its
	// review and any reversals. It is kept beside the complaint and
	// filled in where one complaint is read; lists leave it out.
	History []Decision `json:"history,omitempty"`
	// AgeSeconds, for a pending complaint in a list, is how long it has
	// waited for its review; Overdue says it waited longer than the
	// review SLA.
	AgeSeconds *float64 `json:"age_seconds,omitempty"`
	Overdue    bool     `json:"overdue,omitempty"`
}
