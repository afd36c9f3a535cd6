package aritest

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// Applications.

func (s *Server) listApplications(*request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []applicationJSON{}
	for _, a := range s.appsLocked() {
		list = append(list, a.json())
	}
	return okJSON(list)
}

func (s *Server) getApplication(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[rq.path["applicationName"]]
	if a == nil {
		return fail(http.StatusNotFound, "Application not found")
	}
	return okJSON(a.json())
}

// filterApplication is PUT /applications/{app}/eventFilter: an empty body
// clears both lists; a list that is given replaces its own and leaves the
// other; every entry must name a type.
func (s *Server) filterApplication(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[rq.path["applicationName"]]
	if a == nil {
		return fail(http.StatusNotFound, "Application not found")
	}
	if len(rq.body) == 0 {
		a.allowed, a.disallowed = nil, nil
		return okJSON(a.json())
	}
	lists := map[string][]map[string]any{}
	for _, key := range []string{"allowed", "disallowed"} {
		v, given := rq.body[key]
		if !given {
			continue
		}
		items, isArray := v.([]any)
		if !isArray {
			return fail(http.StatusBadRequest, "Invalid format definition")
		}
		list := []map[string]any{}
		for _, item := range items {
			obj, isObj := item.(map[string]any)
			if t, _ := obj["type"].(string); !isObj || t == "" {
				return fail(http.StatusBadRequest, "Invalid format definition")
			}
			list = append(list, obj)
		}
		lists[key] = list
	}
	if l, given := lists["allowed"]; given {
		a.allowed = l
	}
	if l, given := lists["disallowed"]; given {
		a.disallowed = l
	}
	return okJSON(a.json())
}

// Asterisk.

type buildInfoJSON struct {
	OS      string `json:"os"`
	Kernel  string `json:"kernel"`
	Options string `json:"options"`
	Machine string `json:"machine"`
	Date    string `json:"date"`
	User    string `json:"user"`
}

type systemInfoJSON struct {
	Version  string `json:"version"`
	EntityID string `json:"entity_id"`
}

type setIDJSON struct {
	User  string `json:"user"`
	Group string `json:"group"`
}

type configInfoJSON struct {
	Name            string    `json:"name"`
	DefaultLanguage string    `json:"default_language"`
	SetID           setIDJSON `json:"setid"`
}

type statusInfoJSON struct {
	StartupTime    string `json:"startup_time"`
	LastReloadTime string `json:"last_reload_time"`
}

type asteriskInfoJSON struct {
	Build  *buildInfoJSON  `json:"build,omitempty"`
	System *systemInfoJSON `json:"system,omitempty"`
	Config *configInfoJSON `json:"config,omitempty"`
	Status *statusInfoJSON `json:"status,omitempty"`
}

// getInfo is GET /asterisk/info; CyCoreSystems/ari reads
// system.entity_id from it on every (re)connect.
func (s *Server) getInfo(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	only := rq.list("only")
	want := func(part string) bool { return len(only) == 0 || slices.Contains(only, part) }
	var info asteriskInfoJSON
	if want("build") {
		info.Build = &buildInfoJSON{OS: "Linux", Kernel: "6.1.0", Machine: "x86_64", Date: "2026-11-27 00:00:00 UTC", User: "root"}
	}
	if want("system") {
		info.System = &systemInfoJSON{Version: "22.10.1", EntityID: s.entityID}
	}
	if want("config") {
		info.Config = &configInfoJSON{DefaultLanguage: "en"}
	}
	if want("status") {
		info.Status = &statusInfoJSON{StartupTime: stamp(s.startup), LastReloadTime: stamp(s.startup)}
	}
	return okJSON(info)
}

func (s *Server) ping(*request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	return okJSON(struct {
		AsteriskID string `json:"asterisk_id"`
		Ping       string `json:"ping"`
		Timestamp  string `json:"timestamp"`
	}{s.entityID, "pong", stamp(time.Now())})
}

// Endpoints.

// listEndpoints lists the trunk endpoint inbound calls arrive on and the
// endpoints SetEndpoint made, with their channels. Local channels have no
// endpoint.
func (s *Server) listEndpoints(*request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := []string{"PJSIP/" + trunkEndpoint}
	for name := range s.endpoints {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	list := []endpointJSON{}
	for _, name := range names {
		tech, resource, _ := strings.Cut(name, "/")
		list = append(list, s.endpointLocked(tech, resource))
	}
	return okJSON(list)
}

// endpointLocked is the endpoint tech/resource as ARI shows it: online,
// or offline when its Phone says so (no registered contact, or a contact
// that fails its qualify).
func (s *Server) endpointLocked(tech, resource string) endpointJSON {
	name := tech + "/" + resource
	e := endpointJSON{Technology: tech, Resource: resource, State: "online", ChannelIDs: []string{}}
	if ph, ok := s.endpoints[name]; ok && ph.Offline {
		e.State = "offline"
	}
	for _, ch := range s.channelsLocked() {
		if ch.endpoint == name {
			e.ChannelIDs = append(e.ChannelIDs, ch.id)
		}
	}
	return e
}

// getEndpoint is GET /endpoints/{tech}/{resource}: 404 "Endpoint not
// found" for one Asterisk does not have.
func (s *Server) getEndpoint(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	tech, resource := rq.path["tech"], rq.path["resource"]
	if _, ok := s.endpoints[tech+"/"+resource]; !ok && tech+"/"+resource != "PJSIP/"+trunkEndpoint {
		return fail(http.StatusNotFound, "Endpoint not found")
	}
	return okJSON(s.endpointLocked(tech, resource))
}
