package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotline12345/hotline/internal/sipptest"
)

type sippResult struct {
	ok, failed int
	prefix     string        // the callers' numbers start with it
	cpu        time.Duration // the process's user and system time
}

// callerPrefix is the From user of sipp process i's callers; sipp appends
// the call number, so every caller of a run has its own number.
func callerPrefix(i int) string { return fmt.Sprintf("138%02d", i) }

// runSipps runs the citizens' calls, split over o.sipps processes at o.nice.
func runSipps(o options, wav, target, dir string) ([]sippResult, error) {
	results := make([]sippResult, o.sipps)
	errs := make([]error, o.sipps)
	var wg sync.WaitGroup
	// Every caller may wait through the whole run in the worst case.
	timeout := time.Duration(float64(o.calls)/o.rate*float64(time.Second)) + 10*time.Minute
	for i := range o.sipps {
		sc := scenario{
			Caller:     callerPrefix(i),
			Category:   rune(o.categories[i%len(o.categories)]),
			Consent:    '2', // no return visit: no offer to leave the queue for one
			PressFrom:  o.pressFrom,
			PressEvery: o.pressEvery,
			Presses:    o.presses,
			LastWait:   time.Minute,
			PraiseKey:  '1',
			WAV:        wav,
		}
		xml, err := sc.render()
		if err != nil {
			return nil, err
		}
		file := filepath.Join(dir, fmt.Sprintf("uac%d.xml", i))
		if err := os.WriteFile(file, []byte(xml), 0o644); err != nil {
			return nil, err
		}
		mp, err := sipptest.FreeMediaPort()
		if err != nil {
			return nil, err
		}
		calls := o.calls / o.sipps
		if i < o.calls%o.sipps {
			calls++
		}
		args := []string{
			"-sf", file, "-s", "12345", target, "-i", "127.0.0.1", "-p", "0",
			"-mp", strconv.Itoa(mp),
			"-m", strconv.Itoa(calls), "-l", strconv.Itoa(calls),
			"-r", strconv.FormatFloat(o.rate/float64(o.sipps), 'f', 2, 64), "-rp", "1000",
			"-nostdin", "-max_socket", "8192",
			"-timeout", strconv.Itoa(int(timeout.Seconds())) + "s", "-timeout_error",
			"-trace_stat", "-stf", filepath.Join(o.out, fmt.Sprintf("sipp%d.csv", i)), "-fd", "5",
			"-trace_err", "-error_file", filepath.Join(o.out, fmt.Sprintf("sipp%d-errors.log", i)),
		}
		results[i].prefix = sc.Caller
		wg.Go(func() {
			cmd := exec.Command("nice", append([]string{"-n", strconv.Itoa(o.nice), "sipp"}, args...)...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				errs[i] = fmt.Errorf("sipp: %w", err)
				return
			}
			results[i].cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			_ = os.WriteFile(filepath.Join(o.out, fmt.Sprintf("sipp%d.out", i)), out, 0o644)
			results[i].ok, results[i].failed = lastCounts(filepath.Join(o.out, fmt.Sprintf("sipp%d.csv", i)))
		})
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// lastCounts reads the cumulative successful and failed calls from the
// last line of a sipp -trace_stat file.
func lastCounts(path string) (ok, failed int) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var header, last []string
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ";")
		if header == nil {
			header = fields
			continue
		}
		last = fields
	}
	for i, name := range header {
		if i >= len(last) {
			break
		}
		n, _ := strconv.Atoi(last[i])
		switch name {
		case "SuccessfulCall(C)":
			ok = n
		case "FailedCall(C)":
			failed = n
		}
	}
	return ok, failed
}
