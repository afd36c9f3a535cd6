package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Organizer is a unit appeals are dispatched to (承办单位): a government
// bureau, a district government or a public utility. The configured ones
// seed the list at start; the API manages it from then on.
type Organizer struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Kind is bureau, district or utility. An appeal whose owner is
	// unknown goes to a district.
	Kind string `yaml:"kind"`
	// District is the district it serves, or is; empty for the city.
	District string `yaml:"district"`
}

// organizerID is appeal's rule for an organizer id.
var organizerID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func validateOrganizers(os []Organizer, p *problems) {
	seen := map[string]bool{}
	for i, o := range os {
		key := fmt.Sprintf("organizers[%d]", i)
		switch {
		case !organizerID.MatchString(o.ID):
			p.check(key+".id", fmt.Errorf("%q: want 1-64 of a-z, 0-9, _ and -, starting with a letter or digit", o.ID))
		case seen[o.ID]:
			p.check(key+".id", fmt.Errorf("%q: named twice", o.ID))
		}
		seen[o.ID] = true
		if strings.TrimSpace(o.Name) == "" {
			p.check(key+".name", fmt.Errorf("organizer %q has no name", o.ID))
		}
		p.check(key+".kind", oneOf(o.Kind, "bureau", "district", "utility"))
	}
}
