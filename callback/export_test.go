package callback

import (
	"context"
	"encoding/json"
)

// AddVisit puts a waiting visit in the worklist as a decision would,
// without an appeal: for benchmarks.
func (s *Store) AddVisit(ctx context.Context, v Visit) error {
	doc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return decideScript.Run(ctx, s.rdb, []string{s.decisions, s.visits, s.worklist, s.log, s.counts},
		v.ID, string(Visited), v.ID, string(doc), worklistScore(v), `{"what":"visit"}`, MaxLog).Err()
}
