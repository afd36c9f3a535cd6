package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// User is an account: a person (or a system) that logs in with a
// password, or holds tokens an admin made for it. It carries no secret.
type User struct {
	Name  string `json:"name"`
	Roles []Role `json:"roles"`
	// AgentID is the acd agent this account is, for the agent and
	// visitor roles; empty otherwise.
	AgentID string `json:"agent_id,omitempty"`
	// OrganizerID is the organizer (appeal's organizers) this account
	// acts for, for the organizer role; empty otherwise.
	OrganizerID string    `json:"organizer_id,omitempty"`
	Disabled    bool      `json:"disabled"`
	HasPassword bool      `json:"has_password"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `json:"updated_by,omitempty"`
}

// Has reports whether u holds role r.
func (u User) Has(r Role) bool { return slices.Contains(u.Roles, r) }

// UserSpec describes a new account.
type UserSpec struct {
	Name  string
	Roles []Role
	// AgentID is the acd agent the account is; optional, so an account
	// can be made before its agent is provisioned.
	AgentID string
	// OrganizerID is the organizer the account acts for; optional.
	OrganizerID string
	// Password may be empty: the account then has no password login and
	// acts only through tokens an admin makes for it.
	Password string
	// By is who makes the account, for the audit trail; required.
	By string
}

// UserChange changes an account; nil fields are left as they are.
type UserChange struct {
	Roles       *[]Role
	AgentID     *string // "" takes the agent away
	OrganizerID *string // "" takes the organizer away
	Disabled    *bool
	By          string // required
}

// namePattern is what an account name may be: ASCII, so that names fold
// to one case the same way everywhere, and safe in keys, logs and URLs.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// agentPattern is acd's rule for an agent id.
var agentPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w: name %q: want 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", ErrInvalid, name)
	}
	return nil
}

// organizerPattern is appeal's rule for an organizer id.
var organizerPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func checkOrganizerID(id string) error {
	if id != "" && !organizerPattern.MatchString(id) {
		return fmt.Errorf("%w: organizer_id %q: want 1-64 of a-z, 0-9, '_' or '-'", ErrInvalid, id)
	}
	return nil
}

func checkAgentID(id string) error {
	if id != "" && !agentPattern.MatchString(id) {
		return fmt.Errorf("%w: agent_id %q: want 1-64 letters, digits, '.', '_' or '-'", ErrInvalid, id)
	}
	return nil
}

// normRoles checks a role list and returns it without repeats, in the
// order of Roles, so that equal sets are stored alike.
func normRoles(rs []Role) ([]Role, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("%w: roles: want at least one of agent, visitor, supervisor, ops, admin, organizer", ErrInvalid)
	}
	for _, r := range rs {
		if _, err := ParseRole(string(r)); err != nil {
			return nil, err
		}
	}
	out := make([]Role, 0, len(rs))
	for _, r := range Roles {
		if slices.Contains(rs, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

func joinRoles(rs []Role) string {
	ss := make([]string, len(rs))
	for i, r := range rs {
		ss[i] = string(r)
	}
	return strings.Join(ss, ",")
}

// splitRoles reads a stored role list, skipping names this version does
// not know (a newer node may have stored them).
func splitRoles(s string) []Role {
	out := []Role{}
	for x := range strings.SplitSeq(s, ",") {
		if r, err := ParseRole(x); err == nil {
			out = append(out, r)
		}
	}
	return out
}

func decodeUser(h map[string]string) User {
	return User{
		Name:        h["name"],
		Roles:       splitRoles(h["roles"]),
		AgentID:     h["agent"],
		OrganizerID: h["organizer"],
		Disabled:    h["disabled"] == "1",
		HasPassword: h["pw"] != "",
		CreatedAt:   msTimeOrZero(h["created"]),
		CreatedBy:   h["created_by"],
		UpdatedAt:   msTimeOrZero(h["updated"]),
		UpdatedBy:   h["updated_by"],
	}
}

// AddUser makes an account. A name taken by another account, also in
// another case ("Admin" beside "admin"), is an error wrapping ErrConflict;
// a bad name, no role, an unknown role or a weak password one wrapping
// ErrInvalid.
func (s *Store) AddUser(ctx context.Context, spec UserSpec) (User, error) {
	if err := checkName(spec.Name); err != nil {
		return User{}, err
	}
	roles, err := normRoles(spec.Roles)
	if err != nil {
		return User{}, err
	}
	if err := checkAgentID(spec.AgentID); err != nil {
		return User{}, err
	}
	if err := checkOrganizerID(spec.OrganizerID); err != nil {
		return User{}, err
	}
	if err := checkBy(spec.By); err != nil {
		return User{}, err
	}
	var pw string
	if spec.Password != "" {
		if err := checkPasswordRule(spec.Name, spec.Password); err != nil {
			return User{}, err
		}
		if pw, err = hashPassword(ctx, spec.Password, s.params); err != nil {
			return User{}, fmt.Errorf("auth: add user %s: %w", spec.Name, err)
		}
	}
	res, err := s.run(ctx, addUserScript, spec.Name, joinRoles(roles), spec.AgentID, pw,
		ms(s.now()), spec.By, randomHex(8), spec.OrganizerID)
	if err != nil {
		return User{}, fmt.Errorf("auth: add user %s: %w", spec.Name, err)
	}
	if status(res) == "exists" {
		return User{}, fmt.Errorf("%w: user %s: the name is taken (by %v)", ErrConflict, spec.Name, res[1])
	}
	return decodeUser(fields(res[1])), nil
}

// User returns the account name, spelled exactly as it was made, or an
// error wrapping ErrNotFound.
func (s *Store) User(ctx context.Context, name string) (User, error) {
	h, err := s.userFields(ctx, name)
	if err != nil {
		return User{}, err
	}
	return decodeUser(h), nil
}

// userFields reads the hash of the account name; a name spelled in
// another case than the account's is not found, so that every name has
// one spelling in logs, bans and decisions.
func (s *Store) userFields(ctx context.Context, name string) (map[string]string, error) {
	if !namePattern.MatchString(name) {
		return nil, fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	h, err := s.rdb.HGetAll(ctx, s.userKey(name)).Result()
	if err != nil {
		return nil, fmt.Errorf("auth: user %s: %w", name, err)
	}
	if h["name"] != name {
		return nil, fmt.Errorf("%w: user %s", ErrNotFound, name)
	}
	return h, nil
}

// Users returns every account, by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	names, err := s.rdb.SMembers(ctx, s.key("users")).Result()
	if err != nil {
		return nil, fmt.Errorf("auth: users: %w", err)
	}
	slices.Sort(names)
	cmds := make([]*redis.MapStringStringCmd, len(names))
	// One round trip: the keys share the {auth} slot.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.HGetAll(ctx, s.userKey(n))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: users: %w", err)
	}
	out := make([]User, 0, len(names))
	for i, c := range cmds {
		if h := c.Val(); h["name"] == names[i] {
			out = append(out, decodeUser(h))
		}
	}
	return out, nil
}

// UpdateUser changes an account's roles, agent, organizer or disabled flag, and
// returns it. A role taken away, or the account disabled, takes effect on
// its tokens at the next request (Authenticate). A change with nothing in
// it returns the account as it is.
func (s *Store) UpdateUser(ctx context.Context, name string, c UserChange) (User, error) {
	if c.Roles == nil && c.AgentID == nil && c.OrganizerID == nil && c.Disabled == nil {
		return s.User(ctx, name)
	}
	if err := checkBy(c.By); err != nil {
		return User{}, err
	}
	var roles string
	if c.Roles != nil {
		rs, err := normRoles(*c.Roles)
		if err != nil {
			return User{}, err
		}
		roles = joinRoles(rs)
	}
	setAgent, agent := "0", ""
	if c.AgentID != nil {
		if err := checkAgentID(*c.AgentID); err != nil {
			return User{}, err
		}
		setAgent, agent = "1", *c.AgentID
	}
	setOrganizer, organizer := "0", ""
	if c.OrganizerID != nil {
		if err := checkOrganizerID(*c.OrganizerID); err != nil {
			return User{}, err
		}
		setOrganizer, organizer = "1", *c.OrganizerID
	}
	var disabled string
	if c.Disabled != nil {
		disabled = "0"
		if *c.Disabled {
			disabled = "1"
		}
	}
	if !namePattern.MatchString(name) {
		return User{}, fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	res, err := s.run(ctx, updateUserScript, name, roles, setAgent, agent, disabled, ms(s.now()), c.By, setOrganizer, organizer)
	if err != nil {
		return User{}, fmt.Errorf("auth: update user %s: %w", name, err)
	}
	if status(res) == "notfound" {
		return User{}, fmt.Errorf("%w: user %s", ErrNotFound, name)
	}
	return decodeUser(fields(res[1])), nil
}

// SetPassword sets an account's password; the rules are AddUser's. The
// account's tokens stay valid: revoke them to end its sessions.
func (s *Store) SetPassword(ctx context.Context, name, password, by string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	if err := checkBy(by); err != nil {
		return err
	}
	if err := checkPasswordRule(name, password); err != nil {
		return err
	}
	pw, err := hashPassword(ctx, password, s.params)
	if err != nil {
		return fmt.Errorf("auth: set password of %s: %w", name, err)
	}
	res, err := s.run(ctx, setPasswordScript, name, pw, ms(s.now()), by)
	if err != nil {
		return fmt.Errorf("auth: set password of %s: %w", name, err)
	}
	if status(res) == "notfound" {
		return fmt.Errorf("%w: user %s", ErrNotFound, name)
	}
	return nil
}

// CheckPassword returns the account name when password is its password.
// An unknown account, one without a password and a wrong password are all
// ErrBadCredentials, after the same work (one argon2id), so neither the
// answer nor its time tells which. A disabled account with the right
// password is ErrDisabled. It writes nothing.
func (s *Store) CheckPassword(ctx context.Context, name, password string) (User, error) {
	if len(password) > MaxPasswordBytes {
		// No account has a longer password; the length is the caller's,
		// so answering at once tells nothing about the account.
		return User{}, ErrBadCredentials
	}
	h, err := s.userFields(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, err
	}
	hash := h["pw"]
	if hash == "" {
		hash = s.dummy
	}
	match, err := verifyPassword(ctx, hash, password)
	if err != nil && !errors.Is(err, errPHC) {
		return User{}, fmt.Errorf("auth: check password of %s: %w", name, err)
	}
	if !match || h["pw"] == "" {
		if errors.Is(err, errPHC) {
			return User{}, fmt.Errorf("%w (%w of %s)", ErrBadCredentials, err, name)
		}
		return User{}, ErrBadCredentials
	}
	u := decodeUser(h)
	if u.Disabled {
		return User{}, fmt.Errorf("%w: user %s", ErrDisabled, name)
	}
	return u, nil
}
