package appeal_test

import (
	"errors"
	"testing"
	"time"
	_ "time/tzdata" // the DST case needs America/New_York on any machine

	"github.com/hotline12345/hotline/appeal"
)

func TestClocks(t *testing.T) {
	cst := appeal.DefaultLocation()
	at := func(year int, month time.Month, day, hour, minute int) time.Time {
		return time.Date(year, month, day, hour, minute, 0, 0, cst)
	}
	// 21:30 on the last day of November: several deadlines fall in
	// December.
	created := at(2026, 11, 30, 21, 30)
	tests := []struct {
		cat                      appeal.Category
		peak                     bool
		dispatch, sign, feedback time.Time
	}{
		{appeal.Emergency, false, at(2026, 11, 30, 22, 30), at(2026, 11, 30, 22, 45), at(2026, 12, 1, 0, 30)},
		{appeal.Emergency, true, at(2026, 11, 30, 22, 30), at(2026, 11, 30, 22, 45), at(2026, 12, 1, 0, 30)},
		{appeal.Livelihood, false, at(2026, 11, 30, 23, 30), at(2026, 12, 1, 0, 0), at(2026, 12, 1, 23, 30)},
		{appeal.Livelihood, true, at(2026, 11, 30, 23, 30), at(2026, 12, 1, 0, 0), at(2026, 12, 1, 23, 30)},
		{appeal.General, false, at(2026, 12, 1, 21, 30), at(2026, 12, 2, 21, 30), at(2026, 12, 8, 21, 30)},
		{appeal.General, true, at(2026, 12, 2, 21, 30), at(2026, 12, 3, 21, 30), at(2026, 12, 9, 21, 30)},
		{appeal.Complex, false, at(2026, 12, 1, 21, 30), at(2026, 12, 2, 21, 30), at(2026, 12, 16, 21, 30)},
		{appeal.Complex, true, at(2026, 12, 2, 21, 30), at(2026, 12, 3, 21, 30), at(2026, 12, 17, 21, 30)},
	}
	for _, tt := range tests {
		name := string(tt.cat)
		if tt.peak {
			name += "/peak"
		}
		t.Run(name, func(t *testing.T) {
			// The creation time may come in any zone; the clocks are the
			// hotline's.
			d, s, f := appeal.Clocks(tt.cat, created.UTC(), tt.peak, cst)
			if !d.Equal(tt.dispatch) || !s.Equal(tt.sign) || !f.Equal(tt.feedback) {
				t.Fatalf("got dispatch %v sign %v feedback %v\nwant dispatch %v sign %v feedback %v",
					d, s, f, tt.dispatch, tt.sign, tt.feedback)
			}
			for _, got := range []time.Time{d, s, f} {
				if got.Location() != cst {
					t.Fatalf("%v is not in the hotline's zone", got)
				}
			}
		})
	}
}

func TestClocksAcrossYearEnd(t *testing.T) {
	cst := appeal.DefaultLocation()
	created := time.Date(2026, 12, 31, 8, 0, 0, 0, cst)
	d, s, f := appeal.Clocks(appeal.Complex, created, true, cst)
	if want := time.Date(2027, 1, 2, 8, 0, 0, 0, cst); !d.Equal(want) {
		t.Errorf("dispatch %v, want %v", d, want)
	}
	if want := time.Date(2027, 1, 3, 8, 0, 0, 0, cst); !s.Equal(want) {
		t.Errorf("sign %v, want %v", s, want)
	}
	if want := time.Date(2027, 1, 17, 8, 0, 0, 0, cst); !f.Equal(want) {
		t.Errorf("feedback %v, want %v", f, want)
	}
}

// Natural days are calendar days in the hotline's zone: across a
// daylight-saving change a week is 167 or 169 hours, not 168.
func TestClocksNaturalDaysAcrossDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// Clocks go forward on 8 March 2026.
	created := time.Date(2026, 3, 6, 12, 0, 0, 0, ny)
	d, _, f := appeal.Clocks(appeal.General, created, false, ny)
	if want := time.Date(2026, 3, 7, 12, 0, 0, 0, ny); !d.Equal(want) {
		t.Fatalf("dispatch %v, want %v", d, want)
	}
	if want := time.Date(2026, 3, 14, 12, 0, 0, 0, ny); !f.Equal(want) {
		t.Fatalf("feedback %v, want %v (same wall-clock time 7 dates later)", f, want)
	}
	if got := f.Sub(d); got != 167*time.Hour {
		t.Fatalf("a natural week across the change is %v, want 167h", got)
	}
	// Hour limits are elapsed time: one hour after 01:30 EST that night is
	// 03:30 EDT.
	night := time.Date(2026, 3, 8, 1, 30, 0, 0, ny)
	d, _, _ = appeal.Clocks(appeal.Emergency, night, false, ny)
	if want := time.Date(2026, 3, 8, 3, 30, 0, 0, ny); !d.Equal(want) {
		t.Fatalf("emergency dispatch %v, want %v", d, want)
	}
}

func TestClocksDefaultLocation(t *testing.T) {
	created := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	d, _, _ := appeal.Clocks(appeal.Emergency, created, false, nil)
	if _, offset := d.Zone(); offset != 8*60*60 {
		t.Fatalf("nil location gave offset %d, want +08:00", offset)
	}
	if !d.Equal(created.Add(time.Hour)) {
		t.Fatalf("dispatch %v", d)
	}
}

func TestClocksUnknownCategory(t *testing.T) {
	d, s, f := appeal.Clocks("urgent", time.Now(), false, nil)
	if !d.IsZero() || !s.IsZero() || !f.IsZero() {
		t.Fatalf("unknown category gave %v %v %v", d, s, f)
	}
}

func TestParseCategory(t *testing.T) {
	for _, c := range appeal.Categories() {
		got, err := appeal.ParseCategory(string(c))
		if err != nil || got != c {
			t.Errorf("ParseCategory(%q) = %q, %v", c, got, err)
		}
	}
	for _, s := range []string{"", "Emergency", "urgent", " general"} {
		if _, err := appeal.ParseCategory(s); !errors.Is(err, appeal.ErrUnknownCategory) {
			t.Errorf("ParseCategory(%q): %v, want ErrUnknownCategory", s, err)
		}
	}
}
