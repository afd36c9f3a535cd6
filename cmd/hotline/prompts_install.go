package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/hotline12345/hotline/prompts"
)

const promptsInstallUsage = "usage: hotline prompts install --asterisk-sounds DIR"

// promptsInstall writes the embedded catalog's audio into Asterisk's sounds
// folder, where the ARI backend's sound:hotline/<id> URIs and the
// dialplan's Playback(hotline/app_unavailable) find it.
func promptsInstall(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("prompts install", flag.ContinueOnError)
	dir := fs.String("asterisk-sounds", "", "Asterisk's sounds folder, usually /var/lib/asterisk/sounds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{2, fmt.Sprintf("prompts install takes no arguments, got %q\n%s", fs.Args(), promptsInstallUsage)}
	}
	// No default folder: the command writes into a system folder, which
	// the operator names.
	if *dir == "" {
		return exitError{2, "--asterisk-sounds is needed\n" + promptsInstallUsage}
	}
	c, err := prompts.Default()
	if err != nil {
		return err
	}
	written, err := prompts.WriteAsteriskSounds(c, *dir)
	if err != nil {
		return err
	}
	// Every language gets every prompt: one the catalog lacks in a
	// language is written there in the default one.
	for _, lang := range c.Langs() {
		fmt.Fprintf(stdout, "%s: %d prompts\n", lang, len(c.IDs()))
	}
	fmt.Fprintf(stdout, "%d files written under %s\n", written, *dir)
	return nil
}
