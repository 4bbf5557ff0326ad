package audit_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// Every kind of tampering is reported at the event where it happened: an edit of any
// column of a middle event, a deleted middle or newest event, an edited chain head, an
// inserted event.
func TestVerifyFindsTampering(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		const n = 10
		type tc struct {
			name   string
			tamper string // SQL; ? is the tenant
			seq    int64
			reason string
		}
		edit := func(col, value string) tc {
			return tc{"edit " + col, "UPDATE audit_events SET " + col + " = " + value + " WHERE tenant_id = ? AND seq = 5", 5, "edited"}
		}
		cases := []tc{
			edit("occurred_at", "'2020-01-01 00:00:00+00:00'"),
			edit("actor_type", "'user'"),
			edit("actor_id", "'someone-else'"),
			edit("actor_name", "'someone else'"),
			edit("action", "'user.created'"),
			edit("target_type", "'group'"),
			edit("target_id", "'u999'"),
			edit("target_display", "'nobody'"),
			edit("changes", `'{"n":{"after":5,"before":4},"x":{"after":1}}'`),
			edit("changes", "NULL"),
			edit("request_id", "'forged'"),
			edit("remote_ip", "'10.0.0.1'"),
			edit("user_agent", "'curl'"),
			edit("id", "'01zzzzzzzzzzzzzzzzzzzzzzzz'"),
			edit("hash", "'"+strings.Repeat("0", 64)+"'"),
			{"edit prev_hash", "UPDATE audit_events SET prev_hash = 'x' WHERE tenant_id = ? AND seq = 5", 5, "prev_hash"},
			{"move to another tenant", "UPDATE audit_events SET tenant_id = 'other' WHERE tenant_id = ? AND seq = 5", 5, "missing"},
			{"renumber", "UPDATE audit_events SET seq = 1000 WHERE tenant_id = ? AND seq = 5", 5, "missing"},
			{"delete a middle event", "DELETE FROM audit_events WHERE tenant_id = ? AND seq = 5", 5, "missing"},
			{"delete the first event", "DELETE FROM audit_events WHERE tenant_id = ? AND seq = 1", 1, "missing"},
			{"delete the newest event", "DELETE FROM audit_events WHERE tenant_id = ? AND seq = 10", 10, "missing"},
			{"delete the two newest", "DELETE FROM audit_events WHERE tenant_id = ? AND seq >= 9", 9, "missing"},
			{"delete everything", "DELETE FROM audit_events WHERE tenant_id = ?", 1, "missing"},
			{"edit the head's hash", "UPDATE audit_chains SET last_hash = 'x' WHERE tenant_id = ?", 10, "head"},
			{"move the head back", "UPDATE audit_chains SET last_seq = 9 WHERE tenant_id = ?", 10, "beyond the chain head"},
			{"move the head on", "UPDATE audit_chains SET last_seq = 11 WHERE tenant_id = ?", 11, "missing"},
			{"delete the head", "DELETE FROM audit_chains WHERE tenant_id = ?", 10, "head"},
			{"insert an event", `INSERT INTO audit_events (id, tenant_id, seq, prev_hash, hash, occurred_at, actor_type, action)
				SELECT 'forged', tenant_id, 11, hash, hash, occurred_at, actor_type, action FROM audit_events WHERE tenant_id = ? AND seq = 10`, 11, "beyond the chain head"},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f.t = t
				tenant := fmt.Sprintf("t%d", i)
				f.record(tenant, n)
				f.mustVerify(tenant, n)
				f.exec("DELETE FROM audit_outbox WHERE tenant_id = ?", tenant) // the id is referenced from there
				f.exec(c.tamper, tenant)
				rep := f.verify(tenant)
				if rep.OK || rep.BrokenSeq != c.seq || !strings.Contains(rep.Reason, c.reason) {
					t.Fatalf("Verify = %+v, want broken at #%d (%s)", rep, c.seq, c.reason)
				}
			})
		}
	})
}
