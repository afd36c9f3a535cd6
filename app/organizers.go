package app

import (
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/config"
)

// organizersOf are the configured organizers, which seed the list the API
// manages.
func organizersOf(cfg config.Config) []appeal.Organizer {
	out := make([]appeal.Organizer, len(cfg.Organizers))
	for i, o := range cfg.Organizers {
		out[i] = appeal.Organizer{ID: o.ID, Name: o.Name, Kind: appeal.OrganizerKind(o.Kind), District: o.District}
	}
	return out
}
