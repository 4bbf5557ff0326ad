package sso_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
)

// events returns the tenant's events with the given action, oldest first.
func (e *env) events(action string) []audit.Stored {
	e.t.Helper()
	var evs []audit.Stored
	if err := e.db.NewSelect().Model(&evs).Where("tenant_id = ? AND action = ?", e.tenant.ID, action).
		OrderExpr("id").Scan(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// Each sign-in records one sso.login_succeeded, by the person, naming the session it
// started (written in the session's own transaction); each way a session ends records
// one session.revoked for the person, with the reason and the sessions it ended.
func TestSignInAndSignOutAreAudited(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) { signInAndSignOutAreAudited(t, bdb) })
}

func signInAndSignOutAreAudited(t *testing.T, bdb *bun.DB) {
	e, idp := crafted(t, bdb)
	ada, err := e.identity.FindForSignIn(context.Background(), e.tenant.ID, "ada@acme.test", "")
	if err != nil {
		t.Fatal(err)
	}
	b, token := e.signIn(idp, "ada@acme.test")
	e.signIn(idp, "ada@acme.test")
	var list struct{ Sessions []struct{ ID string } }
	if st := e.getJSON("/auth/sessions", token, &list); st != http.StatusOK || len(list.Sessions) != 2 {
		t.Fatalf("/auth/sessions = %d %+v", st, list)
	}
	var live []string
	for _, s := range list.Sessions {
		live = append(live, s.ID)
	}
	ins := e.events("sso.login_succeeded")
	if len(ins) != 2 {
		t.Fatalf("%d sso.login_succeeded events for 2 sign-ins", len(ins))
	}
	for _, ev := range ins {
		sid, _ := ev.Changes["session"].After.(string)
		if ev.ActorType != audit.ActorUser || ev.ActorID != ada.ID || ev.ActorName != ada.UserName ||
			ev.TargetType != "user" || ev.TargetID != ada.ID || !slices.Contains(live, sid) || ev.Changes["method"].After != "saml" {
			t.Fatalf("sso.login_succeeded = %+v; sessions %v", ev, live)
		}
	}

	// Logout: one event, by the person, for the session of the request.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/auth/logout", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %v %v", resp, err)
	}
	resp.Body.Close()
	// Single Logout from the IdP: one event for the person's other session.
	slo := e.srv.URL + "/saml/" + e.slug() + "/slo"
	resp, err = http.PostForm(slo, url.Values{"SAMLRequest": {idp.LogoutRequest(t, samltest.LogoutOptions{Destination: slo, NameID: "ada@acme.test"})}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("SLO: %v %v", resp, err)
	}
	resp.Body.Close()
	if e.whoami(b) != http.StatusUnauthorized {
		t.Fatal("a session survived logout and SLO")
	}
	outs := e.events("session.revoked")
	if len(outs) != 2 {
		t.Fatalf("%d session.revoked events; want one for the logout and one for the SLO", len(outs))
	}
	for i, want := range []struct {
		reason string
		actor  audit.ActorType
	}{{"logout", audit.ActorUser}, {"saml_logout", audit.ActorSystem}} {
		ev := outs[i]
		ended, _ := ev.Changes["sessions"].After.([]any)
		if ev.Changes["reason"].After != want.reason || ev.ActorType != want.actor || ev.TargetType != "user" ||
			ev.TargetID != ada.ID || ev.TargetDisplay != ada.UserName || len(ended) != 1 || ev.Changes["sessionsRevoked"].After != float64(1) {
			t.Fatalf("session.revoked #%d = %+v", i, ev)
		}
	}
}
