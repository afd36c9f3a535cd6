package web

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/audit"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/ban"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/trunk"
)

// Route is one endpoint of the API, declared once in the route table: the
// router, the authorization check, the README's table and the OpenAPI
// document all come from it.
type Route struct {
	Method  string // GET, POST, PUT, PATCH or DELETE
	Path    string // as net/http patterns name it: /api/v1/agents/{id}
	Summary string // one line, for the README and the OpenAPI document

	// Roles may call the route; empty only when Public is set.
	Roles []auth.Role
	// Own limits the agent and visitor roles to their own agent: the
	// path's {id} must be the principal's agent. A principal holding
	// another of Roles is not limited.
	Own bool
	// Public routes need no credentials: logging in, the API's own
	// description.
	Public bool

	// Query lists the query parameters.
	Query []Param
	// Body is the request's JSON body, a zero value of its type; nil when
	// the route takes none.
	Body any
	// Reply is the JSON answer on success, a zero value of its type; nil
	// when there is none (204).
	Reply any
	// Status answers success: 200, 201 or 204.
	Status int
	// CSV, when set, says the route also answers text/csv (format=csv),
	// with these columns.
	CSV string
	// Accepted, when set, says why the route may also answer 202, with
	// no content: the change is taken but not applied yet.
	Accepted string
	// Audit names the route's action in the audit log; empty derives it
	// from the path (Route.action).
	Audit string
	// Errors are the statuses the route may answer besides those every
	// route may give: 401 and 403 (unless Public), 400 for a route with a
	// body or query, 413 for one with a body, 404 for one with a path
	// parameter, 429 for a banned source, 500 and 503 when the store
	// fails.
	Errors []int

	handle http.HandlerFunc
}

// Param is a query parameter.
type Param struct {
	Name        string
	Description string
	// Type is "string", "integer", "boolean", "date" (YYYY-MM-DD in the
	// hotline's zone) or "date-time" (RFC 3339).
	Type     string
	Enum     []string
	Required bool
}

// PathParams are the names of the path's parameters, in order.
func (r Route) PathParams() []string {
	var out []string
	for _, m := range pathParam.FindAllStringSubmatch(r.Path, -1) {
		out = append(out, m[1])
	}
	return out
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)(?:\.\.\.)?\}`)

// Error is every error's answer.
type Error struct {
	Error string `json:"error"`
	// Path is the request's path, on 404 and 405.
	Path string `json:"path,omitempty"`
	// State is the agent's state, on a 409 of an agent's state change
	// (pause, resume, force, delete) that the state does not allow, or
	// the appeal's, on a 409 of a step its state does not allow.
	State string `json:"state,omitempty"`
}

// Page is one page of a list: list endpoints take limit and cursor, and
// answer the next page's cursor until the last page.
type Page[T any] struct {
	Items []T `json:"items"`
	// NextCursor asks for the next page (cursor=); empty on the last.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Routes is the route table without handlers, for documents made from it.
func Routes() []Route {
	rs := (*api)(nil).routes()
	for i := range rs {
		rs[i].handle = nil
	}
	return rs
}

// roles, for the table's readability.
var (
	supervisors = []auth.Role{auth.Supervisor}
	admins      = []auth.Role{auth.Admin}
)

var (
	limitParam  = Param{Name: "limit", Type: "integer", Description: "items per page, 1 to 500 (default 50)"}
	cursorParam = Param{Name: "cursor", Type: "string", Description: "the next_cursor of the page before"}
)

// routes is the route table. a may be nil when only the table is wanted.
func (a *api) routes() []Route {
	staff := []auth.Role{auth.Supervisor, auth.Ops, auth.Admin}
	rs := []Route{
		{Method: "POST", Path: "/api/v1/login", Summary: "log in with an account's password: a token with the account's roles",
			Public: true, Body: LoginRequest{}, Reply: TokenReply{}, Status: http.StatusCreated, Errors: []int{401}, handle: a.login},
		{Method: "POST", Path: "/api/v1/session", Summary: "log in to the console with an account's password: a session cookie (HttpOnly, SameSite=Strict) with the account's roles, ended by logout or when unused for the idle timeout",
			Public: true, Body: LoginRequest{}, Reply: Me{}, Status: http.StatusCreated, Errors: []int{401}, handle: a.session},
		{Method: "GET", Path: "/api/v1/live", Summary: "server-sent events: a change event naming its topic (agents, queue, calls, complaints, line, visits, trunks, peak, appeals, audit) when anything changes on any node; a session event when the session has ended",
			Roles: auth.Roles, Errors: []int{503}, handle: a.liveStream},
		{Method: "GET", Path: "/api/v1/audit", Summary: "the audit log, newest first: every state-changing action, who, role, when, from where, the answer; user= and action= search it; format=csv exports a range of days, searched the same way",
			Roles: admins, Query: []Param{limitParam, cursorParam,
				{Name: "user", Type: "string", Description: "only the account's entries (for a failed login, the name tried)"},
				{Name: "action", Type: "string", Description: "only this action, or every action under it: login is login and login.failed, agents every agents.…"},
				{Name: "format", Type: "string", Enum: []string{"json", "csv"}, Description: "csv: every event from from to to, oldest first"},
				{Name: "from", Type: "date", Description: "csv: the first day (30 days before to by default)"},
				{Name: "to", Type: "date", Description: "csv: the last day (today by default)"}},
			Reply: Page[audit.Entry]{}, CSV: strings.Join(auditColumns, ", "), handle: a.listAudit},
		{Method: "GET", Path: "/api/v1/nodes", Summary: "the live nodes: lease, host, the calls each runs, its health as it last reported it (redis, ari, journal)",
			Roles: []auth.Role{auth.Ops, auth.Admin, auth.Supervisor}, Reply: NodeList{}, handle: a.listNodes},
		{Method: "GET", Path: "/api/v1/probe", Summary: "the synthetic probe's latest calls (hotline probe), newest first, among the latest 500 calls: how each ended, where, and what it heard",
			Roles: []auth.Role{auth.Ops, auth.Admin}, Reply: ProbeReport{}, handle: a.probeCalls},
		{Method: "POST", Path: "/api/v1/logout", Summary: "revoke the token the request carries",
			Audit: "logout", Roles: auth.Roles, Status: http.StatusNoContent, handle: a.logout},
		{Method: "GET", Path: "/api/v1/me", Summary: "who the token acts as: account, roles, agent, expiry",
			Roles: auth.Roles, Reply: Me{}, handle: a.me},
		{Method: "PUT", Path: "/api/v1/me/password", Summary: "change one's own password, giving the current one",
			Roles: auth.Roles, Body: PasswordChange{}, Status: http.StatusNoContent, handle: a.changeOwnPassword},
		{Method: "GET", Path: "/api/v1/openapi.json", Summary: "this API's OpenAPI 3.1 description",
			Public: true, Reply: json.RawMessage{}, handle: a.openAPI},

		{Method: "GET", Path: "/api/v1/calls", Summary: "call records, newest first",
			Roles: staff, Query: []Param{limitParam, cursorParam}, Reply: Page[calllog.Record]{}, handle: a.listCalls},
		{Method: "GET", Path: "/api/v1/calls/{id}", Summary: "one call: times, end cause, the stage it ended in, prompts played and keys pressed",
			Roles: staff, Reply: calllog.Record{}, handle: a.getCall},
		{Method: "GET", Path: "/api/v1/appeals", Summary: "appeals, newest first, by state, organizer, category, or those overdue; an organizer sees its own",
			Roles: []auth.Role{auth.Agent, auth.Supervisor, auth.Organizer}, Query: []Param{
				{Name: "state", Type: "string", Enum: stateNames()},
				{Name: "organizer", Type: "string", Description: "dispatched to the organizer, lead or not"},
				{Name: "category", Type: "string", Enum: categoryNames()},
				{Name: "overdue", Type: "boolean", Description: "only those whose current stage is past its deadline"},
				limitParam, cursorParam},
			Reply: Page[appeal.Appeal]{}, handle: a.listAppeals},
		{Method: "POST", Path: "/api/v1/appeals", Summary: "take an appeal by hand (an agent's, a text channel's): caller, category, consent with its evidence, summary",
			Roles: appealStaff, Body: AppealRequest{}, Reply: appeal.Appeal{}, Status: http.StatusCreated, handle: a.createAppeal},
		{Method: "GET", Path: "/api/v1/appeals/{id}", Summary: "one appeal: category, consent with its evidence, its state, organizers and deadlines",
			Roles: []auth.Role{auth.Agent, auth.Visitor, auth.Supervisor, auth.Organizer}, Reply: appeal.Appeal{}, handle: a.getAppeal},
		{Method: "GET", Path: "/api/v1/appeals/{id}/events", Summary: "an appeal's history, oldest first: every step, who, when, and the deadlines it left",
			Roles: []auth.Role{auth.Agent, auth.Visitor, auth.Supervisor, auth.Organizer}, Reply: EventList{}, handle: a.appealEvents},
		{Method: "POST", Path: "/api/v1/appeals/{id}/dispatch", Summary: "dispatch to a lead organizer and co-organizers, or a district when the owner is unknown; the organizers' clocks start",
			Roles: appealStaff, Body: DispatchRequest{}, Reply: StepReply{}, Errors: []int{409}, handle: a.dispatchAppeal},
		{Method: "POST", Path: "/api/v1/appeals/{id}/sign", Summary: "an organizer signs for its order",
			Roles: []auth.Role{auth.Organizer, auth.Agent, auth.Supervisor}, Body: OrganizerStepRequest{}, Reply: StepReply{}, Errors: []int{409}, handle: a.signAppeal},
		{Method: "POST", Path: "/api/v1/appeals/{id}/feedback", Summary: "the lead organizer reports back: solved, not solved or cannot be solved, why and what next",
			Roles: []auth.Role{auth.Organizer, auth.Agent, auth.Supervisor}, Body: FeedbackRequest{}, Reply: StepReply{}, Errors: []int{409}, handle: a.feedbackAppeal},
		{Method: "POST", Path: "/api/v1/appeals/{id}/return", Summary: "an organizer sends the order back as not its own, with the reason; it waits for dispatch again",
			Roles: []auth.Role{auth.Organizer, auth.Agent, auth.Supervisor}, Body: OrganizerStepRequest{}, Reply: StepReply{}, Errors: []int{409}, handle: a.returnAppeal},
		{Method: "POST", Path: "/api/v1/appeals/{id}/close", Summary: "close a fed-back appeal",
			Roles: appealStaff, Body: CloseRequest{}, Reply: StepReply{}, Errors: []int{409}, handle: a.closeAppeal},
		{Method: "GET", Path: "/api/v1/organizers", Summary: "the units appeals are dispatched to",
			Roles: []auth.Role{auth.Agent, auth.Supervisor, auth.Admin, auth.Organizer}, Reply: OrganizerList{}, handle: a.listOrganizers},
		{Method: "PUT", Path: "/api/v1/organizers/{id}", Summary: "add or change an organizer: name, kind (bureau, district, utility), district",
			Roles: []auth.Role{auth.Supervisor, auth.Admin}, Body: appeal.Organizer{}, Reply: appeal.Organizer{}, handle: a.putOrganizer},
		{Method: "DELETE", Path: "/api/v1/organizers/{id}", Summary: "remove an organizer; appeals dispatched to it keep its id",
			Roles: []auth.Role{auth.Admin}, Status: http.StatusNoContent, handle: a.deleteOrganizer},
		{Method: "GET", Path: "/api/v1/supervision", Summary: "what to chase: appeals overdue or due soon (urged), most urgent first, by lead organizer",
			Roles: []auth.Role{auth.Supervisor, auth.Agent}, Query: []Param{
				{Name: "state", Type: "string", Enum: []string{string(appeal.DueSoon), string(appeal.OverdueNow)}, Required: true},
				limitParam},
			Reply: SupervisionList{}, handle: a.supervision},
		{Method: "GET", Path: "/api/v1/supervision/events", Summary: "the appeals' clock events, newest first: urge, overdue, expired",
			Roles: []auth.Role{auth.Supervisor, auth.Agent}, Query: []Param{limitParam, cursorParam},
			Reply: Page[appeal.ClockEvent]{}, handle: a.supervisionEvents},
		{Method: "GET", Path: "/api/v1/peak-mode", Summary: "peak mode now and its latest switches: who, when, why",
			Roles: []auth.Role{auth.Supervisor, auth.Admin, auth.Agent}, Reply: appeal.PeakStatus{}, handle: a.peakMode},
		{Method: "POST", Path: "/api/v1/peak-mode", Summary: "switch peak mode: general and complex appeals created while it is on get 48 h to dispatch", Audit: "peak-mode.switch",
			Roles: []auth.Role{auth.Supervisor, auth.Admin}, Body: PeakRequest{}, Reply: appeal.PeakSwitch{}, handle: a.switchPeakMode},

		{Method: "GET", Path: "/api/v1/agents", Summary: "the agents and their states",
			Roles: []auth.Role{auth.Supervisor, auth.Admin}, Query: []Param{limitParam, cursorParam}, Reply: Page[acd.Agent]{}, handle: a.listAgents},
		{Method: "POST", Path: "/api/v1/agents", Summary: "provision an agent (its phone's password is kept only as digest hashes)",
			Roles: admins, Body: acd.AgentSpec{}, Reply: acd.Agent{}, Status: http.StatusCreated, Errors: []int{409}, handle: a.createAgent},
		{Method: "GET", Path: "/api/v1/agents/{id}", Summary: "one agent with its figures of the day",
			Roles: []auth.Role{auth.Supervisor, auth.Admin, auth.Agent, auth.Visitor}, Own: true, Reply: AgentDetail{}, handle: a.getAgent},
		{Method: "PUT", Path: "/api/v1/agents/{id}", Summary: "replace an agent's provisioning (the password is write-only: absent keeps it)",
			Roles: admins, Body: acd.AgentSpec{}, Reply: acd.Agent{}, Errors: []int{409}, handle: a.updateAgent},
		{Method: "PATCH", Path: "/api/v1/agents/{id}", Summary: "change some of an agent's fields: those present",
			Roles: admins, Body: AgentPatch{}, Reply: acd.Agent{}, Errors: []int{409}, handle: a.patchAgent},
		{Method: "DELETE", Path: "/api/v1/agents/{id}", Summary: "delete an agent (not during a call)",
			Roles: admins, Status: http.StatusNoContent, Errors: []int{409}, handle: a.deleteAgent},
		{Method: "POST", Path: "/api/v1/agents/{id}/pause", Summary: "pause an agent with a reason (during a call: when it ends, answered as pause_next)",
			Roles: []auth.Role{auth.Supervisor, auth.Agent, auth.Visitor}, Own: true, Body: pauseBody{}, Reply: StateReply{}, Errors: []int{409}, handle: a.pause},
		{Method: "POST", Path: "/api/v1/agents/{id}/resume", Summary: "resume a paused agent, or cancel a pause waiting for the call's end (409 with the state when there is none)",
			Roles: []auth.Role{auth.Supervisor, auth.Agent, auth.Visitor}, Own: true, Reply: StateReply{}, Errors: []int{409}, handle: a.resume},
		{Method: "POST", Path: "/api/v1/agents/{id}/state", Summary: "force an agent's state (available, paused, offline) when the hotline's account of it is wrong; recorded with who did it",
			Roles: []auth.Role{auth.Supervisor, auth.Admin}, Body: ForceRequest{}, Reply: acd.Agent{}, Errors: []int{409}, handle: a.forceState},
		{Method: "GET", Path: "/api/v1/queue", Summary: "who waits for an agent, where and since when; today's queue figures",
			Roles: []auth.Role{auth.Supervisor, auth.Agent, auth.Ops}, Reply: QueueReport{}, handle: a.queue},

		{Method: "GET", Path: "/api/v1/ratings", Summary: "ratings, newest first",
			Roles: supervisors, Query: []Param{
				{Name: "from", Type: "date-time", Description: "rated at or after"},
				{Name: "to", Type: "date-time", Description: "rated before"},
				{Name: "agent", Type: "string", Description: "one agent's ratings"},
				limitParam, cursorParam,
			}, Reply: Page[evaluation.Rating]{}, handle: a.listRatings},
		{Method: "GET", Path: "/api/v1/complaints", Summary: "bad reviews by status: pending oldest first, reviewed newest first",
			Roles: supervisors, Query: []Param{
				{Name: "status", Type: "string", Enum: []string{"pending", "upheld", "dismissed"}, Description: "all when absent"},
				limitParam, cursorParam,
			}, Reply: Page[evaluation.Complaint]{}, handle: a.listComplaints},
		{Method: "POST", Path: "/api/v1/complaints/{id}/review", Summary: "uphold a bad review as an effective complaint, or dismiss it",
			Roles: supervisors, Body: reviewBody{}, Reply: evaluation.Complaint{}, Errors: []int{409}, handle: a.review,
			Accepted: "Redis did not answer: the decision is kept in the node's journal and applied when it answers again"},
		{Method: "POST", Path: "/api/v1/complaints/{id}/reverse", Summary: "change the decision on a reviewed complaint (upheld to dismissed or back), saying why in the note; the counts of the call's day follow",
			Roles: supervisors, Body: reviewBody{}, Reply: evaluation.Complaint{}, handle: a.reverse},
		{Method: "GET", Path: "/api/v1/stats", Summary: "a day's calls by how their wait ended (turned away with no agent registered included), the 15-second answer rate and average wait each with the counts it is over (no rate without calls), ratings, effective complaints per 10,000",
			Roles: []auth.Role{auth.Supervisor, auth.Ops}, Query: []Param{{Name: "day", Type: "date", Description: "today when absent"}},
			Reply: Stats{}, handle: a.stats},
		{Method: "GET", Path: "/api/v1/complaint-line", Summary: "effective complaints against the 3/10,000 line over a day, month, 30 days or range, for the hotline, an agent or a category: counts, rate, budget, worst case, 95 % upper bound",
			Roles: []auth.Role{auth.Supervisor, auth.Admin}, Query: append(slices.Clone(windowParams),
				Param{Name: "agent", Type: "string", Description: "one agent's calls"},
				Param{Name: "category", Type: "string", Enum: categoryNames(), Description: "one category's calls (not with agent)"},
			), Reply: evaluation.Line{}, handle: a.complaintLine},
		{Method: "GET", Path: "/api/v1/complaint-line/agents", Summary: "every agent's line over a window, worst first",
			Roles: []auth.Role{auth.Supervisor, auth.Admin}, Query: windowParams, Reply: evaluation.Ranking{}, handle: a.complaintLineAgents},
		{Method: "GET", Path: "/api/v1/complaint-line/audit", Summary: "recount the line's counters of a range of days from the stored calls, ratings and reviews, and list every day and scope where they differ",
			Roles: []auth.Role{auth.Supervisor, auth.Admin}, Query: auditParams, Reply: LineAudit{}, handle: a.complaintLineAudit},
		{Method: "GET", Path: "/api/v1/complaint-line/report", Summary: "every call a window counts, with its rating and decision, and the window's line: a rate recomputed by hand",
			Roles: []auth.Role{auth.Supervisor, auth.Admin}, Query: append(slices.Clone(windowParams),
				Param{Name: "agent", Type: "string", Description: "one agent's calls"},
				Param{Name: "category", Type: "string", Enum: categoryNames(), Description: "one category's calls (not with agent)"},
				Param{Name: "format", Type: "string", Enum: []string{"json", "csv"}, Description: "json (default) or csv"},
			), Reply: LineReport{}, CSV: strings.Join(reportColumns, ","), handle: a.complaintLineReport},
		{Method: "GET", Path: "/api/v1/complaint-line/events", Summary: "the line's alert events, newest first: a watched window going over the line or back within it",
			Roles: []auth.Role{auth.Supervisor, auth.Admin, auth.Ops}, Query: []Param{limitParam, cursorParam},
			Reply: Page[evaluation.Event]{}, handle: a.complaintLineEvents},
		{Method: "GET", Path: "/api/v1/complaints/{id}", Summary: "one complaint with the history of its decisions",
			Roles: supervisors, Reply: evaluation.Complaint{}, handle: a.getComplaint},
		{Method: "GET", Path: "/api/v1/agents/{id}/complaint-line", Summary: "one agent's line over a window: an agent sees their own",
			Roles: []auth.Role{auth.Supervisor, auth.Admin, auth.Agent}, Own: true, Query: windowParams, Reply: evaluation.Line{}, handle: a.agentComplaintLine},

		{Method: "GET", Path: "/api/v1/users", Summary: "the accounts",
			Roles: admins, Query: []Param{limitParam, cursorParam}, Reply: Page[auth.User]{}, handle: a.listUsers},
		{Method: "POST", Path: "/api/v1/users", Summary: "create an account (its password is kept only as an argon2id hash)",
			Roles: admins, Body: UserRequest{}, Reply: auth.User{}, Status: http.StatusCreated, Errors: []int{409}, handle: a.createUser},
		{Method: "GET", Path: "/api/v1/users/{name}", Summary: "one account",
			Roles: admins, Reply: auth.User{}, handle: a.getUser},
		{Method: "PATCH", Path: "/api/v1/users/{name}", Summary: "change an account's roles, agent, or disable it (its tokens stop working)",
			Roles: admins, Body: UserPatch{}, Reply: auth.User{}, handle: a.patchUser},
		{Method: "PUT", Path: "/api/v1/users/{name}/password", Summary: "set an account's password",
			Roles: admins, Body: PasswordSet{}, Status: http.StatusNoContent, handle: a.setUserPassword},
		{Method: "GET", Path: "/api/v1/tokens", Summary: "the tokens, newest first: those in use, or all kept (all=true)",
			Roles: admins, Query: []Param{{Name: "all", Type: "boolean", Description: "also expired and revoked tokens, kept for audit"}, limitParam, cursorParam},
			Reply: Page[auth.Token]{}, handle: a.listTokens},
		{Method: "POST", Path: "/api/v1/tokens", Summary: "make a token with roles and an expiry; its secret is answered once",
			Roles: admins, Body: TokenRequest{}, Reply: TokenReply{}, Status: http.StatusCreated, handle: a.createToken},
		{Method: "GET", Path: "/api/v1/tokens/{id}", Summary: "one token (never its secret)",
			Roles: admins, Reply: auth.Token{}, handle: a.getToken},
		{Method: "DELETE", Path: "/api/v1/tokens/{id}", Summary: "revoke a token", Audit: "tokens.revoke",
			Roles: admins, Reply: auth.Token{}, handle: a.revokeToken},
		{Method: "GET", Path: "/api/v1/bans", Summary: "sources and users refused after failed logins, tokens or SIP registrations",
			Roles: []auth.Role{auth.Ops, auth.Admin}, Query: []Param{limitParam, cursorParam}, Reply: Page[ban.Ban]{}, handle: a.listBans},
		{Method: "DELETE", Path: "/api/v1/bans/{subject...}", Summary: "lift a ban (an address, an IPv6 /64, or user:SERVICE:NAME)", Audit: "bans.lift",
			Roles: []auth.Role{auth.Ops, auth.Admin}, Reply: ban.Ban{}, handle: a.liftBan},
		{Method: "GET", Path: "/api/v1/trunks", Summary: "the carriers' trunks in their order for outbound calls: state and since when, last probe, channels in and out of the limit, the last 15 minutes' calls, failures and answer-seizure ratio",
			Roles: []auth.Role{auth.Ops, auth.Admin, auth.Supervisor}, Reply: TrunkList{}, handle: a.listTrunks},
		{Method: "GET", Path: "/api/v1/trunks/events", Summary: "the trunks' changes of state, newest first: up, down, maintenance",
			Roles: []auth.Role{auth.Ops, auth.Admin}, Query: []Param{limitParam, cursorParam}, Reply: Page[trunk.Transition]{}, handle: a.trunkEvents},
	}
	return append(rs, a.visitRoutes()...)
}
