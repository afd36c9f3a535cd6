package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/hotline12345/hotline/trunk"
)

// TrunkStore is what the API reads of the carriers' trunks.
type TrunkStore interface {
	Status(ctx context.Context) ([]trunk.Status, error)
	Events(ctx context.Context, limit int, cursor string) ([]trunk.Transition, string, error)
}

// TrunkList is the trunks, in their order of preference for outbound
// calls.
type TrunkList struct {
	Trunks []trunk.Status `json:"trunks"`
}

func (a *api) listTrunks(w http.ResponseWriter, r *http.Request) {
	list := TrunkList{Trunks: []trunk.Status{}}
	if a.opts.Trunks != nil {
		st, err := a.opts.Trunks.Status(r.Context())
		if err != nil {
			a.fail(w, r, err)
			return
		}
		list.Trunks = append(list.Trunks, st...)
	}
	a.reply(w, r, http.StatusOK, list)
}

func (a *api) trunkEvents(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	page := Page[trunk.Transition]{Items: []trunk.Transition{}}
	if a.opts.Trunks != nil {
		evs, next, err := a.opts.Trunks.Events(r.Context(), limit, cursor)
		if errors.Is(err, trunk.ErrInvalid) {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		page.Items, page.NextCursor = append(page.Items, evs...), next
	}
	a.reply(w, r, http.StatusOK, page)
}
