package access_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Deleting a group takes it out of the groups it was a member of, and each of them
// records that as group.members_removed, as when a member user is deleted: a consumer
// that follows membership sees every member leave.
func TestDeletedGroupLeavesItsParents(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningSCIM, tenancy.FeatureUserGroups).ID
		ada := f.user(tid, "Ada", identity.SourceSCIM)
		eng := f.group(tid, "Engineering", identity.SourceSCIM, ada.ID)
		everyone := f.group(tid, "Everyone", identity.SourceSCIM, eng.ID)
		staff := f.group(tid, "Staff", identity.SourceSCIM, eng.ID, ada.ID)
		f.group(tid, "Unrelated", identity.SourceSCIM, ada.ID)
		before := len(f.events(tid, "group.members_removed"))
		must(t, f.acc.DeleteGroup(ctx, tid, eng.ID, 0))
		events := f.events(tid, "group.members_removed")[before:]
		got := map[string]string{}
		for _, e := range events {
			got[e.TargetID] = fmt.Sprint(e.Changes["members"].Before)
		}
		want := map[string]string{everyone.ID: "[" + eng.ID + "]", staff.ID: "[" + eng.ID + "]"}
		if len(got) != len(want) || len(events) != len(want) {
			t.Fatalf("group.members_removed events %v, want %v", got, want)
		}
		for id, w := range want {
			if got[id] != w {
				t.Fatalf("group.members_removed events %v, want %v", got, want)
			}
		}
		if e := f.lastEvent(tid, "group.deleted"); e.TargetID != eng.ID {
			t.Fatalf("group.deleted %+v", e)
		}
	})
}

// pauseKey marks the context of a call that pauser holds up.
type pauseKey struct{}

// pauser holds up, once, the call whose context carries pauseKey right after it runs
// a statement starting with prefix: reached is closed then, and it goes on when release
// is closed.
type pauser struct {
	prefix           string
	reached, release chan struct{}
}

func newPauser(bdb *bun.DB, prefix string) *pauser {
	p := &pauser{prefix: prefix, reached: make(chan struct{}), release: make(chan struct{})}
	bdb.AddQueryHook(p)
	return p
}

func (p *pauser) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (p *pauser) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	if ctx.Value(pauseKey{}) != nil && strings.HasPrefix(e.Query, p.prefix) {
		close(p.reached)
		<-p.release
	}
}

// A group deleted while a change to its parent takes it out of that parent: the parent
// records the removal once, by the change that made it, not again by the deletion.
func TestDeletedGroupLeavingAParentMeanwhile(t *testing.T) {
	bdb := testenv.Postgres(t) // SQLite runs one writing transaction at a time
	f := newFx(t, bdb)
	p := newPauser(bdb, `DELETE FROM "group_members"`)
	tid := f.tenant(tenancy.ProvisioningSCIM, tenancy.FeatureUserGroups).ID
	eng := f.group(tid, "Engineering", identity.SourceSCIM)
	everyone := f.group(tid, "Everyone", identity.SourceSCIM, eng.ID)
	changed := make(chan error, 1)
	go func() {
		_, err := f.acc.UpdateGroup(context.WithValue(ctx, pauseKey{}, true), tid, everyone.ID, 0, func(*access.Group) (access.MemberChange, error) {
			return access.MemberChange{Remove: []string{eng.ID}}, nil
		})
		changed <- err
	}()
	<-p.reached
	deleted := make(chan error, 1)
	go func() { deleted <- f.acc.DeleteGroup(ctx, tid, eng.ID, 0) }()
	time.Sleep(300 * time.Millisecond) // the deletion now waits for the change's lock
	close(p.release)
	must(t, <-changed)
	must(t, <-deleted)
	if es := f.events(tid, "group.members_removed"); len(es) != 1 || es[0].TargetID != everyone.ID {
		t.Fatalf("group.members_removed events %+v, want one for Everyone", es)
	}
}

// A user deleted after a group change found them and before it adds them: the add is
// the client's to send again (invalidValue), not an internal error.
func TestAddingAUserDeletedMeanwhile(t *testing.T) {
	bdb := testenv.Postgres(t) // SQLite runs one writing transaction at a time
	f := newFx(t, bdb)
	p := newPauser(bdb, `SELECT "u"."id", "u"."user_name"`)
	tid := f.tenant(tenancy.ProvisioningSCIM, tenancy.FeatureUserGroups).ID
	ada := f.user(tid, "Ada", identity.SourceSCIM)
	g := f.group(tid, "G", identity.SourceSCIM)
	added := make(chan error, 1)
	go func() {
		_, err := f.acc.UpdateGroup(context.WithValue(ctx, pauseKey{}, true), tid, g.ID, 0, func(*access.Group) (access.MemberChange, error) {
			return access.MemberChange{Add: []string{ada.ID}}, nil
		})
		added <- err
	}()
	<-p.reached
	must(t, f.acc.DeleteUser(ctx, tid, ada.ID, 0))
	close(p.release)
	if err := <-added; apperr.CodeOf(err) != "invalidValue" {
		t.Fatalf("adding a user deleted meanwhile: %v (kind %q), want invalidValue", err, apperr.KindOf(err))
	}
}
