package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/journal"
)

// outageMode is how a node serves while Redis does not answer, as
// /healthz names it: it keeps answering calls, and what callers say and
// are told goes to the journal. A node that stopped taking calls instead
// would send them nowhere better, since every node shares the one Redis
// (a Sentinel or Cluster outage is every node's), and a caller turned
// away leaves no trace to call back; answered, the caller hears an
// apology and that they will be called back, and the call's record,
// with their number, is journaled for it.
const outageMode = "journal"

// openJournal opens the journal under the state directory and the keeper
// that writes through it; without a state directory the journal is kept
// in memory, and nothing survives a restart during an outage.
func openJournal(cfg config.Config, appeals *appeal.Store, calls *calllog.Store, ratings *evaluation.Store,
	ping func(context.Context) error, reg prometheus.Registerer, log zerolog.Logger,
) (*journal.Keeper, func(), error) {
	dir := cfg.JournalDir(nil)
	if dir == "" {
		log.Warn().Msg("journal kept in memory (no storage.dir): what callers say during a Redis outage is lost if hotline stops before Redis answers again")
	}
	j, err := journal.Open(journal.Options{Dir: dir, MaxSize: int64(cfg.Journal.MaxSizeMB) << 20, Log: log})
	if err != nil {
		return nil, nil, err
	}
	if dir != "" {
		log.Info().Str("path", j.Path()).Int("entries", j.Len()).Msg("journal")
	}
	k := journal.NewKeeper(journal.KeeperOptions{
		Journal: j, Appeals: appeals, Calls: calls, Ratings: ratings, Ping: ping,
		Deadline: time.Duration(cfg.Journal.Deadline), Block: int64(cfg.Journal.AppealNumbers),
		OutageAfter: time.Duration(cfg.Journal.OutageAfter),
		Registerer:  reg, Log: log,
	})
	return k, func() {
		if err := j.Close(); err != nil {
			log.Warn().Err(err).Msg("journal: close")
		}
	}, nil
}

// reviewsThroughJournal is the rating store as the API uses it, its
// reviews written through the keeper: a supervisor's decision taken while
// Redis does not answer is journaled (the API answers 202).
type reviewsThroughJournal struct {
	*evaluation.Store
	keeper *journal.Ratings
}

func (r reviewsThroughJournal) Review(ctx context.Context, id string, status evaluation.ComplaintStatus, by, note string) (evaluation.Complaint, error) {
	return r.keeper.Review(ctx, id, status, by, note)
}
