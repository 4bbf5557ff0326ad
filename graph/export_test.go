package graph

import (
	"strconv"
	"testing"
	"time"
)

// GlobalID lets the black-box tests build ids the way clients receive them.
var GlobalID = globalID

// SetLiveIntervals makes live subscriptions re-check their session and permission every
// recheck and read the log for missed events every catchUp, for the rest of the test.
func SetLiveIntervals(t testing.TB, recheck, catchUp time.Duration) {
	oldRecheck, oldCatchUp := recheckEvery, catchUpEvery
	recheckEvery, catchUpEvery = recheck, catchUp
	t.Cleanup(func() { recheckEvery, catchUpEvery = oldRecheck, oldCatchUp })
}

// Cursor is a connection cursor around raw, as clients receive them.
var Cursor = cursorOf

// AuditCursor is the cursor of the audit event with the given seq.
func AuditCursor(seq int64) string { return cursorOf(strconv.FormatInt(seq, 10)) }
