package sip

import (
	"maps"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// newParser is sipgo's parser with its From, To, Contact and Via parsers
// followed by a tidy-up. RFC 3261's grammar allows white space around the
// ";" and "=" of header parameters (§25.1, SEMI and EQUAL; RFC 4475
// §3.1.1.1 has a valid INVITE full of it), and sipgo keeps it in the
// parameters' names and values: a From tag written "; tag = x" is then no
// tag to sipgo's transaction matching, nor to ours. The parser is the
// user agent's own; sipgo's defaults are copied, not changed.
func newParser() *sip.Parser {
	parsers := maps.Clone(sip.DefaultHeadersParser())
	for _, name := range []string{"from", "f", "to", "t", "contact", "m", "via", "v"} {
		parse := parsers[name]
		if parse == nil {
			continue
		}
		parsers[name] = func(name []byte, data string) (sip.Header, error) {
			h, err := parse(name, data)
			if err == nil {
				tidyHeader(h)
			}
			return h, err
		}
	}
	return sip.NewParser(sip.WithHeadersParsers(parsers))
}

// tidyHeader trims the white space around a parsed header's host and
// parameters.
func tidyHeader(h sip.Header) {
	switch h := h.(type) {
	case *sip.FromHeader:
		h.Address.Host = strings.TrimSpace(h.Address.Host)
		h.Params = tidyParams(h.Params)
	case *sip.ToHeader:
		h.Address.Host = strings.TrimSpace(h.Address.Host)
		h.Params = tidyParams(h.Params)
	case *sip.ContactHeader:
		h.Address.Host = strings.TrimSpace(h.Address.Host)
		h.Params = tidyParams(h.Params)
	case *sip.ViaHeader:
		h.Transport = strings.TrimSpace(h.Transport)
		h.Host = strings.TrimSpace(h.Host)
		h.Params = tidyParams(h.Params)
	}
}

// tidyParams trims each parameter's name and value, and drops the empty
// ones an extra ";" leaves.
func tidyParams(params sip.HeaderParams) sip.HeaderParams {
	out := params[:0]
	for _, kv := range params {
		kv.K, kv.V = strings.TrimSpace(kv.K), strings.TrimSpace(kv.V)
		if kv.K != "" {
			out = append(out, kv)
		}
	}
	return out
}
