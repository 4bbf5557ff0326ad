package audit

import (
	"testing"
	"time"
)

// The canonical form is a published format (external verifiers recompute it): this
// pins it byte for byte, and the hash with it (computed independently with Python:
// hashlib.sha256(("abc\n" + canonical).encode()).hexdigest()).
func TestCanonicalForm(t *testing.T) {
	changes, err := encodeChanges(map[string]Change{"name": {Before: "Ada", After: "Ada L."}, "n": {After: 1.50}})
	if err != nil {
		t.Fatal(err)
	}
	r := &eventRow{TenantID: "acme", Seq: 7, ID: "01hv3k9q6x0d6y7m2e6a1b2c3d",
		OccurredAt: time.Date(2026, 11, 22, 10, 0, 0, 1000, time.FixedZone("CET", 3600)),
		ActorType:  "scim_token", ActorID: "tok1", ActorName: "Okta", Action: "user.updated",
		TargetType: "user", TargetID: "u1", TargetDisplay: "ada@acme.com", Changes: changes,
		RequestID: "r1", RemoteIP: "192.0.2.1", UserAgent: "Okta/1.0\n"}
	want := "gatehouse-audit-v1\n" +
		"4:acme\n1:7\n26:01hv3k9q6x0d6y7m2e6a1b2c3d\n27:2026-11-22T09:00:00.000001Z\n" +
		"10:scim_token\n4:tok1\n4:Okta\n12:user.updated\n4:user\n2:u1\n12:ada@acme.com\n" +
		`60:{"n":{"after":1.5},"name":{"after":"Ada L.","before":"Ada"}}` + "\n" +
		"2:r1\n9:192.0.2.1\n9:Okta/1.0\n\n"
	got := string(canonical(r, canonicalChangesOrNull(r.Changes)))
	if got != want {
		t.Fatalf("canonical form\n%q\nwant\n%q", got, want)
	}
	if h := chainHash("abc", []byte(want)); h != "b04d0cd0008483f27054dea163f15b80c0a5c4c663d1566ff47b6174fa2a5aa4" {
		t.Fatalf("hash %s", h)
	}
	if got := string(canonicalChangesOrNull(nil)); got != "null" {
		t.Fatalf("no changes: %q", got)
	}
}
