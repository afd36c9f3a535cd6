package config

import (
	"net/netip"
	"slices"
	"testing"
)

// A trunk's sources are networks, a bare address the network of that
// address alone.
func TestTrunkSourceNetworks(t *testing.T) {
	tr := Trunk{Sources: []string{"192.0.2.0/24", " 198.51.100.7", "2001:db8::/32"}}
	want := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("2001:db8::/32"),
	}
	if got := tr.SourceNetworks(); !slices.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
	if got := (Trunk{}).SourceNetworks(); len(got) != 0 {
		t.Errorf("no sources: %v", got)
	}
}
