package config

import (
	"errors"
	"fmt"
	"regexp"
)

// numberPattern is a number, or a SIP user of the usual characters: what
// a trunk puts in a Request-URI.
var numberPattern = regexp.MustCompile(`^[0-9A-Za-z+*#._()-]{1,64}$`)

// checkNumbers accepts a non-empty list of numbers.
func checkNumbers(numbers []string) error {
	if len(numbers) == 0 {
		return errors.New("empty: list the numbers the hotline answers, such as 12345")
	}
	seen := map[string]bool{}
	for _, n := range numbers {
		switch {
		case !numberPattern.MatchString(n):
			return fmt.Errorf("%q: want a number, such as 12345 or +8610012345", n)
		case seen[n]:
			return fmt.Errorf("%q: listed twice", n)
		}
		seen[n] = true
	}
	return nil
}
