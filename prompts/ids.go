package prompts

import (
	"strconv"
	"time"
)

// ID names one prompt of the catalog. The same ID is used for every language.
type ID string

// Lang is a prompt language, as a BCP 47 tag.
type Lang string

// Languages of the catalog. Mandarin is the default.
const (
	Mandarin Lang = "zh"
	English  Lang = "en"
)

// Prompts of the intake flow.
const (
	Greeting      ID = "greeting"       // welcome; key 9 switches to English
	CategoryMenu  ID = "category_menu"  // 1 emergency, 2 livelihood, 3 general
	ConsentMenu   ID = "consent_menu"   // 1 agree to a return visit, 2 decline
	InvalidKey    ID = "invalid_key"    // the key pressed is not on the menu
	NoInput       ID = "no_input"       // nothing was pressed
	FallbackNote  ID = "fallback_note"  // tries used up: the default choice is taken
	AppealNumber  ID = "appeal_number"  // "your appeal number is", digits follow
	Goodbye       ID = "goodbye"        // thanks and goodbye
	ServiceClosed ID = "service_closed" // apology when the service cannot take the call
	// AppealNumberLater: the appeal is recorded but its number cannot be
	// told now; a call-back will tell it.
	AppealNumberLater ID = "appeal_number_later"
	// OutageCallback: no agent can be reached (Redis does not answer);
	// the call is recorded and will be called back; goodbye.
	OutageCallback ID = "outage_callback"
)

// Prompts of the queue and the rating.
const (
	QueueWait        ID = "queue_wait"         // all agents busy, please hold
	QueuePosition    ID = "queue_position"     // "you are number", digits follow
	QueuePositionEnd ID = "queue_position_end" // "in the queue"
	QueueLeaveOffer  ID = "queue_leave_offer"  // press 1 to leave the queue and be called back
	CallbackNoted    ID = "callback_noted"     // the call-back request is recorded
	HoldMusic        ID = "hold_music"         // music while waiting
	Rating           ID = "rating"             // 1 praise, 2 bad review
	RatingThanks     ID = "rating_thanks"      // thanks for the rating, goodbye
	RatingNone       ID = "rating_none"        // no rating was received, goodbye
)

// Prompts that Asterisk's dialplan plays by name (AsteriskSoundName), when
// the application cannot take the call at all.
const (
	AppUnavailable ID = "app_unavailable" // apology; leave name, number and request after the tone
)

// Prompts of the automated return visit (回访). The introduction is
// VisitIntro, Month, DayOfMonth, VisitCategory and CategoryName, in that
// order in every language.
const (
	VisitIntro        ID = "visit_intro"        // the hotline's name, "on" (the date follows)
	VisitCategory     ID = "visit_category"     // "you made an appeal in the category" (the category follows)
	VisitConsent      ID = "visit_consent"      // 1 to take the survey, 2 to decline
	VisitResponse     ID = "visit_response"     // did the organizer contact you: 1 yes, 2 no
	VisitSolution     ID = "visit_solution"     // was it solved: 1 yes, 2 partly, 3 no
	VisitSatisfaction ID = "visit_satisfaction" // 1 satisfied, 2 basically satisfied, 3 dissatisfied
	VisitThanks       ID = "visit_thanks"       // the survey is over, thanks, goodbye
	VisitDeclined     ID = "visit_declined"     // no more return visits, goodbye
	VisitGoodbye      ID = "visit_goodbye"      // we will contact you another time, goodbye
	// The appeal categories' names, as the introduction says them.
	CategoryEmergency  ID = "category_emergency"
	CategoryLivelihood ID = "category_livelihood"
	CategoryGeneral    ID = "category_general"
	CategoryComplex    ID = "category_complex"
)

// Month returns the prompt that names a month (month_1 is January), or ""
// for none.
func Month(m time.Month) ID {
	if m < time.January || m > time.December {
		return ""
	}
	return ID("month_" + strconv.Itoa(int(m)))
}

// DayOfMonth returns the prompt that says a day of the month (1 to 31),
// or "" for none.
func DayOfMonth(d int) ID {
	if d < 1 || d > 31 {
		return ""
	}
	return ID("day_" + strconv.Itoa(d))
}

// Digit returns the prompt that speaks one decimal digit.
func Digit(d rune) ID {
	if d < '0' || d > '9' {
		return ""
	}
	return ID("digit_" + string(d))
}
