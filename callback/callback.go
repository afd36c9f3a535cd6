// Package callback holds the return visits (回访): which appeals are
// visited once their processing time has expired, the worklist they wait
// in, and the calling windows they are worked in. It owns the visit keys
// in Redis.
package callback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hotline12345/hotline/appeal"
)

// Kind is what a visit is for.
type Kind string

// The kinds of visits.
const (
	// ReturnVisit asks a citizen who consented how the organizer dealt
	// with the appeal, once its processing time has expired.
	ReturnVisit Kind = "return_visit"
	// QueueCallback calls back a caller who left the queue for it.
	QueueCallback Kind = "queue_callback"
)

// Mode is how a visit is made.
type Mode string

// The modes of visits.
const (
	// ByAgent: a return-visit agent calls (the agent's phone rings
	// first, then the citizen's) and records the answers.
	ByAgent Mode = "agent"
	// ByIVR: hotline calls the citizen and asks the questions by key.
	ByIVR Mode = "ivr"
)

// State is where a visit is.
type State string

// The states of a visit.
const (
	Waiting State = "waiting"
)

// Decision is what became of an appeal whose processing time expired:
// a visit, or why none.
type Decision string

// The decisions; one per appeal, ever.
const (
	Visited        Decision = "visit"
	SkipNoConsent  Decision = "skipped: no consent"
	SkipNotSampled Decision = "skipped: not sampled"
	SkipDoNotCall  Decision = "skipped: do not call"
)

// Visit is one return visit or call-back to make.
type Visit struct {
	// ID is the appeal's id for a return visit.
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Mode is how it is made; empty is ByAgent.
	Mode     Mode            `json:"mode,omitempty"`
	Appeal   string          `json:"appeal,omitempty"`
	Category appeal.Category `json:"category"`
	// Organizers are the appeal's, the lead first.
	Organizers []string `json:"organizers,omitempty"`
	// District is the lead organizer's when the visit was decided: the
	// district whose rates it counts in.
	District  string    `json:"district,omitempty"`
	State     State     `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	// Due is when it may be worked: in a calling window.
	Due time.Time `json:"due"`
	// Expired is when the appeal's processing time ran out.
	Expired time.Time `json:"expired,omitempty"`
	// Attempts are the tries so far, oldest first.
	Attempts []Attempt `json:"attempts,omitempty"`
}

// Sampled reports whether the sample takes the appeal: the first eight
// bytes of HMAC-SHA256(seed, appeal id), big-endian, modulo 10,000, are
// below percent × 100. The same seed and id always give the same answer,
// on every node, so that an auditor can derive it again.
func Sampled(seed, appealID string, percent int) bool {
	if percent >= 100 {
		return true
	}
	if percent <= 0 {
		return false
	}
	m := hmac.New(sha256.New, []byte(seed))
	m.Write([]byte(appealID))
	v := binary.BigEndian.Uint64(m.Sum(nil)[:8]) % 10000
	return v < uint64(percent)*100
}

// Response answers "did the organizer contact you about the appeal".
type Response string

// The answers to the response question.
const (
	Contacted    Response = "yes"
	NotContacted Response = "no"
)

// Solution answers "was the problem solved".
type Solution string

// The answers to the solution question.
const (
	Solved       Solution = "yes"
	PartlySolved Solution = "partly"
	NotSolved    Solution = "no"
)

// Satisfaction answers "how satisfied are you with how it was handled".
type Satisfaction string

// The answers to the satisfaction question.
const (
	Satisfied          Satisfaction = "satisfied"
	BasicallySatisfied Satisfaction = "basically_satisfied"
	Dissatisfied       Satisfaction = "dissatisfied"
)

// Answers are a completed return visit's three answers.
type Answers struct {
	Response     Response     `json:"response"`
	Solution     Solution     `json:"solution"`
	Satisfaction Satisfaction `json:"satisfaction"`
}

// Check says what is wrong with the answers, naming the question; nil
// when each is one of its question's answers.
func (a Answers) Check() error {
	switch {
	case a.Response != Contacted && a.Response != NotContacted:
		return fmt.Errorf("%w: response %q: yes or no", ErrInvalid, a.Response)
	case a.Solution != Solved && a.Solution != PartlySolved && a.Solution != NotSolved:
		return fmt.Errorf("%w: solution %q: yes, partly or no", ErrInvalid, a.Solution)
	case a.Satisfaction != Satisfied && a.Satisfaction != BasicallySatisfied && a.Satisfaction != Dissatisfied:
		return fmt.Errorf("%w: satisfaction %q: satisfied, basically_satisfied or dissatisfied", ErrInvalid, a.Satisfaction)
	}
	return nil
}
