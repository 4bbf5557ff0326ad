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

// SetPingInterval makes websocket connections opened by handlers built from now on ping
// every d, for the rest of the test.
func SetPingInterval(t testing.TB, d time.Duration) {
	old := pingEvery
	pingEvery = d
	t.Cleanup(func() { pingEvery = old })
}

// SetBatchWait makes the loaders of requests from now on gather keys for d before they
// query, for the rest of the test.
func SetBatchWait(t testing.TB, d time.Duration) {
	old := batchWait
	batchWait = d
	t.Cleanup(func() { batchWait = old })
}

// Cursor is a connection cursor around raw, as clients receive them.
var Cursor = cursorOf

// AuditCursor is the cursor of the audit event with the given seq.
func AuditCursor(seq int64) string { return cursorOf(strconv.FormatInt(seq, 10)) }
