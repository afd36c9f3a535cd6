// Package appeal holds a citizen's appeal (诉求): its category, the consent to a
// return visit, and the standard's clocks (dispatch, sign, feedback) that the
// category sets. It owns the appeal keys in Redis.
package appeal

import "time"

// Category is the one category of an appeal; it sets every clock.
type Category string

// The categories of the standard.
const (
	Emergency  Category = "emergency"  // risk to life or property, unstable factors, public health
	Livelihood Category = "livelihood" // water, electricity, heating, extreme weather
	General    Category = "general"    // everything else
	Complex    Category = "complex"    // difficult, multi-unit, unclear ownership
)

// Consent is the citizen's answer to "may we visit you again", with its
// evidence. Consent is given only by an explicit key; anything else is
// "not given".
type Consent struct {
	Given         bool       `json:"given"`
	Key           string     `json:"key,omitempty"` // the key pressed, "" when none was
	At            *time.Time `json:"at,omitempty"`  // when the key was pressed
	PromptID      string     `json:"prompt_id"`
	PromptVersion string     `json:"prompt_version"`
	Lang          string     `json:"lang"`
	// Evidence is how consent given outside the menu was recorded (an
	// agent's note of what the citizen said, a text channel's message
	// id), and RecordedBy the account that recorded it.
	Evidence   string `json:"evidence,omitempty"`
	RecordedBy string `json:"recorded_by,omitempty"`
}

// New is what intake knows when it records an appeal, or an agent when
// taking one by hand.
type New struct {
	// CallID names the call (or, for an appeal taken by hand, the
	// request) the appeal comes from: one appeal per CallID.
	CallID   string
	Caller   string
	Category Category
	Consent  Consent
	Lang     string
	At       time.Time // when the appeal was taken; clocks start here
	// Journaled says the appeal was kept in a node's journal while Redis
	// did not answer, and stored when it answered again.
	Journaled bool
	// NumberUntold says the caller could not be told the appeal's number
	// (Redis did not answer and the node had no number of its own left):
	// they were told they would be called back with it.
	NumberUntold bool
	// Synthetic says the appeal is the synthetic probe's: nobody works
	// it, and it is left out of the lists.
	Synthetic bool
	// Channel is where an appeal not taken by the menu came from
	// (phone, web, app, wechat, email, letter); empty for the menu's.
	Channel string
	// Summary is what the citizen asks, as an agent wrote it down.
	Summary string
}

// Appeal is a recorded appeal.
type Appeal struct {
	ID          string    `json:"id"` // digits only, read out to the caller
	CallID      string    `json:"call_id"`
	Caller      string    `json:"caller" pii:"phone"` // masked for roles that do not need it (web)
	Category    Category  `json:"category"`
	Consent     Consent   `json:"consent"`
	Lang        string    `json:"lang"`
	Channel     string    `json:"channel,omitempty"`
	Summary     string    `json:"summary,omitempty"`
	PeakMode    bool      `json:"peak_mode"` // peak mode was on when it was created
	CreatedAt   time.Time `json:"created_at"`
	DispatchDue time.Time `json:"dispatch_due"`
	SignDue     time.Time `json:"sign_due"`
	FeedbackDue time.Time `json:"feedback_due"`
	// Journaled: taken while Redis did not answer, kept in the node's
	// journal and stored once Redis answered again.
	Journaled bool `json:"journaled,omitempty"`
	// NumberUntold: the caller was not told this number, and was
	// promised a call-back with it.
	NumberUntold bool `json:"number_untold,omitempty"`
	// Synthetic: made by the synthetic probe (hotline probe); nobody
	// works it, and List leaves it out.
	Synthetic bool `json:"synthetic,omitempty"`

	// Its life after the call (lifecycle.go). State is received when
	// created; the times are set by the steps that make them.
	State        State       `json:"state"`
	Assignment   *Assignment `json:"assignment,omitempty"`
	DispatchedAt *time.Time  `json:"dispatched_at,omitempty"`
	// SignedBy are the organizers that signed for the current dispatch,
	// the lead among them once SignedAt is set.
	SignedBy  []string   `json:"signed_by,omitempty"`
	SignedAt  *time.Time `json:"signed_at,omitempty"`
	Feedback  *Feedback  `json:"feedback,omitempty"`
	FedBackAt *time.Time `json:"fed_back_at,omitempty"`
	ClosedAt  *time.Time `json:"closed_at,omitempty"`
	// Returns counts the times organizers sent it back; ReturnedAt is
	// the last time.
	Returns    int        `json:"returns,omitempty"`
	ReturnedAt *time.Time `json:"returned_at,omitempty"`
}
