// Package measure holds what the load benchmarks read of a running
// hotline: its CPU time from /proc, its /metrics page, and quantiles of its
// histograms.
package measure

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ProcCPU is a process's user+system CPU time from /proc.
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration((utime + stime) / hz * float64(time.Second))
}

// Scrape reads the /metrics page at addr (host:port) into name{labels} →
// value.
func Scrape(addr string) (map[string]float64, error) {
	req, err := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	// Plain text: compressing the page costs the server under test more
	// than sending it over loopback.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			m[line[:i]] = v
		}
	}
	return m, nil
}

// Quantile estimates quantile q of the Prometheus histogram name (in
// seconds) by linear interpolation inside its bucket, as
// histogram_quantile does, rounded to round.
func Quantile(m map[string]float64, name string, q float64, round time.Duration) string {
	total := m[name+"_count"]
	if total == 0 {
		return "n/a"
	}
	type bucket struct{ le, n float64 }
	var bs []bucket
	for k, v := range m {
		if !strings.HasPrefix(k, name+"_bucket{le=\"") {
			continue
		}
		s := strings.TrimSuffix(strings.TrimPrefix(k, name+"_bucket{le=\""), "\"}")
		le, err := strconv.ParseFloat(s, 64)
		if err != nil {
			le = math.Inf(1)
		}
		bs = append(bs, bucket{le, v})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	rank := q * total
	prevLe, prevN := 0.0, 0.0
	for _, b := range bs {
		if b.n >= rank {
			if math.IsInf(b.le, 1) {
				return fmt.Sprintf("> %s", time.Duration(prevLe*float64(time.Second)))
			}
			frac := (rank - prevN) / math.Max(b.n-prevN, 1)
			v := prevLe + frac*(b.le-prevLe)
			return time.Duration(v * float64(time.Second)).Round(round).String()
		}
		prevLe, prevN = b.le, b.n
	}
	return "n/a"
}
