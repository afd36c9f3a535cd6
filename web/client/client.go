// Package client talks to hotline's HTTP API: the one client the CLI, the
// benchmarks and the tests share, so that all of them speak to the API
// the same way (bearer token, JSON, errors, pages).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hotline12345/hotline/web"
)

// Timeout bounds one request when the context has no deadline, so that a
// hung server does not hang a script.
const Timeout = 10 * time.Second

// maxReply bounds what one answer may hold.
const maxReply = 64 << 20

// Client is a hotline API at Base, called with Token. It is safe for
// concurrent use.
type Client struct {
	Base  string // "http://127.0.0.1:8080"
	Token string // a bearer token; empty sends none
	HTTP  *http.Client
}

// New checks base ("http://host:port") and returns a client for it.
func New(base, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("API address %q: want http://host:port", base)
	}
	return &Client{Base: strings.TrimRight(u.String(), "/"), Token: token, HTTP: &http.Client{}}, nil
}

// Error is an error the API answered.
type Error struct {
	Method, Path string
	Status       int
	// Msg is the API's own text, so that the user reads what the server
	// said.
	Msg string
}

func (e *Error) Error() string { return e.Msg }

// Do sends body as JSON (none when nil) and decodes a successful answer
// into into (ignored when nil; left as it was by a 202 or 204 without
// content). An answer of 300 or more is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, into any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, Timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("the hotline API at %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return fmt.Errorf("the hotline API at %s: %w", c.Base, err)
	}
	if resp.StatusCode >= 300 {
		var e web.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return &Error{Method: method, Path: path, Status: resp.StatusCode, Msg: e.Error}
	}
	if into == nil || len(data) == 0 && (resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusNoContent) {
		// 202 and 204 carry nothing: into is left as it was.
		return nil
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s %s: unreadable answer: %w", method, path, err)
	}
	return nil
}

// CopyTimeout bounds Copy: a month's report of a busy hotline is large.
const CopyTimeout = 10 * time.Minute

// Copy GETs path and copies a successful answer's body to w as it comes,
// whatever its size or type (a CSV report). An answer of 300 or more is
// an *Error.
func (c *Client) Copy(ctx context.Context, path string, w io.Writer) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CopyTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+path, nil)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("the hotline API at %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxReply))
		var e web.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("GET %s: %s", path, resp.Status)
		}
		return &Error{Method: http.MethodGet, Path: path, Status: resp.StatusCode, Msg: e.Error}
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("GET %s: the answer was cut short: %w", path, err)
	}
	return nil
}

// All reads every page of a list endpoint (path with its query, without
// cursor).
func All[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var out []T
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	cursor := ""
	for {
		p := path
		if cursor != "" {
			p += sep + "cursor=" + url.QueryEscape(cursor)
		}
		var page web.Page[T]
		if err := c.Do(ctx, http.MethodGet, p, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}
