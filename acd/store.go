package acd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
)

// StoreOptions configures a Store.
type StoreOptions struct {
	// Prefix starts every key. Empty means "hotline".
	Prefix string
	// Realm is the SIP digest realm the password hashes are made for;
	// changing it invalidates every stored hash. Empty means "hotline".
	Realm string
	// Location is where days begin for the daily figures. Nil means
	// appeal.DefaultLocation (Asia/Shanghai).
	Location *time.Location
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Reoffer is how long after an offer that came to nothing the same
	// call may ring the same agent again, when no other agent is there
	// to take it. 0 means DefaultReoffer.
	Reoffer time.Duration
}

// DefaultReoffer is StoreOptions.Reoffer's default: long enough for an
// agent who declined to see the next call come, short against a caller's
// wait.
const DefaultReoffer = 10 * time.Second

// Store keeps agents, their states and the queue in Redis. All keys share
// the hash tag {acd}.
//
// Keys, under <prefix>:{acd}:
//
//	agents          set of agent ids
//	a:<id>          hash: an agent's provisioning and state (see luaLib)
//	user:<sipuser>  the id of the agent with that SIP user
//	avail:<cat>     sorted set: available agents taking cat, by idle-since ms
//	wrapup          sorted set: agents in wrap-up, by its end
//	ringing         sorted set: agents offered a call, since when
//	queue           sorted set: calls in the queue (waiting or offered), by rank
//	waiting         sorted set: calls waiting for an offer, by rank
//	c:<call>        hash: a queued call (cat, score, enq, st, agent, node, inst, day, ...), or one turned away (st turned_away)
//	tried:<call>    hash: agent → "<seq>:<ms>", the agent's seq when offered this call, and when
//	day:<date>      hash: the day's queue figures
//	aday:<date>:<id> hash: an agent's day (served, talk_ms)
//	nodes, names, node:<inst>, held:<inst>, unclosed: node leases (see node.go)
//
// A call's rank puts emergency calls first, then the longest waiting.
type Store struct {
	rdb    redis.UniversalClient
	prefix string // <prefix>:{acd}:
	realm  string
	loc    *time.Location
	now    func() time.Time
	// reoffer is StoreOptions.Reoffer.
	reoffer time.Duration
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient, opts StoreOptions) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "hotline"
	}
	if opts.Realm == "" {
		opts.Realm = "hotline"
	}
	if opts.Location == nil {
		opts.Location = appeal.DefaultLocation()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Reoffer <= 0 {
		opts.Reoffer = DefaultReoffer
	}
	return &Store{rdb: rdb, prefix: opts.Prefix + ":{acd}:", realm: opts.Realm, loc: opts.Location, now: opts.Now, reoffer: opts.Reoffer}
}

func (s *Store) key(k string) string { return s.prefix + k }

func (s *Store) run(ctx context.Context, sc *redis.Script, args ...any) *redis.Cmd {
	return sc.Run(ctx, s.rdb, []string{s.key("agents")}, append([]any{s.prefix}, args...)...)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func (s *Store) day(t time.Time) string { return t.In(s.loc).Format(time.DateOnly) }

func joinCats(cs []appeal.Category) string {
	ss := make([]string, len(cs))
	for i, c := range cs {
		ss[i] = string(c)
	}
	slices.Sort(ss)
	return strings.Join(slices.Compact(ss), ",")
}

// Create provisions a new agent; its phone is not registered yet, so it
// starts offline.
func (s *Store) Create(ctx context.Context, spec AgentSpec) (Agent, error) {
	return s.upsert(ctx, spec, "create")
}

// Update changes an existing agent; an empty password keeps the old one.
func (s *Store) Update(ctx context.Context, spec AgentSpec) (Agent, error) {
	return s.upsert(ctx, spec, "update")
}

// Put creates or updates an agent, as provisioning from the config file does.
func (s *Store) Put(ctx context.Context, spec AgentSpec) (Agent, error) {
	return s.upsert(ctx, spec, "put")
}

func (s *Store) upsert(ctx context.Context, spec AgentSpec, mode string) (Agent, error) {
	if err := spec.Validate(mode == "create"); err != nil {
		return Agent{}, err
	}
	if mode != "create" && spec.Password == "" {
		// The digest hashes are made of the SIP user's name: under a new
		// name the old ones would fail every REGISTER.
		if cur, err := s.Agent(ctx, spec.ID); err == nil && cur.SIPUser != spec.SIPUser {
			return Agent{}, fmt.Errorf("%w: password: a new sip_user needs the password again (the stored digest hashes are made with the user's name)", ErrInvalid)
		}
	}
	var ha1, ha1s string
	if spec.Password != "" {
		ha1, ha1s = DigestHA1(spec.SIPUser, s.realm, spec.Password)
	}
	res, err := s.run(ctx, upsertScript, spec.ID, spec.Name, spec.SIPUser, joinCats(spec.Categories), ha1, ha1s, ms(s.now()), mode).Text()
	if err != nil {
		return Agent{}, fmt.Errorf("acd: save agent %s: %w", spec.ID, err)
	}
	switch res {
	case "exists":
		return Agent{}, fmt.Errorf("%w: agent %s exists", ErrConflict, spec.ID)
	case "notfound":
		return Agent{}, fmt.Errorf("%w: agent %s", ErrNotFound, spec.ID)
	case "user":
		return Agent{}, fmt.Errorf("%w: sip_user %s belongs to another agent", ErrConflict, spec.SIPUser)
	case "password":
		return Agent{}, fmt.Errorf("%w: password: required for a new agent", ErrInvalid)
	}
	return s.Agent(ctx, spec.ID)
}

// Delete removes an agent; not while it rings or talks.
func (s *Store) Delete(ctx context.Context, id string) error {
	res, err := s.run(ctx, deleteScript, id).Text()
	if err != nil {
		return fmt.Errorf("acd: delete agent %s: %w", id, err)
	}
	if res == "notfound" {
		return fmt.Errorf("%w: agent %s", ErrNotFound, id)
	}
	if st, ok := strings.CutPrefix(res, "busy:"); ok {
		return &StateError{AgentID: id, State: State(st), Why: "in a call: delete the agent once it ends (a call its node lost is ended by another node within the lease)"}
	}
	return nil
}

// Agent returns one agent with its state.
func (s *Store) Agent(ctx context.Context, id string) (Agent, error) {
	h, err := s.rdb.HGetAll(ctx, s.key("a:"+id)).Result()
	if err != nil {
		return Agent{}, fmt.Errorf("acd: agent %s: %w", id, err)
	}
	if len(h) == 0 {
		return Agent{}, fmt.Errorf("%w: agent %s", ErrNotFound, id)
	}
	return s.decode(h), nil
}

// Agents returns every agent, by id.
func (s *Store) Agents(ctx context.Context) ([]Agent, error) {
	ids, err := s.rdb.SMembers(ctx, s.key("agents")).Result()
	if err != nil {
		return nil, fmt.Errorf("acd: agents: %w", err)
	}
	slices.Sort(ids)
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.key("a:"+id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("acd: agents: %w", err)
	}
	out := make([]Agent, 0, len(ids))
	for _, c := range cmds {
		if h := c.Val(); len(h) > 0 {
			out = append(out, s.decode(h))
		}
	}
	return out, nil
}

func msTime(s string) *time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s == "" {
		return nil
	}
	t := time.UnixMilli(n)
	return &t
}

func (s *Store) decode(h map[string]string) Agent {
	a := Agent{
		ID:         h["id"],
		Name:       h["name"],
		SIPUser:    h["user"],
		State:      State(h["st"]),
		Reason:     h["why"],
		CallID:     h["call"],
		Registered: h["reg"] == "1",
		PauseNext:  h["pnext"],
		IdleSince:  msTime(h["idle"]),
	}
	for c := range strings.SplitSeq(h["cats"], ",") {
		if c != "" {
			a.Categories = append(a.Categories, appeal.Category(c))
		}
	}
	a.Missed, _ = strconv.Atoi(h["missed"])
	if t := msTime(h["since"]); t != nil {
		a.Since = *t
	}
	if a.State == WrapUp {
		a.WrapUpUntil = msTime(h["until"])
	}
	if h["fby"] != "" {
		f := &Forced{By: h["fby"], From: State(h["ffrom"]), To: State(h["fto"]), Reason: h["fwhy"], CallID: h["fcall"]}
		if t := msTime(h["fat"]); t != nil {
			f.At = *t
		}
		a.Forced = f
	}
	return a
}

// Credential returns the digest hashes of the agent whose phone registers
// as user, or ErrNotFound.
func (s *Store) Credential(ctx context.Context, user string) (Credential, error) {
	id, err := s.rdb.Get(ctx, s.key("user:"+user)).Result()
	if errors.Is(err, redis.Nil) {
		return Credential{}, fmt.Errorf("%w: sip user %s", ErrNotFound, user)
	}
	if err != nil {
		return Credential{}, fmt.Errorf("acd: credential %s: %w", user, err)
	}
	v, err := s.rdb.HMGet(ctx, s.key("a:"+id), "ha1", "ha1s").Result()
	if err != nil {
		return Credential{}, fmt.Errorf("acd: credential %s: %w", user, err)
	}
	c := Credential{AgentID: id}
	c.HA1, _ = v[0].(string)
	c.HA1SHA256, _ = v[1].(string)
	if c.HA1 == "" {
		return Credential{}, fmt.Errorf("%w: sip user %s", ErrNotFound, user)
	}
	return c, nil
}

// AgentByUser returns the id of the agent whose phone registers as user.
func (s *Store) AgentByUser(ctx context.Context, user string) (string, error) {
	id, err := s.rdb.Get(ctx, s.key("user:"+user)).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: sip user %s", ErrNotFound, user)
	}
	if err != nil {
		return "", fmt.Errorf("acd: agent of %s: %w", user, err)
	}
	return id, nil
}

func (s *Store) state(res string, err error, id string) (State, error) {
	if err != nil {
		return "", fmt.Errorf("acd: agent %s: %w", id, err)
	}
	switch res {
	case "notfound":
		return "", fmt.Errorf("%w: agent %s", ErrNotFound, id)
	case "offline":
		return Offline, nil
	}
	return State(res), nil
}

// Registered records that the agent's phone registered: an offline agent
// becomes available.
func (s *Store) Registered(ctx context.Context, id string) (State, error) {
	res, err := s.run(ctx, presenceScript, id, "1", ms(s.now())).Text()
	return s.state(res, err, id)
}

// Unregistered records that the agent's phone is gone: a free agent goes
// offline now, one in a call when the call ends.
func (s *Store) Unregistered(ctx context.Context, id string) (State, error) {
	res, err := s.run(ctx, presenceScript, id, "0", ms(s.now())).Text()
	return s.state(res, err, id)
}

// Pause pauses an agent with a reason. During a call (ringing, talking)
// the state stays and the pause is taken when the call ends: the agent's
// PauseNext holds the reason. An offline agent cannot be paused: a
// *StateError (ErrState) says so.
func (s *Store) Pause(ctx context.Context, id, reason string) (State, error) {
	reason, err := checkReason(reason, true)
	if err != nil {
		return "", err
	}
	return s.pause(ctx, id, reason)
}

// Resume ends an agent's pause, or cancels a pause waiting for the end
// of its call (or of the wrap-up after it). An available agent is left
// as it is. Any other state (offline; ringing, talking or in wrap-up with
// no pause waiting) has nothing to resume: a *StateError (ErrState) says
// so, with the state.
func (s *Store) Resume(ctx context.Context, id string) (State, error) {
	return s.pause(ctx, id, "")
}

// reasons of a refused pause or resume, by state.
var refusedWhy = map[State]string{
	Offline: "no phone is registered: the agent becomes available when its phone registers",
	Ringing: "not paused, and no pause waits for the end of its call",
	Talking: "not paused, and no pause waits for the end of its call",
	WrapUp:  "not paused: the agent takes calls when the wrap-up ends",
}

func (s *Store) pause(ctx context.Context, id, reason string) (State, error) {
	res, err := s.run(ctx, pauseScript, id, reason, ms(s.now())).StringSlice()
	if err != nil {
		return "", fmt.Errorf("acd: agent %s: %w", id, err)
	}
	if len(res) != 2 {
		return "", fmt.Errorf("acd: agent %s: pause answered %q", id, res)
	}
	st := State(res[1])
	switch res[0] {
	case "notfound":
		return "", fmt.Errorf("%w: agent %s", ErrNotFound, id)
	case "refused":
		why := refusedWhy[st]
		if reason != "" {
			why = "an offline agent takes no calls: there is nothing to pause"
		}
		return "", &StateError{AgentID: id, State: st, Why: why}
	}
	return st, nil
}

// checkReason trims a pause or force reason and checks its length.
func checkReason(reason string, required bool) (string, error) {
	reason = strings.TrimSpace(reason)
	if required && reason == "" {
		return "", fmt.Errorf("%w: reason: empty", ErrInvalid)
	}
	if len(reason) > 100 {
		return "", fmt.Errorf("%w: reason: longer than 100 characters", ErrInvalid)
	}
	return reason, nil
}

// ForceStates are the states an operator may force an agent into. The
// others come only from calls: an agent is never forced to ring or talk
// without one, or to wrap up after none.
var ForceStates = []State{Available, Paused, Offline}

// Force sets an agent's state on an operator's word, when the hotline's
// own account of it is wrong: available or paused (with a reason), which
// need the agent's phone registered, or offline, which needs it not
// registered; a state that would be false is refused with a *StateError.
// A call the agent was ringing or talking on no longer holds it. by names
// who forced it; the agent keeps the last force (Agent.Forced).
func (s *Store) Force(ctx context.Context, id string, to State, reason, by string) (Agent, error) {
	if !slices.Contains(ForceStates, to) {
		return Agent{}, fmt.Errorf("%w: state %q: want available, paused or offline (the others come from calls)", ErrInvalid, to)
	}
	reason, err := checkReason(reason, to == Paused)
	if err != nil {
		return Agent{}, err
	}
	if by == "" {
		return Agent{}, fmt.Errorf("%w: force: who forces it is not known", ErrInvalid)
	}
	res, err := s.run(ctx, forceScript, id, string(to), reason, ms(s.now()), by).Text()
	if err != nil {
		return Agent{}, fmt.Errorf("acd: force agent %s: %w", id, err)
	}
	switch res {
	case "notfound":
		return Agent{}, fmt.Errorf("%w: agent %s", ErrNotFound, id)
	case "nophone", "phone":
		a, err := s.Agent(ctx, id)
		if err != nil {
			return Agent{}, err
		}
		why := "no phone is registered: it cannot take calls, so it can only be offline"
		if res == "phone" {
			why = "its phone is registered: it can only be offline once the phone unregisters (pause it instead)"
		}
		return Agent{}, &StateError{AgentID: id, State: a.State, Why: why}
	}
	return s.Agent(ctx, id)
}

// StateError is an ErrState that says the agent's state and why it does
// not allow what was asked.
type StateError struct {
	AgentID string
	State   State
	Why     string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("%v: agent %s is %s: %s", ErrState, e.AgentID, e.State, e.Why)
}

// Unwrap makes errors.Is(err, ErrState) hold.
func (e *StateError) Unwrap() error { return ErrState }
