package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/trunk"
	"github.com/hotline12345/hotline/web"
)

const trunksUsage = `usage: hotline trunks [--api URL] [list | events] [--json]

commands:
  list [--json]      the carriers' trunks in their order for outbound calls
                     (the default): state and since when, the last OPTIONS
                     probe, channels in and out of the limit, the last 15
                     minutes' calls, failures and answer-seizure ratio
  events [--json]    the trunks' changes of state, newest first: their
                     health (up, down: probes failed in a row,
                     maintenance: 503) and their registration with the
                     carrier (registered, failing, not registering)
` + apiHelp

// trunksCmd runs "hotline trunks".
func trunksCmd(a *cli, args []string) error {
	cmd, rest, err := a.command("trunks", trunksUsage, withDefault(args, "list", "list", "events"))
	if err != nil || cmd == "" {
		return err
	}
	switch cmd {
	case "list":
		return a.listTrunks(rest)
	case "events":
		return a.trunkEvents(rest)
	}
	return usageError("trunks: unknown command %q\n%s", cmd, trunksUsage)
}

func (a *cli) listTrunks(args []string) error {
	fs := a.flags("list")
	asJSON := fs.Bool("json", false, "the API's answer, as JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var list web.TrunkList
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/trunks", nil, &list); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(list)
	}
	if len(list.Trunks) == 0 {
		_, err := fmt.Fprintln(a.stdout, "no trunk is configured (trunks in the configuration)")
		return err
	}
	var tb table
	tb.add("TRUNK", "STATE", "SINCE", "LAST PROBE", "IN", "OUT", "LIMIT", "CALLS 15M", "FAILED", "ASR", "REGISTRATION", "ADDRESS")
	for _, s := range list.Trunks {
		since := "-"
		if s.Since != nil {
			since = s.Since.Format("2006-01-02 15:04:05")
		}
		r := s.Recent.Total
		tb.add(s.Name, string(s.State), since, probeText(s.LastProbe), strconv.Itoa(s.Channels.In), strconv.Itoa(s.Channels.Out),
			strconv.Itoa(s.Channels.Limit), strconv.FormatInt(r.Calls, 10), strconv.FormatInt(r.Failed, 10), ratio(r.ASR),
			registrationText(s), s.Transport+":"+s.Address)
	}
	return tb.write(a.stdout)
}

// registrationText says how a trunk's registration stands, briefly:
// "registered until 15:04:05", "failing: refused with 503 (3 attempts)".
func registrationText(s trunk.Status) string {
	text := strings.ReplaceAll(string(s.Registration), "_", " ")
	r := s.Register
	switch {
	case r == nil:
	case s.Registration == trunk.Registered && r.Until != nil:
		text += " until " + r.Until.Format(time.TimeOnly)
	case s.Registration == trunk.RegistrationFailing:
		text += ": " + r.Reason + " (" + strconv.Itoa(r.Attempts) + " attempts)"
	}
	return text
}

// probeText says what a probe got, briefly: "200 in 12.3 ms".
func probeText(p *trunk.Probe) string {
	switch {
	case p == nil:
		return "-"
	case p.Error != "":
		return p.Error
	case p.RTTMillis != nil:
		return fmt.Sprintf("%d in %.1f ms", p.Status, *p.RTTMillis)
	}
	return strconv.Itoa(p.Status)
}

// ratio shows a ratio as a percentage; "-" when there is none (no call).
func ratio(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
}

func (a *cli) trunkEvents(args []string) error {
	return getShown(a, "events", "/api/v1/trunks/events?limit=100", args, func(page web.Page[trunk.Transition]) error {
		return a.writeTrunkEvents(page.Items)
	})
}

// writeTrunkEvents shows the trunks' events as a table.
func (a *cli) writeTrunkEvents(items []trunk.Transition) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(a.stdout, "no event: no trunk has changed state")
		return err
	}
	var tb table
	tb.add("AT", "TRUNK", "KIND", "FROM", "TO", "PROBE", "IN A ROW", "NODE")
	for _, ev := range items {
		if ch := ev.Registration; ev.Kind == trunk.KindRegistration && ch != nil {
			outcome, row := "-", "-"
			switch {
			case ch.Reason != "":
				outcome = ch.Reason
			case ch.Status != 0:
				outcome = strconv.Itoa(ch.Status)
			}
			if ch.Attempts > 0 {
				row = strconv.Itoa(ch.Attempts) + " failed"
			}
			tb.add(ev.At.Format(time.DateTime), ev.Trunk, string(ev.Kind), string(ch.From), string(ch.To), outcome, row, dash(ev.Node))
			continue
		}
		row := "-"
		switch {
		case ev.Failures > 0:
			row = strconv.Itoa(ev.Failures) + " failed"
		case ev.Successes > 0:
			row = strconv.Itoa(ev.Successes) + " alive"
		}
		tb.add(ev.At.Format(time.DateTime), ev.Trunk, string(ev.Kind), string(ev.From), string(ev.To), probeText(&ev.Probe), row, dash(ev.Node))
	}
	return tb.write(a.stdout)
}
