package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/storage"
)

// mintTimeout bounds making a token in the store, embedded redis-server's
// start included.
const mintTimeout = 2 * time.Minute

// mintLocal makes a token directly in the store of the server that the
// configuration at path describes (the defaults when path is ""): the
// operator on the server's host needs no token to get one, as when the
// first one is lost. With the embedded Redis in use by a running server
// it goes through that server's socket; with none running it starts the
// embedded redis-server on the same data for the moment it takes.
func mintLocal(path string, spec auth.TokenSpec) (string, auth.Token, error) {
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return "", auth.Token{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), mintTimeout)
	defer cancel()
	store, err := storage.Open(ctx, storage.Options{
		URL: cfg.Redis.URL, DataDir: cfg.RedisDataDir(os.LookupEnv), RedisServerPath: cfg.Redis.ServerPath, Attach: true,
	})
	if err != nil {
		return "", auth.Token{}, err
	}
	defer store.Close()
	if store.Mode == storage.InProcess {
		return "", auth.Token{}, errors.New("this host has no redis-server, so the server keeps its state in its own memory, which no other process reaches: use the token it printed when it started, or install redis-server")
	}
	if err := store.Ping(ctx); err != nil {
		return "", auth.Token{}, fmt.Errorf("the server's Redis: %w", err)
	}
	return auth.NewStore(store.Client, auth.StoreOptions{}).CreateToken(ctx, spec)
}
