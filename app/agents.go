package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/ban"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/sip"
)

// directory lets the registrar check agents' phones against acd and tell
// distribution when a phone comes and goes.
type directory struct {
	store *acd.Store
	dist  *acd.Distributor
}

var (
	_ sip.Credentials = directory{}
	_ sip.Presence    = directory{}
)

func (d directory) Credential(ctx context.Context, user string) (sip.Credential, error) {
	c, err := d.store.Credential(ctx, user)
	if errors.Is(err, acd.ErrNotFound) {
		return sip.Credential{}, sip.ErrUnknownUser
	}
	if err != nil {
		return sip.Credential{}, err
	}
	return sip.Credential{AgentID: c.AgentID, HA1: c.HA1, HA1SHA256: c.HA1SHA256}, nil
}

// Registered and Unregistered ignore agents deleted meanwhile.
func (d directory) Registered(ctx context.Context, agentID string) error {
	if _, err := d.dist.Registered(ctx, agentID); err != nil && !errors.Is(err, acd.ErrNotFound) {
		return err
	}
	return nil
}

func (d directory) Unregistered(ctx context.Context, agentID string) error {
	if _, err := d.dist.Unregistered(ctx, agentID); err != nil && !errors.Is(err, acd.ErrNotFound) {
		return err
	}
	return nil
}

// provision creates the agents of the config file, or updates them to
// match it.
func provision(ctx context.Context, store *acd.Store, agents []config.Agent) error {
	for _, a := range agents {
		spec := acd.AgentSpec{ID: a.ID, Name: a.Name, SIPUser: a.SIPUser, Password: a.Password}
		for _, c := range a.Categories {
			spec.Categories = append(spec.Categories, appeal.Category(c))
		}
		if _, err := store.Put(ctx, spec); err != nil {
			return fmt.Errorf("agents: %s: %w", a.ID, err)
		}
	}
	return nil
}

// nonceSecret returns the secret every node signs digest nonces with,
// made once and kept in Redis so that a phone may answer another node's
// challenge.
func nonceSecret(ctx context.Context, rdb redis.UniversalClient) ([]byte, error) {
	const key = "hotline:{reg}:nonce-secret"
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := rdb.SetNX(ctx, key, hex.EncodeToString(b), 0).Err(); err != nil {
		return nil, fmt.Errorf("nonce secret: %w", err)
	}
	s, err := rdb.Get(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("nonce secret: %w", err)
	}
	return hex.DecodeString(s)
}

// nodeName is the configured node name, else the host name.
func nodeName(cfg config.Config) string {
	if cfg.Node != "" {
		return cfg.Node
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "hotline"
}

// agentsPart is distribution, ratings and the registrar of one node.
type agentsPart struct {
	store     *acd.Store
	dist      *acd.Distributor
	registrar *sip.Registrar
	// bans throttles authentication: the registrar's, and the HTTP API's
	// logins, which share it, so a source that attacked one is refused by
	// the other.
	bans *ban.Bans
}

func newAgents(ctx context.Context, cfg config.Config, rdb redis.UniversalClient, log zerolog.Logger) (*agentsPart, error) {
	store := acd.NewStore(rdb, acd.StoreOptions{Realm: cfg.SIP.Realm, Location: cfg.Location(), Reoffer: time.Duration(cfg.ACD.Reoffer)})
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := provision(pctx, store, cfg.Agents); err != nil {
		return nil, err
	}
	dist := &acd.Distributor{Store: store, Node: nodeName(cfg), Log: log}
	secret, err := nonceSecret(pctx, rdb)
	if err != nil {
		return nil, err
	}
	bans, err := ban.New(ban.Options{
		Redis:       rdb,
		MaxFailures: cfg.Bans.MaxFailures,
		Window:      time.Duration(cfg.Bans.Window),
		Duration:    time.Duration(cfg.Bans.Duration),
		Allow:       cfg.BanAllow(),
		Logger:      log,
	})
	if err != nil {
		return nil, err
	}
	dir := directory{store: store, dist: dist}
	reg, err := sip.NewRegistrar(sip.RegistrarOptions{
		Realm: cfg.SIP.Realm, Credentials: dir, Presence: dir, Redis: rdb, Secret: secret,
		Algorithms: cfg.SIP.DigestAlgorithms, Bans: bans, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return &agentsPart{store: store, dist: dist, registrar: reg, bans: bans}, nil
}

// run runs distribution and the registrar's expiry sweep until ctx ends.
func (p *agentsPart) run(ctx context.Context, log zerolog.Logger) (wait func()) {
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		if err := p.dist.Run(ctx); err != nil {
			log.Error().Err(err).Msg("acd")
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		if err := p.registrar.Run(ctx); err != nil {
			log.Error().Err(err).Msg("registrar")
		}
	}()
	return func() { <-done; <-done }
}

func serviceOptions(cfg config.Config) ivr.ServiceOptions {
	return ivr.ServiceOptions{
		RingTimeout:   time.Duration(cfg.ACD.RingTimeout),
		WrapUp:        time.Duration(cfg.ACD.WrapUp),
		MaxMissed:     cfg.ACD.MaxMissed,
		MaxWait:       time.Duration(cfg.ACD.MaxWait),
		PositionEvery: time.Duration(cfg.ACD.PositionEvery),
		Rating: ivr.RatingOptions{
			PraiseKey:    rune(cfg.Rating.PraiseKey[0]),
			BadReviewKey: rune(cfg.Rating.BadReviewKey[0]),
			Tries:        cfg.Rating.Tries,
			Timeout:      time.Duration(cfg.Rating.Timeout),
		},
	}
}
