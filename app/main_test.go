package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/app"
	"github.com/hotline12345/hotline/config"
)

// childConfigEnv, set to a configuration file, makes the test binary run
// one hotline on it instead of the tests, so that a test runs hotline as
// a process of its own and can kill it with SIGKILL.
const childConfigEnv = "HOTLINE_APP_TEST_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childConfigEnv); path != "" {
		os.Exit(runChild(path))
	}
	os.Exit(m.Run())
}

// childAddrs is the line a child prints on standard output once it serves.
type childAddrs struct {
	SIP  string `json:"sip"`
	HTTP string `json:"http"`
}

// runChild runs hotline on the configuration at path until SIGINT or
// SIGTERM, logging JSON to standard error.
func runChild(path string) int {
	cfg, err := config.Load(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	ctx, cancel := context.WithCancelCause(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		cancel(app.ErrInterrupt)
	}()
	err = app.Run(ctx, app.Options{Config: cfg, Logger: log, Ready: func(a app.Addrs) {
		_ = json.NewEncoder(os.Stdout).Encode(childAddrs{SIP: a.SIP.String(), HTTP: a.HTTP.String()})
	}})
	if err != nil {
		log.Error().Err(err).Msg("hotline stopped")
		return 1
	}
	return 0
}
