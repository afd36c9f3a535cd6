package web

import (
	"strings"

	"github.com/hotline12345/hotline/auth"
)

// RouteTable is the README's table of routes, in markdown: the method, the
// path with its query parameters, who may call it, what it does; in the
// routes' order.
func RouteTable(routes []Route) string {
	var b strings.Builder
	b.WriteString("| method | path | roles | what |\n|---|---|---|---|\n")
	for _, rt := range routes {
		path := rt.Path
		for i, q := range rt.Query {
			sep := "&"
			if i == 0 {
				sep = "?"
			}
			path += sep + q.Name + "="
		}
		b.WriteString("| " + rt.Method + " | `" + path + "` | " + tableCell(roleList(rt)) + " | " + tableCell(rt.Summary) + " |\n")
	}
	return b.String()
}

// roleList says who may call rt: "supervisor, admin, agent (own)".
func roleList(rt Route) string {
	if rt.Public {
		return "anyone, no token"
	}
	names := make([]string, len(rt.Roles))
	for i, r := range rt.Roles {
		names[i] = string(r)
		if rt.Own && (r == auth.Agent || r == auth.Visitor) {
			names[i] += " (own)"
		}
	}
	return strings.Join(names, ", ")
}

// tableCell keeps s in its cell of a markdown table.
func tableCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
