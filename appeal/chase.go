package appeal

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Chase says which appeals a supervision list asks for.
type Chase string

// The supervision lists.
const (
	// DueSoon are the appeals whose stage has been urged and is not past
	// its deadline yet.
	DueSoon Chase = "due_soon"
	// OverdueNow are the appeals whose stage is past its deadline.
	OverdueNow Chase = "overdue"
)

// ChaseItem is one appeal to chase: the stage it waits for and its
// deadline.
type ChaseItem struct {
	Appeal   Appeal    `json:"appeal"`
	Stage    string    `json:"stage"`
	Deadline time.Time `json:"deadline"`
	// Seconds is how long the deadline has passed (overdue) or how long
	// is left (due soon).
	Seconds int64 `json:"seconds"`
}

// ChaseGroup is one organizer's appeals to chase, most urgent first. An
// appeal waiting for dispatch is the hotline's own (Organizer "").
type ChaseGroup struct {
	Organizer string      `json:"organizer"`
	Items     []ChaseItem `json:"items"`
}

// chaseScan bounds how many appeals one supervision list reads.
const chaseScan = 10000

// ChaseList lists the appeals to chase (due soon or overdue), most urgent
// first — the longest overdue, the nearest deadline — up to limit, in
// groups by lead organizer, the group of the most urgent first.
func (s *Store) ChaseList(ctx context.Context, which Chase, limit int) ([]ChaseGroup, error) {
	if limit < 1 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	now := s.now()
	nowMs := strconv.FormatInt(now.UnixMilli(), 10)
	var rng *redis.ZRangeBy
	switch which {
	case OverdueNow:
		rng = &redis.ZRangeBy{Min: "-inf", Max: "(" + nowMs}
	case DueSoon:
		rng = &redis.ZRangeBy{Min: nowMs, Max: "+inf"}
	default:
		return nil, fmt.Errorf("%w: %q (want due_soon or overdue)", ErrInvalid, which)
	}
	var items []ChaseItem
	const page = 500
	for offset := int64(0); len(items) < limit && offset < chaseScan; offset += page {
		rng.Offset, rng.Count = offset, page
		ids, err := s.rdb.ZRangeByScore(ctx, s.chase, rng).Result()
		if err != nil {
			return nil, fmt.Errorf("appeal: chase: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		as, err := s.getMany(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("appeal: chase: %w", err)
		}
		for _, a := range as {
			if a == nil {
				continue
			}
			stage, due := a.Due()
			if due.IsZero() {
				continue
			}
			it := ChaseItem{Appeal: *a, Stage: stage, Deadline: due}
			if which == OverdueNow {
				it.Seconds = int64(now.Sub(due).Seconds())
			} else {
				if now.Before(s.urgeOf(*a, stage, due)) {
					continue
				}
				it.Seconds = int64(due.Sub(now).Seconds())
			}
			items = append(items, it)
			if len(items) == limit {
				break
			}
		}
		if len(ids) < page {
			break
		}
	}
	var groups []ChaseGroup
	at := map[string]int{}
	for _, it := range items {
		org := ""
		if it.Appeal.Assignment != nil {
			org = it.Appeal.Assignment.Lead
		}
		i, ok := at[org]
		if !ok {
			i = len(groups)
			at[org] = i
			groups = append(groups, ChaseGroup{Organizer: org})
		}
		groups[i].Items = append(groups[i].Items, it)
	}
	if groups == nil {
		groups = []ChaseGroup{}
	}
	return groups, nil
}

// urgeOf is when the stage a waits for is urged.
func (s *Store) urgeOf(a Appeal, stage string, due time.Time) time.Time {
	for _, t := range timersOf(a, s.urge) {
		if t.Kind == Urge && t.Stage == stage {
			return t.Due
		}
	}
	return due
}
