package config

import (
	"errors"
	"fmt"
	"strings"
)

// Errors that Load wraps in a KeyError.
var (
	// ErrUnknownKey: the file has a key that no setting has, most often a
	// typing mistake that would otherwise leave the default in force.
	ErrUnknownKey = errors.New("unknown key")
	// ErrDuplicateKey: the file gives one key twice in a mapping.
	ErrDuplicateKey = errors.New("key given twice")
	// ErrConflictingEnv: two environment variables for one setting (a
	// well-known name such as REDIS_URL and its HOTLINE_ name) disagree.
	ErrConflictingEnv = errors.New("set differently by two environment variables")
)

// Messages for values that cannot be read.
var (
	errWantDuration    = errors.New("want a duration such as 30s or 5m")
	errWantNumber      = errors.New("want a whole number")
	errWantBool        = errors.New("want true or false")
	errWantList        = errors.New("want a list of values")
	errWantValue       = errors.New("want a single value")
	errWantMapping     = errors.New("want a mapping of keys to values")
	errMergeKey        = errors.New("merge keys (<<) are not supported: write the keys out")
	errPortRangeSyntax = errors.New("want two port numbers such as 10000-20000")
)

// KeyError is a problem with one setting. Load and Validate return their
// problems joined (errors.Join), one KeyError each; find them with
// errors.As, or all of them through Unwrap() []error.
type KeyError struct {
	// Key is the setting's YAML key, dotted: "sip.listen". It is empty for
	// a problem with the file as a whole.
	Key string
	// Source is where the offending value came from: the file's path or the
	// environment variable's name. Empty when not known, as for a Config
	// built in code and given to Validate.
	Source string
	// Line is the line of the file, when Source is the file.
	Line int
	// Err says what is wrong, with the value when there is one.
	Err error
}

// Error reads like `config.yaml:7: sip.listen: "abc": missing port`.
func (e *KeyError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the cause.
func (e *KeyError) Unwrap() error { return e.Err }

// keyErrors lists the KeyErrors in err, however deeply joined.
func keyErrors(err error) []*KeyError {
	var out []*KeyError
	var walk func(error)
	walk = func(err error) {
		if ke, ok := err.(*KeyError); ok {
			out = append(out, ke)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}
