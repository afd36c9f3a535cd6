package asterisk

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestHangupSentAgainOnAClosedConnection: a DELETE that goes out on a
// kept-alive connection the server has just closed (it reads EOF, nothing
// else) is sent again on a new one, so a hang-up is not lost to the race
// between reusing a connection and its idle close.
func TestHangupSentAgainOnAClosedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns, deletes atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := conns.Add(1)
			go func(c net.Conn) {
				defer c.Close()
				rd := bufio.NewReader(c)
				for served := 0; ; served++ {
					req, err := http.ReadRequest(rd)
					if err != nil {
						return
					}
					if n == 1 && served == 1 {
						return // the first connection dies under its second request
					}
					if req.Method == http.MethodDelete {
						deletes.Add(1)
					}
					_, _ = c.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
				}
			}(c)
		}
	}()
	r := newREST("http://"+ln.Addr().String()+"/ari", "u", "p", 5*time.Second)
	defer r.close()
	ctx := context.Background()
	if err := r.hangup(ctx, "first", "normal"); err != nil {
		t.Fatal(err)
	}
	if err := r.hangup(ctx, "second", "normal"); err != nil {
		t.Fatalf("the hang-up on the closed connection: %v", err)
	}
	if conns.Load() != 2 || deletes.Load() != 2 {
		t.Errorf("%d connections, %d hang-ups answered; want 2 and 2", conns.Load(), deletes.Load())
	}
}
