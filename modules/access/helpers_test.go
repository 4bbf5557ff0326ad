package access_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

type noDNS struct{}

func (noDNS) LookupTXT(context.Context, string) ([]string, error) { return nil, nil }

// queryCounter counts the queries a *bun.DB runs.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *queryCounter) AfterQuery(context.Context, *bun.QueryEvent) {}

// fx is the access service on one database with the modules it uses.
type fx struct {
	t       *testing.T
	db      *bun.DB
	queries *queryCounter
	audit   *audit.Log
	tenancy *tenancy.Service
	ids     *identity.Service
	acc     *access.Service
	seq     int
}

func newFx(t *testing.T, bdb *bun.DB) *fx {
	t.Helper()
	clk := clock.System{}
	log := audit.New(clk)
	c := cache.NewMemory()
	t.Cleanup(func() { c.Close() })
	ten := tenancy.New(bdb, clk, log, noDNS{})
	ids := identity.New(bdb, clk, log, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	qc := &queryCounter{}
	bdb.AddQueryHook(qc)
	return &fx{t: t, db: bdb, queries: qc, audit: log, tenancy: ten, ids: ids,
		acc: access.New(bdb, clk, log, ids, access.WithTenancy(ten))}
}

// count returns how many queries fn ran.
func (f *fx) count(fn func()) int64 {
	before := f.queries.n.Load()
	fn()
	return f.queries.n.Load() - before
}

func (f *fx) name(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s %d", prefix, f.seq)
}

func (f *fx) tenant(mode tenancy.ProvisioningMode, features ...tenancy.Feature) tenancy.Tenant {
	f.t.Helper()
	f.seq++
	t, err := f.tenancy.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: fmt.Sprintf("t%d", f.seq), ProvisioningMode: mode, Features: features})
	if err != nil {
		f.t.Fatal(err)
	}
	return t
}

// user creates an active user with the given source (SCIM when empty).
func (f *fx) user(tenantID, display string, source identity.Source) identity.User {
	f.t.Helper()
	f.seq++
	u, err := f.ids.CreateUser(ctx, tenantID, identity.User{UserName: fmt.Sprintf("u%d@example.test", f.seq),
		DisplayName: display, Active: true, Source: source})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fx) group(tenantID, name string, source identity.Source, members ...string) access.Group {
	f.t.Helper()
	g, err := f.acc.CreateGroup(ctx, tenantID, access.Group{DisplayName: name, Source: source}, members)
	if err != nil {
		f.t.Fatal(err)
	}
	return g
}

func (f *fx) addMembers(tenantID, groupID string, add ...string) {
	f.t.Helper()
	f.changeMembers(tenantID, groupID, access.MemberChange{Add: add})
}

// changeMembers changes a group's members the way SCIM does.
func (f *fx) changeMembers(tenantID, groupID string, c access.MemberChange) {
	f.t.Helper()
	if _, err := f.acc.UpdateGroup(ctx, tenantID, groupID, 0, func(*access.Group) (access.MemberChange, error) { return c, nil }); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fx) viewer(tenantID, userID string) access.Viewer {
	f.t.Helper()
	v, err := f.acc.Viewer(ctx, identity.Principal{TenantID: tenantID, UserID: userID, SessionID: "s1"})
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

func (f *fx) op(tenantID string) access.Viewer { return access.OperatorViewer(tenantID) }

// person creates a user holding roleID directly and returns their viewer.
func (f *fx) person(tenantID, display, roleID string) access.Viewer {
	f.t.Helper()
	u := f.user(tenantID, display, identity.SourceApp)
	if roleID != access.RoleMember {
		if err := f.acc.SetUserRole(ctx, f.op(tenantID), u.ID, roleID); err != nil {
			f.t.Fatal(err)
		}
	}
	return f.viewer(tenantID, u.ID)
}

func (f *fx) role(tenantID, name string, perms ...access.Permission) access.Role {
	f.t.Helper()
	r, err := f.acc.CreateRole(ctx, f.op(tenantID), name, perms)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fx) space(tenantID, name string) access.Space {
	f.t.Helper()
	s, err := f.acc.CreateSpace(ctx, f.op(tenantID), name, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fx) grant(tenantID, spaceID, ptype, pid string, role access.SpaceRole) {
	f.t.Helper()
	if _, err := f.acc.GrantAccess(ctx, f.op(tenantID), spaceID, ptype, pid, role); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fx) access(tenantID, userID, spaceID string) access.SpaceRole {
	f.t.Helper()
	r, ok, err := f.acc.SpaceAccess(ctx, tenantID, userID, spaceID)
	if err != nil {
		f.t.Fatal(err)
	}
	if ok != (r != "") {
		f.t.Fatalf("SpaceAccess = %q, %v", r, ok)
	}
	return r
}

// events returns the tenant's audit events with the given action, oldest first.
func (f *fx) events(tenantID, action string) []audit.Stored {
	f.t.Helper()
	out, _, err := f.audit.Page(ctx, f.db, tenantID, audit.Filter{Actions: []string{action}}, 0, audit.MaxPage)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fx) lastEvent(tenantID, action string) audit.Stored {
	f.t.Helper()
	es := f.events(tenantID, action)
	if len(es) == 0 {
		f.t.Fatalf("no %s event", action)
	}
	return es[len(es)-1]
}

func wantKind(t *testing.T, err error, kind apperr.Kind, code string) {
	t.Helper()
	if apperr.KindOf(err) != kind || (code != "" && apperr.CodeOf(err) != code) {
		t.Fatalf("error = %v (kind %q, code %q), want kind %q code %q", err, apperr.KindOf(err), apperr.CodeOf(err), kind, code)
	}
}

func wantMessage(t *testing.T, err error, contains string) {
	t.Helper()
	if err == nil || !strings.Contains(apperr.PublicMessage(err), contains) {
		t.Fatalf("error %v does not say %q", err, contains)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
