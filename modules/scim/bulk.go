package scim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/patch"
)

// Bulk limits (RFC 7644 §3.7.4), advertised in /ServiceProviderConfig; past them the
// request is refused with 413.
const (
	// MaxBulkOperations bounds the operations of one Bulk request.
	MaxBulkOperations = 1000
	// MaxBulkPayloadBytes bounds a Bulk request body (it replaces MaxBodyBytes there).
	MaxBulkPayloadBytes = 1 << 20
)

// bulkBatchSize is how many consecutive user creates are written together (see
// identity.CreateUsers): one statement per table for all of them.
const bulkBatchSize = 250

const (
	bulkRequestURN  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	bulkResponseURN = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	bulkIDPrefix    = "bulkId:"
)

// bulkOp is one operation of a Bulk request as read.
type bulkOp struct {
	method, bulkID, version, path string
	rt, id                        string         // resource type and id from path; id may be "bulkId:…"
	data                          map[string]any // nil for DELETE
	refs                          []string       // bulkIds it references, in path or data
	err                           error          // why it is invalid; it fails with it in its turn
}

type bulkResult struct {
	Method   string         `json:"method"`
	BulkID   string         `json:"bulkId,omitempty"`
	Version  string         `json:"version,omitempty"`
	Location string         `json:"location,omitempty"`
	Status   string         `json:"status"`
	Response map[string]any `json:"response,omitempty"`
}

// bulk is POST /Bulk (RFC 7644 §3.7). The request is authenticated and decoded once.
// Operations run in request order except that one referring to another's bulkId waits
// until that one has run (a cycle or an unknown bulkId fails the operations involved,
// never the request). Each operation follows the same rules, audit events and
// deprovisioning as its single-resource endpoint and succeeds or fails on its own;
// consecutive user creates are written together (see createUsers).
func (h *Handler) bulk(w http.ResponseWriter, r *http.Request) {
	body, err := decodeBody(r)
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			h.writeTooLarge(w, "the bulk request is larger than maxPayloadSize (%d bytes)", MaxBulkPayloadBytes)
			return
		}
		h.writeError(w, r, err)
		return
	}
	ops, failOnErrors, err := parseBulk(body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if len(ops) > MaxBulkOperations {
		h.writeTooLarge(w, "the bulk request has %d operations, more than maxOperations (%d)", len(ops), MaxBulkOperations)
		return
	}
	b := newBulkRun(h, r.Context(), ops, failOnErrors)
	b.run()
	results := make([]bulkResult, 0, len(b.order))
	for _, i := range b.order {
		results = append(results, b.results[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"schemas": []string{bulkResponseURN}, "Operations": results})
}

func (h *Handler) writeTooLarge(w http.ResponseWriter, format string, args ...any) {
	writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{
		"schemas": []string{errorURN},
		"status":  strconv.Itoa(http.StatusRequestEntityTooLarge),
		"detail":  apperr.PublicMessage(apperr.Invalid(format, args...)),
	})
}

func invalidSyntax(format string, args ...any) error {
	return apperr.Invalid(format, args...).WithCode("invalidSyntax")
}

// parseBulk reads a BulkRequest; attribute names match case-insensitively. A malformed
// request is refused; a malformed operation only fails itself.
func parseBulk(body map[string]any) ([]*bulkOp, int, error) {
	var ops []*bulkOp
	failOnErrors := 0
	sawSchema := false
	for k, v := range body {
		switch strings.ToLower(k) {
		case "schemas":
			l, _ := v.([]any)
			for _, s := range l {
				sawSchema = sawSchema || s == bulkRequestURN
			}
		case "failonerrors":
			n, ok := v.(json.Number)
			i, err := n.Int64()
			if !ok || err != nil || i < 1 {
				return nil, 0, invalidValue("failOnErrors must be a positive integer")
			}
			failOnErrors = int(min(i, MaxBulkOperations+1))
		case "operations":
			l, ok := v.([]any)
			if !ok {
				return nil, 0, invalidSyntax("Operations must be a list of operations")
			}
			for _, e := range l {
				ops = append(ops, parseBulkOp(e))
			}
		default:
			return nil, 0, invalidSyntax("unknown bulk request attribute %q", k)
		}
	}
	if !sawSchema {
		return nil, 0, invalidSyntax("schemas must be [%q]", bulkRequestURN)
	}
	if ops == nil {
		return nil, 0, invalidSyntax("Operations is required")
	}
	return ops, failOnErrors, nil
}

func parseBulkOp(e any) *bulkOp {
	op := &bulkOp{}
	m, ok := e.(map[string]any)
	if !ok {
		op.err = invalidSyntax("every operation must be an object")
		return op
	}
	var data any
	for k, v := range m {
		s, isString := v.(string)
		switch lk := strings.ToLower(k); lk {
		case "method", "bulkid", "version", "path":
			if !isString {
				op.err = invalidSyntax("%s must be a string", k)
				return op
			}
			switch lk {
			case "method":
				op.method = strings.ToUpper(s)
			case "bulkid":
				op.bulkID = s
			case "version":
				op.version = s
			case "path":
				op.path = s
			}
		case "data":
			data = v
		default:
			op.err = invalidSyntax("unknown bulk operation attribute %q", k)
			return op
		}
	}
	op.err = op.check(data)
	return op
}

// check validates an operation's method, path and data, and finds its references.
func (op *bulkOp) check(data any) error {
	switch op.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return invalidValue("method must be POST, PUT, PATCH or DELETE, not %q", op.method)
	}
	rest, ok := strings.CutPrefix(op.path, "/")
	name, id, _ := strings.Cut(rest, "/")
	switch {
	case !ok:
	case strings.EqualFold(name, "Users"):
		op.rt = resUser
	case strings.EqualFold(name, "Groups"):
		op.rt = resGroup
	}
	if op.rt == "" || strings.Contains(id, "/") {
		return invalidValue("path must be /Users, /Users/{id}, /Groups or /Groups/{id}, not %q", op.path)
	}
	op.id = id
	if op.method == http.MethodPost {
		if id != "" {
			return invalidValue("POST creates: its path is /%ss, without an id", op.rt)
		}
		if op.bulkID == "" {
			return invalidValue("a POST operation needs a bulkId")
		}
	} else if id == "" {
		return invalidValue("%s needs the resource's id in its path: /%ss/{id}", op.method, op.rt)
	}
	if ref, ok := strings.CutPrefix(id, bulkIDPrefix); ok {
		op.refs = append(op.refs, ref)
	}
	if op.method == http.MethodDelete {
		return nil
	}
	m, ok := data.(map[string]any)
	if !ok {
		return invalidValue("%s needs data, the resource or PATCH request as an object", op.method)
	}
	op.data = m
	walkStrings(m, func(s string) string {
		if ref, ok := strings.CutPrefix(s, bulkIDPrefix); ok {
			op.refs = append(op.refs, ref)
		}
		return s
	})
	if op.method == http.MethodPatch {
		patchPaths(m, func(s string) string {
			op.refs = append(op.refs, quotedRefs(s)...)
			return s
		})
	}
	return nil
}

// patchPaths replaces the path of every operation of a PATCH request body by f of it.
func patchPaths(data map[string]any, f func(string) string) {
	for k, v := range data {
		if !strings.EqualFold(k, "Operations") {
			continue
		}
		ops, _ := v.([]any)
		for _, o := range ops {
			m, _ := o.(map[string]any)
			for pk, pv := range m {
				if s, ok := pv.(string); ok && strings.EqualFold(pk, "path") {
					m[pk] = f(s)
				}
			}
		}
	}
}

// quotedRefs returns the bulkIds quoted inside a PATCH path's filter, as in
// members[value eq "bulkId:qwerty"], which a whole-string reference cannot express.
func quotedRefs(s string) []string {
	var out []string
	for {
		i := strings.Index(s, `"`+bulkIDPrefix)
		if i < 0 {
			return out
		}
		s = s[i+1+len(bulkIDPrefix):]
		j := strings.IndexByte(s, '"')
		if j < 0 {
			return out
		}
		out = append(out, s[:j])
		s = s[j+1:]
	}
}

// walkStrings replaces every string in v (nested objects and lists included) by f of it.
func walkStrings(v any, f func(string) string) any {
	switch t := v.(type) {
	case string:
		return f(t)
	case map[string]any:
		for k, e := range t {
			t[k] = walkStrings(e, f)
		}
	case []any:
		for i, e := range t {
			t[i] = walkStrings(e, f)
		}
	}
	return v
}

// bulkRun is the state of one Bulk request being processed.
type bulkRun struct {
	h       *Handler
	ctx     context.Context
	tenant  string
	ops     []*bulkOp
	results []bulkResult
	order   []int // operations in the order processed
	failOn  int   // 0: process all
	errors  int

	defined map[string]int    // bulkId → the POST that defines it
	created map[string]string // bulkId → id of the resource created
	failed  map[string]bool   // bulkIds whose operation failed

	pending    []int // not yet processed, in request order
	cursor     int
	progressed bool // an operation was taken in the current pass over pending
	stuck      bool // a whole pass took none: what is left waits on a cycle
}

func newBulkRun(h *Handler, ctx context.Context, ops []*bulkOp, failOn int) *bulkRun {
	b := &bulkRun{h: h, ctx: ctx, tenant: principal(ctx).Tenant.ID, ops: ops, failOn: failOn,
		results: make([]bulkResult, len(ops)), defined: map[string]int{}, created: map[string]string{}, failed: map[string]bool{}}
	for i, op := range ops {
		b.pending = append(b.pending, i)
		if op.err != nil || op.method != http.MethodPost {
			continue
		}
		if _, dup := b.defined[op.bulkID]; dup {
			op.err = invalidValue("bulkId %q is used by more than one POST in this request", op.bulkID)
			continue
		}
		b.defined[op.bulkID] = i
	}
	return b
}

func (b *bulkRun) done() bool { return b.failOn > 0 && b.errors >= b.failOn }

// next takes the next operation to process: the first pending one, in request order,
// whose references are resolved, or that must fail without running (the error).
func (b *bulkRun) next() (int, error, bool) {
	for len(b.pending) > 0 {
		if b.cursor >= len(b.pending) {
			b.stuck = b.stuck || !b.progressed
			b.cursor, b.progressed = 0, false
		}
		i := b.pending[b.cursor]
		ready, err := b.readiness(b.ops[i])
		if !ready && b.stuck {
			ready, err = true, invalidValue("the bulkId references of this operation form a cycle, so they cannot be resolved")
		}
		if ready {
			b.pending = slices.Delete(b.pending, b.cursor, b.cursor+1)
			b.progressed = true
			return i, err, true
		}
		b.cursor++
	}
	return 0, nil, false
}

func (b *bulkRun) readiness(op *bulkOp) (bool, error) {
	if op.err != nil {
		return true, op.err
	}
	ready := true
	for _, ref := range op.refs {
		switch _, known := b.defined[ref]; {
		case !known:
			return true, invalidValue("bulkId %q is not defined by any POST in this request", ref)
		case b.failed[ref]:
			return true, invalidValue("bulkId %q refers to an operation that failed", ref)
		case b.created[ref] == "":
			ready = false
		}
	}
	return ready, nil
}

// nextUserCreate takes the pending operation at the cursor when it is a POST /Users
// ready to run, so that a batch of creates keeps the order operations run in.
func (b *bulkRun) nextUserCreate() (int, bool) {
	if b.cursor >= len(b.pending) {
		return 0, false
	}
	i := b.pending[b.cursor]
	if op := b.ops[i]; op.err != nil || op.method != http.MethodPost || op.rt != resUser {
		return 0, false
	}
	if ready, err := b.readiness(b.ops[i]); !ready || err != nil {
		return 0, false
	}
	b.pending = slices.Delete(b.pending, b.cursor, b.cursor+1)
	b.progressed = true
	return i, true
}

func (b *bulkRun) run() {
	for !b.done() {
		i, err, ok := b.next()
		if !ok {
			return
		}
		if op := b.ops[i]; err == nil && op.method == http.MethodPost && op.rt == resUser {
			batch := []int{i}
			for len(batch) < bulkBatchSize {
				j, ok := b.nextUserCreate()
				if !ok {
					break
				}
				batch = append(batch, j)
			}
			b.createUsers(batch)
			continue
		}
		b.exec(i, err)
	}
}

// createUsers runs consecutive POST /Users operations with identity.CreateUsers: one
// statement per table for all of them instead of several per user. Each keeps its own
// status and error, in order, and failOnErrors stops at the same operation as one by
// one: a body that cannot be read first writes the creates before it. If the batched
// write meets a concurrent change, the creates run one by one.
func (b *bulkRun) createUsers(batch []int) {
	var run []int
	var users []identity.User
	flush := func() {
		if len(run) == 0 {
			return
		}
		maxFailures := 0
		if b.failOn > 0 {
			maxFailures = b.failOn - b.errors
		}
		created, err := b.h.identity.CreateUsers(b.ctx, b.tenant, users, maxFailures)
		switch {
		case errors.Is(err, identity.ErrBatchRaced):
			for _, i := range run {
				if b.done() {
					break
				}
				b.exec(i, nil)
			}
		case err != nil:
			for _, i := range run {
				b.order = append(b.order, i)
				b.errors++
				b.fail(i, err)
			}
		default:
			for k, c := range created {
				i := run[k]
				b.order = append(b.order, i)
				if c.Err != nil {
					b.errors++
					b.fail(i, c.Err)
					continue
				}
				b.succeed(i, http.StatusCreated, c.User.ID, c.User.Version)
			}
		}
		run, users = nil, nil
	}
	for _, i := range batch {
		if b.done() {
			return
		}
		op := b.ops[i]
		b.resolve(op)
		u, err := b.h.userFrom(b.ctx, b.tenant, op.data)
		if err != nil {
			flush()
			if b.done() {
				return
			}
			b.order = append(b.order, i)
			b.errors++
			b.fail(i, err)
			continue
		}
		run, users = append(run, i), append(users, u)
	}
	flush()
}

// exec processes operation i: it fails with err when that is set, else it runs.
func (b *bulkRun) exec(i int, err error) {
	op := b.ops[i]
	b.order = append(b.order, i)
	b.results[i] = bulkResult{Method: op.method, BulkID: op.bulkID}
	if err == nil {
		err = b.apply(op)
	}
	if err != nil {
		b.errors++
		b.fail(i, err)
	}
}

// succeed records operation i's success on the resource id at version (0: none).
func (b *bulkRun) succeed(i, status int, id string, version int64) {
	op := b.ops[i]
	res := bulkResult{Method: op.method, BulkID: op.bulkID, Status: strconv.Itoa(status), Location: b.h.location(op.rt, id)}
	if version != 0 {
		res.Version = etag(version)
	}
	b.results[i] = res
	if op.method == http.MethodPost {
		b.created[op.bulkID] = id
	}
}

func (b *bulkRun) fail(i int, err error) {
	op := b.ops[i]
	if op.method == http.MethodPost && op.bulkID != "" {
		b.failed[op.bulkID] = true
	}
	status, body := b.h.errorBody(b.ctx, op.method, "/Bulk "+op.path, err)
	b.results[i] = bulkResult{Method: op.method, BulkID: op.bulkID, Status: strconv.Itoa(status), Response: body}
}

// resolve replaces the bulkId references of op (in its path's id and its data) by the
// ids of the resources created.
func (b *bulkRun) resolve(op *bulkOp) {
	ref := func(s string) string {
		if r, ok := strings.CutPrefix(s, bulkIDPrefix); ok && b.created[r] != "" {
			return b.created[r]
		}
		return s
	}
	op.id = ref(op.id)
	if op.data != nil {
		walkStrings(op.data, ref)
	}
	if op.method == http.MethodPatch && op.data != nil {
		patchPaths(op.data, func(s string) string {
			for _, r := range quotedRefs(s) {
				if id := b.created[r]; id != "" {
					s = strings.ReplaceAll(s, `"`+bulkIDPrefix+r+`"`, `"`+id+`"`)
				}
			}
			return s
		})
	}
}

// apply resolves op's references and runs it as its single-resource endpoint does.
func (b *bulkRun) apply(op *bulkOp) error {
	b.resolve(op)
	id := op.id
	if strings.IndexByte(id, 0) >= 0 {
		// As in a URL (see ServeHTTP): no resource id holds U+0000.
		return apperr.NotFound("no %s with id %q in this tenant", strings.ToLower(op.rt), id)
	}
	if op.rt == resGroup {
		if err := groupsAllowed(b.ctx); err != nil {
			return err
		}
	}
	var patchOps []patch.Operation
	if op.method == http.MethodPatch {
		raw, err := json.Marshal(op.data)
		if err != nil {
			return err
		}
		if patchOps, err = patch.ParseRequest(raw, MaxPatchOperations); err != nil {
			return patchError(err)
		}
	}
	ctx, ifVersion := b.ctx, parseVersion(op.version)
	status, version := http.StatusOK, int64(0)
	var err error
	switch op.rt + " " + op.method {
	case resUser + " POST":
		var u identity.User
		u, err = b.h.createUserFrom(ctx, b.tenant, op.data)
		id, version, status = u.ID, u.Version, http.StatusCreated
	case resUser + " PUT":
		var u identity.User
		u, err = b.h.replaceUserFrom(ctx, b.tenant, id, ifVersion, op.data)
		version = u.Version
	case resUser + " PATCH":
		var u identity.User
		u, err = b.h.patchUserWith(ctx, b.tenant, id, ifVersion, patchOps)
		version = u.Version
	case resUser + " DELETE":
		err = b.h.access.DeleteUser(ctx, b.tenant, id, ifVersion)
		status = http.StatusNoContent
	case resGroup + " POST":
		var g access.Group
		g, err = b.h.createGroupFrom(ctx, b.tenant, op.data)
		id, version, status = g.ID, g.Version, http.StatusCreated
	case resGroup + " PUT":
		var g access.Group
		g, err = b.h.replaceGroupFrom(ctx, b.tenant, id, ifVersion, op.data)
		version = g.Version
	case resGroup + " PATCH":
		var g access.Group
		g, err = b.h.patchGroupWith(ctx, b.tenant, id, ifVersion, patchOps)
		version, status = g.Version, http.StatusNoContent
	case resGroup + " DELETE":
		err = b.h.access.DeleteGroup(ctx, b.tenant, id, ifVersion)
		status = http.StatusNoContent
	}
	if err != nil {
		return err
	}
	b.succeed(b.order[len(b.order)-1], status, id, version)
	return nil
}
