package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// canonicalVersion starts every canonical form; a future change of the form changes it.
const canonicalVersion = "gatehouse-audit-v1"

// legacyHash marks events recorded before the chain existed (see the migration).
const legacyHash = "legacy"

// occurredAtLayout is RFC 3339 in UTC with exactly six fractional digits.
const occurredAtLayout = "2006-01-02T15:04:05.000000Z07:00"

// canonical returns the bytes an event's hash covers (see the package documentation);
// changes is the canonical JSON of the event's changes, or "null".
func canonical(r *eventRow, changes []byte) []byte {
	var b strings.Builder
	b.WriteString(canonicalVersion)
	b.WriteByte('\n')
	field := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
		b.WriteByte('\n')
	}
	field(r.TenantID)
	field(strconv.FormatInt(r.Seq, 10))
	field(r.ID)
	field(r.OccurredAt.UTC().Format(occurredAtLayout))
	field(r.ActorType)
	field(r.ActorID)
	field(r.ActorName)
	field(r.Action)
	field(r.TargetType)
	field(r.TargetID)
	field(r.TargetDisplay)
	field(string(changes))
	field(r.RequestID)
	field(r.RemoteIP)
	field(r.UserAgent)
	return []byte(b.String())
}

// chainHash is hex(SHA-256(prevHash || "\n" || canonical)).
func chainHash(prevHash string, canonical []byte) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write([]byte{'\n'})
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil))
}

// encodeChanges returns the canonical JSON to store for an event's changes (nil, stored
// as NULL, when there are none).
func encodeChanges(m map[string]Change) (*string, error) {
	if m == nil {
		return nil, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	c, err := canonicalJSON(raw)
	if err != nil {
		return nil, err
	}
	s := string(c)
	return &s, nil
}

// canonicalJSON parses raw and encodes it again: map keys sorted, numbers as float64,
// no space. Applied to its own output it changes nothing, and jsonb's re-formatting of
// a document (spaces, key order, number notation) does not change its result.
func canonicalJSON(raw []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return json.Marshal(storableJSON(v))
}

// storableJSON makes a parsed value one that jsonb keeps as it is: it drops NUL
// characters from strings and keys (jsonb refuses \u0000) and turns -0 into 0 (numeric
// has no negative zero).
func storableJSON(v any) any {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, "\x00", "")
	case float64:
		if x == 0 {
			return float64(0)
		}
		return x
	case []any:
		for i := range x {
			x[i] = storableJSON(x[i])
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[strings.ReplaceAll(k, "\x00", "")] = storableJSON(e)
		}
		return out
	}
	return v
}

// canonicalChangesOrNull is the changes field of the canonical form of a stored row.
// The boolean result of canonicalChanges is dropped: at record time the value is
// canonical already.
func canonicalChangesOrNull(stored *string) []byte {
	c, _ := canonicalChanges(stored)
	return c
}

// canonicalChanges re-canonicalises the changes column as read back; ok is false when it
// is not JSON (an edited row).
func canonicalChanges(stored *string) ([]byte, bool) {
	if stored == nil {
		return []byte("null"), true
	}
	c, err := canonicalJSON([]byte(*stored))
	if err != nil {
		return []byte(*stored), false
	}
	return c, true
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	// Checked counts the events whose links and hashes were verified.
	Checked int64
	// OK is true when the chain is intact from the checkpoint to the chain head.
	OK bool
	// BrokenSeq is the seq of the first event found missing, edited or out of place.
	BrokenSeq int64
	// BrokenID is the id of that event, when it exists ("" for a missing one).
	BrokenID string
	// Reason says what is wrong, for a person.
	Reason string
	// FromCheckpoint is the seq verification started after (0 = the first event): the
	// last pruned event, or the last event older than the chain.
	FromCheckpoint int64
}

// verifyBatch is how many events Verify reads at a time.
const verifyBatch = 1000

// checkpointRow is where a tenant's chain starts after pruning (or after legacy events).
type checkpointRow struct {
	bun.BaseModel `bun:"table:audit_checkpoints"`

	TenantID string    `bun:"tenant_id,pk"`
	Seq      int64     `bun:"seq"`
	Hash     string    `bun:"hash"`
	PrunedAt time.Time `bun:"pruned_at"`
}

func loadCheckpoint(ctx context.Context, idb bun.IDB, tenantID string) (checkpointRow, error) {
	var c checkpointRow
	err := idb.NewSelect().Model(&c).Where("tenant_id = ?", tenantID).Scan(ctx)
	if db.IsNoRows(err) {
		return checkpointRow{TenantID: tenantID}, nil
	}
	return c, err
}

func loadHead(ctx context.Context, idb bun.IDB, tenantID string) (chainRow, bool, error) {
	var c chainRow
	err := idb.NewSelect().Model(&c).Where("tenant_id = ?", tenantID).Scan(ctx)
	if db.IsNoRows(err) {
		return chainRow{}, false, nil
	}
	return c, err == nil, err
}

// Verify walks the tenant's events in seq order from its checkpoint (in batches) and
// reports the first broken link: a missing event (deleted, or its seq or tenant
// changed), a prev_hash that is not the previous event's hash, a hash that does not
// match the event's contents (edited), an event at or before the checkpoint (any after
// a prune, one that is not a legacy one before), and a chain head (audit_chains) that does not name the last event
// (the newest events deleted, or the head edited), or an event beyond it.
//
// It reads the chain head first and verifies up to it, so events committed meanwhile
// are left for the next run. A prune that runs meanwhile is noticed (the checkpoint
// moved) and the walk starts over. Run it inside a repeatable-read transaction for a
// single snapshot.
func (l *Log) Verify(ctx context.Context, idb bun.IDB, tenantID string) (VerifyReport, error) {
	for attempt := 0; ; attempt++ {
		rep, cp, err := verifyOnce(ctx, idb, tenantID)
		if err != nil || rep.OK || attempt == 2 {
			return rep, err
		}
		// A break right after a prune may be the prune itself: check the checkpoint.
		now, err := loadCheckpoint(ctx, idb, tenantID)
		if err != nil {
			return rep, err
		}
		if now.Seq == cp.Seq && now.Hash == cp.Hash {
			return rep, nil
		}
	}
}

func verifyOnce(ctx context.Context, idb bun.IDB, tenantID string) (VerifyReport, checkpointRow, error) {
	head, hasHead, err := loadHead(ctx, idb, tenantID)
	if err != nil {
		return VerifyReport{}, checkpointRow{}, err
	}
	cp, err := loadCheckpoint(ctx, idb, tenantID)
	if err != nil {
		return VerifyReport{}, cp, err
	}
	rep := VerifyReport{FromCheckpoint: cp.Seq}
	broken := func(seq int64, id, reason string, args ...any) (VerifyReport, checkpointRow, error) {
		rep.BrokenSeq, rep.BrokenID, rep.Reason = seq, id, fmt.Sprintf(reason, args...)
		return rep, cp, nil
	}

	// Only events older than the chain may remain at or before the checkpoint, and only
	// while it is the one the chain started from (hash "legacy"): a prune deletes a
	// prefix, those events first. Anything else there means the checkpoint was moved
	// forward over events to hide them (marking them "legacy" does not make them so).
	if cp.Seq > 0 {
		var early []eventRow
		q := idb.NewSelect().Model(&early).Column("id", "seq").Where("tenant_id = ? AND seq <= ?", tenantID, cp.Seq)
		if cp.Hash == legacyHash {
			q = q.Where("hash <> ?", legacyHash)
		}
		if err := q.OrderExpr("seq").Limit(1).Scan(ctx); err != nil {
			return rep, cp, err
		}
		if len(early) > 0 {
			return broken(early[0].Seq, early[0].ID, "event #%d is at or before the checkpoint (#%d) but was not pruned: the checkpoint was moved", early[0].Seq, cp.Seq)
		}
	}

	upTo := head.LastSeq
	if !hasHead {
		upTo = 1<<63 - 1
	}
	w := walker{tenantID: tenantID, seq: cp.Seq, hash: cp.Hash}
	if b, err := w.walk(ctx, idb, upTo); err != nil || b != nil {
		rep.Checked = w.checked
		if err != nil {
			return rep, cp, err
		}
		return broken(b.seq, b.id, "%s", b.reason)
	}
	rep.Checked = w.checked

	if !hasHead {
		if w.seq == cp.Seq && cp.Seq == 0 {
			rep.OK = true // no events at all
			return rep, cp, nil
		}
		return broken(w.seq, "", "the chain head (audit_chains) is missing: it should name event #%d", w.seq)
	}
	if w.seq < head.LastSeq {
		return broken(w.seq+1, "", "event #%d is missing: the chain head says the log ends at #%d (the newest events were deleted, or the head was edited)", w.seq+1, head.LastSeq)
	}
	// An event beyond the head was inserted behind Record's back, or the head was moved
	// back. One committed since the head was read has moved the head too.
	var beyond []eventRow
	if err := idb.NewSelect().Model(&beyond).Column("id", "seq").
		Where("tenant_id = ? AND seq > ?", tenantID, head.LastSeq).OrderExpr("seq").Limit(1).Scan(ctx); err != nil {
		return rep, cp, err
	}
	if len(beyond) > 0 {
		again, _, err := loadHead(ctx, idb, tenantID)
		if err != nil {
			return rep, cp, err
		}
		if again.LastSeq < beyond[0].Seq {
			return broken(beyond[0].Seq, beyond[0].ID, "event #%d is beyond the chain head (#%d): it was inserted, or the head was edited", beyond[0].Seq, again.LastSeq)
		}
	}
	if w.hash != head.LastHash {
		return broken(w.seq, w.id, "the chain head's hash does not match event #%d: the head was edited", w.seq)
	}
	rep.OK = true
	return rep, cp, nil
}

// walker follows a tenant's chain from a known (seq, hash).
type walker struct {
	tenantID string
	seq      int64  // the last event verified (or the checkpoint)
	hash     string // its hash
	id       string // its id ("" for the checkpoint)
	checked  int64
}

type breakage struct {
	seq    int64
	id     string
	reason string
}

// walk verifies the events after w.seq up to upTo in seq order, in batches, and returns
// the first break (nil when none).
func (w *walker) walk(ctx context.Context, idb bun.IDB, upTo int64) (*breakage, error) {
	for w.seq < upTo {
		var batch []eventRow
		if err := idb.NewSelect().Model(&batch).
			Where("tenant_id = ? AND seq > ? AND seq <= ?", w.tenantID, w.seq, upTo).
			OrderExpr("seq").Limit(verifyBatch).Scan(ctx); err != nil {
			return nil, err
		}
		for i := range batch {
			r := &batch[i]
			if r.Seq != w.seq+1 {
				return &breakage{seq: w.seq + 1, reason: fmt.Sprintf("event #%d is missing: the log goes from #%d to #%d (deleted, or its seq or tenant changed)", w.seq+1, w.seq, r.Seq)}, nil
			}
			if r.PrevHash != w.hash {
				what := fmt.Sprintf("event #%d", w.seq)
				if w.id == "" {
					what = fmt.Sprintf("the checkpoint (#%d)", w.seq)
					if w.seq == 0 {
						what = "the start of the log (\"\")"
					}
				}
				return &breakage{seq: r.Seq, id: r.ID, reason: fmt.Sprintf("its prev_hash does not match the hash of %s", what)}, nil
			}
			changes, ok := canonicalChanges(r.Changes)
			if !ok {
				return &breakage{seq: r.Seq, id: r.ID, reason: "its changes are not valid JSON: the event was edited"}, nil
			}
			if chainHash(r.PrevHash, canonical(r, changes)) != r.Hash {
				return &breakage{seq: r.Seq, id: r.ID, reason: "its contents do not match its hash: the event was edited"}, nil
			}
			w.seq, w.hash, w.id = r.Seq, r.Hash, r.ID
			w.checked++
		}
		if len(batch) < verifyBatch {
			break
		}
	}
	return nil, nil
}
