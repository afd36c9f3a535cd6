package appeal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// OrganizerKind is what an organizer is: a government bureau, a district
// government, or a public utility.
type OrganizerKind string

// The kinds of organizers.
const (
	Bureau   OrganizerKind = "bureau"
	District OrganizerKind = "district"
	Utility  OrganizerKind = "utility"
)

// Valid reports whether k is a kind of organizer.
func (k OrganizerKind) Valid() bool { return k == Bureau || k == District || k == Utility }

// Organizer is a unit appeals are dispatched to (承办单位).
type Organizer struct {
	ID   string        `json:"id"`
	Name string        `json:"name"`
	Kind OrganizerKind `json:"kind"`
	// District is the district it serves, or is; empty for a unit of
	// the whole city.
	District string `json:"district,omitempty"`
}

// MaxOrganizers bounds the organizers a hotline keeps: a city has a few
// hundred.
const MaxOrganizers = 10000

// organizerID is what an organizer id may be: it goes in URLs and keys.
var organizerID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Check says what is wrong with o, wrapping ErrInvalid.
func (o Organizer) Check() error {
	switch {
	case !organizerID.MatchString(o.ID):
		return fmt.Errorf("%w: organizer id %q (want 1-64 of a-z, 0-9, _ and -, starting with a letter or digit)", ErrInvalid, o.ID)
	case strings.TrimSpace(o.Name) == "":
		return fmt.Errorf("%w: organizer %s has no name", ErrInvalid, o.ID)
	case !o.Kind.Valid():
		return fmt.Errorf("%w: organizer %s: kind %q (want bureau, district or utility)", ErrInvalid, o.ID, o.Kind)
	}
	return nil
}

// ErrOrganizerNotFound: no organizer has the id.
var ErrOrganizerNotFound = errors.New("appeal: no such organizer")

// PutOrganizer adds an organizer or replaces the one with its id.
func (s *Store) PutOrganizer(ctx context.Context, o Organizer) error {
	if err := o.Check(); err != nil {
		return err
	}
	doc, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("appeal: encode organizer %s: %w", o.ID, err)
	}
	n, err := putOrganizerScript.Run(ctx, s.rdb, []string{s.organizers}, o.ID, doc, MaxOrganizers).Int()
	if err != nil {
		return fmt.Errorf("appeal: put organizer %s: %w", o.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %d organizers already, the most kept", ErrInvalid, MaxOrganizers)
	}
	return nil
}

// putOrganizerScript sets an organizer unless that would make more than
// the most kept. KEYS: the organizers hash. ARGV: id, document, the most.
var putOrganizerScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// SeedOrganizers adds the configured organizers that the store does not
// have yet: the configuration seeds the list, which the API manages from
// then on, so a restart does not undo what was changed through it.
func (s *Store) SeedOrganizers(ctx context.Context, os []Organizer) error {
	for _, o := range os {
		if err := o.Check(); err != nil {
			return err
		}
		doc, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("appeal: encode organizer %s: %w", o.ID, err)
		}
		if err := s.rdb.HSetNX(ctx, s.organizers, o.ID, doc).Err(); err != nil {
			return fmt.Errorf("appeal: seed organizer %s: %w", o.ID, err)
		}
	}
	return nil
}

// DeleteOrganizer removes an organizer: appeals dispatched to it keep its
// id. It is an error wrapping ErrOrganizerNotFound when there is none.
func (s *Store) DeleteOrganizer(ctx context.Context, id string) error {
	n, err := s.rdb.HDel(ctx, s.organizers, id).Result()
	if err != nil {
		return fmt.Errorf("appeal: delete organizer %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrOrganizerNotFound, id)
	}
	return nil
}

// Organizers lists the organizers by id.
func (s *Store) Organizers(ctx context.Context) ([]Organizer, error) {
	m, err := s.rdb.HGetAll(ctx, s.organizers).Result()
	if err != nil {
		return nil, fmt.Errorf("appeal: organizers: %w", err)
	}
	out := make([]Organizer, 0, len(m))
	for id, doc := range m {
		var o Organizer
		if err := json.Unmarshal([]byte(doc), &o); err != nil {
			return nil, fmt.Errorf("appeal: decode organizer %s: %w", id, err)
		}
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b Organizer) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Organizer returns the organizer with the id, or an error wrapping
// ErrOrganizerNotFound.
func (s *Store) Organizer(ctx context.Context, id string) (Organizer, error) {
	doc, err := s.rdb.HGet(ctx, s.organizers, id).Result()
	if errors.Is(err, redis.Nil) {
		return Organizer{}, fmt.Errorf("%w: %q", ErrOrganizerNotFound, id)
	}
	if err != nil {
		return Organizer{}, fmt.Errorf("appeal: organizer %s: %w", id, err)
	}
	var o Organizer
	if err := json.Unmarshal([]byte(doc), &o); err != nil {
		return Organizer{}, fmt.Errorf("appeal: decode organizer %s: %w", id, err)
	}
	return o, nil
}
