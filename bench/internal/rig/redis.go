package rig

import (
	"bufio"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Redis is a private redis-server on a unix socket in a folder of its own.
type Redis struct {
	Cmd  *exec.Cmd
	Sock string
}

// StartRedis starts redis-server with its files in dir, persistence as
// persist says (e.g. "--appendonly", "yes", "--appendfsync", "always"),
// and returns once it accepts connections.
func StartRedis(dir string, persist ...string) (*Redis, error) {
	s := &Redis{Sock: filepath.Join(dir, "redis.sock")}
	args := append([]string{"--port", "0", "--unixsocket", s.Sock, "--unixsocketperm", "700",
		"--dir", dir, "--save", "", "--daemonize", "no"}, persist...)
	s.Cmd = exec.Command("redis-server", args...)
	out, err := s.Cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("redis-server: %w (apt-get install -y redis-server)", err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && strings.Contains(strings.ToLower(sc.Text()), "ready to accept connections") {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			return nil, errors.New("redis-server exited before it was ready")
		}
	case <-time.After(30 * time.Second):
		_ = s.Cmd.Process.Kill()
		return nil, errors.New("redis-server not ready after 30 s")
	}
	return s, nil
}

// Stop kills the server, frozen or not, and waits for it.
func (s *Redis) Stop() {
	_ = s.Cmd.Process.Signal(syscall.SIGCONT)
	_ = s.Cmd.Process.Kill()
	_ = s.Cmd.Wait()
}
