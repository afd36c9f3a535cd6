package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hotline12345/hotline/ban"
)

func (a *api) listBans(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	bans, err := a.opts.Bans.List(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Soonest end first, as the bans' own order.
	page, err := pageOf(bans, limit, cursor, func(b ban.Ban) string {
		return fmt.Sprintf("%019d-%s", b.Until.UnixNano(), b.Subject)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, page)
}

// liftBan ends a ban at once, on every node.
func (a *api) liftBan(w http.ResponseWriter, r *http.Request) {
	subject := r.PathValue("subject")
	b, err := a.opts.Bans.Lift(r.Context(), subject)
	if errors.Is(err, ban.ErrInvalid) {
		// Not a subject at all is no ban either, as any unknown id is.
		writeError(w, http.StatusNotFound, fmt.Sprintf("no ban of %q: %v", subject, err))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, _ := PrincipalOf(r.Context())
	a.opts.Logger.Info().Str("subject", b.Subject).Str("by", p.User).Msg("ban lifted")
	a.reply(w, r, http.StatusOK, b)
}
