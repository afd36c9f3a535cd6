package config

import (
	"fmt"
	"slices"
	"strings"
)

// OtherEnv are variables with the prefix that are not settings: the
// command line's own.
var OtherEnv = []string{"HOTLINE_API", "HOTLINE_TOKEN"}

// UnknownEnv names the variables of environ (os.Environ's form) that
// carry the settings' prefix but are no setting, each with the closest
// setting's variable: a mistyped HOTLINE_SIP_LISTN would otherwise be
// ignored without a word, and the server run on the default.
func UnknownEnv(environ []string) []string {
	var c Config
	names := map[string]string{} // variable → key
	for _, l := range c.leaves() {
		names[l.env] = l.key
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || slices.Contains(OtherEnv, name) {
			continue
		}
		if _, ok := names[name]; ok {
			continue
		}
		best, bestD := "", len(name)
		for v := range names {
			if d := distance(name, v); d < bestD || d == bestD && v < best {
				best, bestD = v, d
			}
		}
		msg := name + " is no setting"
		if bestD <= max(3, len(name)/4) {
			msg += fmt.Sprintf("; did you mean %s (%s)?", best, names[best])
		}
		out = append(out, msg)
	}
	slices.Sort(out)
	return out
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
