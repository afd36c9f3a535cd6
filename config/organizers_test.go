package config

import "testing"

func TestOrganizers(t *testing.T) {
	c, err := Load(writeFile(t, "organizers:\n  - {id: water, name: Water Group, kind: utility}\n  - {id: chaoyang, name: Chaoyang, kind: district, district: Chaoyang}\n"), envMap(nil))
	if err != nil || len(c.Organizers) != 2 || c.Organizers[1].District != "Chaoyang" || c.Organizers[0].Kind != "utility" {
		t.Fatalf("organizers %+v, %v", c.Organizers, err)
	}
	for _, tc := range []struct {
		key string
		o   []Organizer
	}{
		{"organizers[0].id", []Organizer{{ID: "Water Group", Name: "w", Kind: "utility"}}},
		{"organizers[1].id", []Organizer{{ID: "w", Name: "w", Kind: "utility"}, {ID: "w", Name: "x", Kind: "bureau"}}},
		{"organizers[0].name", []Organizer{{ID: "w", Kind: "utility"}}},
		{"organizers[0].kind", []Organizer{{ID: "w", Name: "w", Kind: "church"}}},
	} {
		c := Default()
		c.Organizers = tc.o
		if ke := onlyProblem(t, c.Validate()); ke.Key != tc.key {
			t.Errorf("%+v: problem for %s; want %s", tc.o, ke.Key, tc.key)
		}
	}
}
