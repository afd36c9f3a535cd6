package config

import (
	"reflect"
	"testing"
)

func TestSIPNumbers(t *testing.T) {
	c, err := Load("", envMap(map[string]string{"HOTLINE_SIP_NUMBERS": "12345, +86-10-12345"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"12345", "+86-10-12345"}; !reflect.DeepEqual(c.SIP.Numbers, want) {
		t.Errorf("sip.numbers %q, want %q", c.SIP.Numbers, want)
	}
	for _, numbers := range [][]string{nil, {""}, {"12 345"}, {"12345", "12345"}, {"sip:12345@x"}} {
		c := Default()
		c.SIP.Numbers = numbers
		if ke := onlyProblem(t, c.Validate()); ke.Key != "sip.numbers" {
			t.Errorf("%q: problem for %s", numbers, ke.Key)
		}
	}
}
