package aritest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// handler serves one ARI operation.
type handler func(rq *request) reply

// route is one path of the ARI resource tree with its operations.
type route struct {
	segs    []string // literal segments, or "{name}" for a path parameter
	methods map[string]handler
}

// methodOrder is the order Asterisk lists methods in Allow (its
// ast_http_method enum), after OPTIONS.
var methodOrder = []string{http.MethodGet, http.MethodPost, "HEAD", http.MethodPut, http.MethodDelete}

func (s *Server) routeTable() []*route {
	var routes []*route
	add := func(method, pattern string, h handler) {
		segs := strings.Split(strings.Trim(pattern, "/"), "/")
		if pattern == "/" {
			segs = nil
		}
		for _, rt := range routes {
			if strings.Join(rt.segs, "/") == strings.Join(segs, "/") {
				if h != nil {
					rt.methods[method] = h
				}
				return
			}
		}
		rt := &route{segs: segs, methods: map[string]handler{}}
		if h != nil {
			rt.methods[method] = h
		}
		routes = append(routes, rt)
	}
	// The root has no operation: GET /ari is 405 with "Allow: OPTIONS".
	add("", "/", nil)
	add(http.MethodGet, "/asterisk/info", s.getInfo)
	add(http.MethodGet, "/asterisk/ping", s.ping)
	add(http.MethodGet, "/applications", s.listApplications)
	add(http.MethodGet, "/applications/{applicationName}", s.getApplication)
	add(http.MethodPut, "/applications/{applicationName}/eventFilter", s.filterApplication)
	add(http.MethodGet, "/channels", s.listChannels)
	add(http.MethodPost, "/channels", s.originate)
	add(http.MethodGet, "/channels/{channelId}", s.getChannel)
	add(http.MethodPost, "/channels/{channelId}", s.originate)
	add(http.MethodDelete, "/channels/{channelId}", s.hangup)
	add(http.MethodPost, "/channels/{channelId}/answer", s.answer)
	add(http.MethodPost, "/channels/{channelId}/ring", s.ring)
	add(http.MethodDelete, "/channels/{channelId}/ring", s.ring)
	add(http.MethodPost, "/channels/{channelId}/moh", s.musicOnHold)
	add(http.MethodDelete, "/channels/{channelId}/moh", s.musicOnHold)
	add(http.MethodPost, "/channels/{channelId}/play", s.play)
	add(http.MethodPost, "/channels/{channelId}/play/{playbackId}", s.play)
	add(http.MethodGet, "/channels/{channelId}/variable", s.getVariable)
	add(http.MethodPost, "/channels/{channelId}/variable", s.setVariable)
	add(http.MethodPost, "/channels/{channelId}/dtmf", s.sendDTMF)
	add(http.MethodGet, "/playbacks/{playbackId}", s.getPlayback)
	add(http.MethodDelete, "/playbacks/{playbackId}", s.stopPlayback)
	add(http.MethodPost, "/playbacks/{playbackId}/control", s.controlPlayback)
	add(http.MethodGet, "/bridges", s.listBridges)
	add(http.MethodPost, "/bridges", s.createBridge)
	add(http.MethodGet, "/bridges/{bridgeId}", s.getBridge)
	add(http.MethodPost, "/bridges/{bridgeId}", s.createBridge)
	add(http.MethodDelete, "/bridges/{bridgeId}", s.destroyBridge)
	add(http.MethodPost, "/bridges/{bridgeId}/addChannel", s.addChannel)
	add(http.MethodPost, "/bridges/{bridgeId}/removeChannel", s.removeChannel)
	add(http.MethodGet, "/endpoints", s.listEndpoints)
	add(http.MethodGet, "/endpoints/{tech}/{resource}", s.getEndpoint)
	return routes
}

// match finds the route for path (below /ari) and its path parameters.
func (s *Server) match(path string) (*route, map[string]string) {
	var segs []string
	if path != "" {
		segs = strings.Split(strings.TrimPrefix(path, "/"), "/")
	}
	for _, rt := range s.routes {
		if len(rt.segs) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i, seg := range rt.segs {
			if strings.HasPrefix(seg, "{") {
				if segs[i] == "" {
					ok = false
					break
				}
				params[strings.Trim(seg, "{}")] = segs[i]
			} else if seg != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return rt, params
		}
	}
	return nil, nil
}

func (rt *route) allow() string {
	allow := []string{http.MethodOptions}
	for _, m := range methodOrder {
		if rt.methods[m] != nil {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ",")
}

// ServeHTTP serves ARI: authentication first, as res_ari does, then the
// resource, then the body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "Asterisk/22.10.1")
	if r.URL.Path == "/ari/events" {
		s.serveEvents(w, r)
		return
	}
	if s.dropRequest(w, r) {
		return
	}
	if r.URL.Path != "/ari" && !strings.HasPrefix(r.URL.Path, "/ari/") {
		writeHTML(w, http.StatusNotFound, "Not Found", "The requested URL was not found on this server.")
		return
	}
	if !s.authorized(r) {
		s.writeReply(w, unauthorized())
		return
	}
	rt, params := s.match(strings.TrimPrefix(r.URL.Path, "/ari"))
	if rt == nil {
		s.writeReply(w, fail(http.StatusNotFound, "Resource not found"))
		return
	}
	if r.Method == http.MethodOptions {
		s.writeReply(w, reply{status: http.StatusNoContent, headers: [][2]string{{"Allow", rt.allow()}}})
		return
	}
	h := rt.methods[r.Method]
	if h == nil {
		rep := fail(http.StatusMethodNotAllowed, "Invalid method")
		rep.headers = [][2]string{{"Allow", rt.allow()}}
		s.writeReply(w, rep)
		return
	}
	rq, err := parseRequest(r, params)
	if err != nil {
		s.writeReply(w, fail(http.StatusBadRequest, "Error parsing request body"))
		return
	}
	s.writeReply(w, h(rq))
}

// authorized checks api_key=user:pass in the query, or else basic auth;
// a wrong api_key fails even with good basic auth, as in res_ari.
func (s *Server) authorized(r *http.Request) bool {
	if key, ok := r.URL.Query()["api_key"]; ok {
		user, pass, _ := strings.Cut(key[len(key)-1], ":")
		return user == s.opts.Username && pass == s.opts.Password
	}
	user, pass, ok := r.BasicAuth()
	return ok && user == s.opts.Username && pass == s.opts.Password
}

func unauthorized() reply {
	rep := fail(http.StatusUnauthorized, "Authentication required")
	rep.headers = [][2]string{{"WWW-Authenticate", `Basic realm="Asterisk REST Interface"`}}
	return rep
}

// request holds one operation's parameters. Asterisk takes them from the
// query string (with a form body merged in) and then lets the keys of a
// JSON object body override them; path parameters come from the route.
type request struct {
	method string
	path   map[string]string
	query  url.Values
	body   map[string]any
}

func parseRequest(r *http.Request, path map[string]string) (*request, error) {
	rq := &request{method: r.Method, path: path, query: r.URL.Query()}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "application/json" && len(bytes.TrimSpace(raw)) > 0:
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if m, ok := v.(map[string]any); ok {
			rq.body = m
		}
	case mt == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, err
		}
		for k, vs := range form {
			rq.query[k] = append(rq.query[k], vs...)
		}
	}
	return rq, nil
}

// scalar turns a JSON value into the string Asterisk would read.
func scalar(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		if t {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// value is the parameter's value and whether it was given; the last of
// repeated query parameters wins, as Asterisk assigns each in turn.
func (rq *request) value(name string) (string, bool) {
	if v, ok := rq.body[name]; ok {
		return scalar(v)
	}
	if vs := rq.query[name]; len(vs) > 0 {
		return vs[len(vs)-1], true
	}
	return "", false
}

func (rq *request) str(name string) string {
	v, _ := rq.value(name)
	return v
}

// list reads a parameter that allows several values: a JSON array, or a
// comma separated string in the query.
func (rq *request) list(name string) []string {
	var out []string
	if v, ok := rq.body[name]; ok {
		items, isArray := v.([]any)
		if !isArray {
			items = []any{v}
		}
		for _, item := range items {
			if s, ok := scalar(item); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	v, _ := rq.value(name)
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (rq *request) integer(name string, def int) int {
	v, ok := rq.value(name)
	if !ok {
		return def
	}
	return atoi(v)
}

// reply is an operation's response.
type reply struct {
	status  int
	body    any // nil: no body (204)
	headers [][2]string
}

func okJSON(v any) reply { return reply{status: http.StatusOK, body: v} }
func noContent() reply   { return reply{status: http.StatusNoContent} }

// fail is Asterisk's usual error: {"message":...}.
func fail(status int, msg string) reply {
	return reply{status: status, body: messageJSON{Message: msg}}
}

func (s *Server) writeReply(w http.ResponseWriter, rep reply) {
	for _, h := range rep.headers {
		w.Header().Set(h[0], h[1])
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = w.Write(marshal(rep.body))
}

// writeHTML writes the HTML error page of Asterisk's HTTP server.
func writeHTML(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\r\n<html><head>\r\n"+
		"<title>%d %s</title>\r\n</head><body>\r\n<h1>%s</h1>\r\n<p>%s</p>\r\n<hr />\r\n"+
		"<address>Asterisk/22.10.1</address>\r\n</body></html>\r\n", status, title, title, text)
}
