package keys_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func secret(t *testing.T) []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func newStore(t *testing.T, bdb bun.IDB, sk []byte) *keys.Store {
	t.Helper()
	s, err := keys.New(bdb, clock.System{}, sk)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRotation(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		ctx := context.Background()
		a := newStore(t, bdb, secret(t))
		first, err := a.Active(ctx, keys.PurposeSession)
		if err != nil {
			t.Fatal(err)
		}
		if first.Signer == nil || first.Algorithm != "EdDSA" {
			t.Fatalf("first key: %+v", first)
		}
		next, err := a.Add(ctx, keys.PurposeSession)
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := a.Published(ctx, keys.PurposeSession)
		if len(pub) != 2 || pub[0].ID != first.ID {
			t.Fatalf("published after Add = %v; want the active key first, then the next one", idsOf(pub))
		}
		if act, _ := a.Active(ctx, keys.PurposeSession); act.ID != first.ID {
			t.Fatal("Add must not change the signing key")
		}
		if _, err := a.Retire(ctx, first.ID); err == nil {
			t.Fatal("retiring the active key must be refused")
		}
		if _, err := a.Activate(ctx, next.ID); err != nil {
			t.Fatal(err)
		}
		if act, _ := a.Active(ctx, keys.PurposeSession); act.ID != next.ID {
			t.Fatalf("active = %s, want %s", act.ID, next.ID)
		}
		if k, err := a.Verifier(ctx, keys.PurposeSession, first.ID); err != nil || k.Status != keys.StatusPrevious {
			t.Fatalf("the previous key must still verify: %+v %v", k, err)
		}
		if _, err := a.Retire(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Verifier(ctx, keys.PurposeSession, first.ID); err == nil {
			t.Fatal("a retired key must not verify")
		}
		if _, err := a.Verifier(ctx, keys.PurposeSAML, next.ID); err == nil {
			t.Fatal("a session key must not verify SAML")
		}
		saml, err := a.Active(ctx, keys.PurposeSAML)
		if err != nil || saml.Certificate == nil || saml.Algorithm != "RS256" {
			t.Fatalf("SAML key: %+v %v", saml, err)
		}
	})
}

// A key activated through one replica is trusted by another at once: an unknown key id
// forces a reload instead of waiting for the refresh interval.
func TestAnotherReplicaSeesRotation(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		ctx := context.Background()
		sk := secret(t)
		a, b := newStore(t, bdb, sk), newStore(t, bdb, sk)
		if _, err := b.Active(ctx, keys.PurposeSession); err != nil {
			t.Fatal(err)
		}
		k, _ := a.Add(ctx, keys.PurposeSession)
		if _, err := b.Verifier(ctx, keys.PurposeSession, k.ID); err != nil {
			t.Fatalf("replica b does not trust a key added on a: %v", err)
		}
	})
}

func TestConcurrentFirstUseMakesOneKey(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		ctx := context.Background()
		sk := secret(t)
		var wg sync.WaitGroup
		got := make([]string, 4)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, err := newStore(t, bdb, sk).Active(ctx, keys.PurposeSession)
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = k.ID
			}()
		}
		wg.Wait()
		for _, id := range got {
			if id != got[0] {
				t.Fatalf("replicas disagree on the active key: %v", got)
			}
		}
	})
}

func TestSealing(t *testing.T) {
	bdb := testenv.SQLite(t)
	ctx := context.Background()
	sk := secret(t)
	k, err := newStore(t, bdb, sk).Active(ctx, keys.PurposeSession)
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := bdb.NewSelect().Table("signing_keys").Column("private_key").Where("id = ?", k.ID).Scan(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "sealed:v1:") {
		t.Fatalf("private key stored as %.12q…; want sealed", stored)
	}
	again, err := newStore(t, bdb, sk).Active(ctx, keys.PurposeSession)
	if err != nil || !bytes.Equal(again.Public.(ed25519.PublicKey), k.Public.(ed25519.PublicKey)) {
		t.Fatalf("reload with the same secret: %v", err)
	}
	if _, err := newStore(t, bdb, secret(t)).Active(ctx, keys.PurposeSession); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_SECRET_KEY") {
		t.Fatalf("wrong secret key: err = %v; want one naming GATEHOUSE_SECRET_KEY", err)
	}
	if _, err := newStore(t, bdb, nil).Active(ctx, keys.PurposeSession); err == nil {
		t.Fatal("no secret key for sealed keys must be an error")
	}
}

func idsOf(ks []keys.Key) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.ID+":"+string(k.Status))
	}
	return out
}

// A deployment that started without GATEHOUSE_SECRET_KEY stored its first keys
// unsealed. Once the secret key is set, no private key may stay in the clear: the
// store seals every key it finds unsealed (active, next, previous and retired), and
// they keep working.
func TestSecretKeySetLaterSealsStoredKeys(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		ctx := context.Background()
		plain := newStore(t, bdb, nil)
		old, err := plain.Active(ctx, keys.PurposeSession)
		if err != nil {
			t.Fatal(err)
		}
		next, err := plain.Add(ctx, keys.PurposeSession)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := plain.Activate(ctx, next.ID); err != nil {
			t.Fatal(err)
		}
		spare, err := plain.Add(ctx, keys.PurposeSession)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := plain.Retire(ctx, spare.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := plain.Active(ctx, keys.PurposeSAML); err != nil {
			t.Fatal(err)
		}

		sk := secret(t)
		sealed := newStore(t, bdb, sk)
		for _, p := range keys.Purposes {
			if _, err := sealed.Published(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		var stored []struct {
			ID         string `bun:"id"`
			PrivateKey string `bun:"private_key"`
		}
		if err := bdb.NewSelect().Table("signing_keys").Column("id", "private_key").Scan(ctx, &stored); err != nil {
			t.Fatal(err)
		}
		for _, r := range stored {
			if !strings.HasPrefix(r.PrivateKey, "sealed:v1:") {
				t.Errorf("key %s is still stored as %.12q… with GATEHOUSE_SECRET_KEY set; want sealed", r.ID, r.PrivateKey)
			}
		}
		// The keys are the same keys, and open with the secret key only.
		act, err := newStore(t, bdb, sk).Active(ctx, keys.PurposeSession)
		if err != nil || act.ID != next.ID || act.Signer == nil {
			t.Fatalf("active key after sealing: %+v, %v", act, err)
		}
		if prev, err := newStore(t, bdb, sk).Verifier(ctx, keys.PurposeSession, old.ID); err != nil || prev.Status != keys.StatusPrevious {
			t.Fatalf("previous key after sealing: %+v, %v", prev, err)
		}
		if _, err := newStore(t, bdb, nil).Active(ctx, keys.PurposeSession); err == nil {
			t.Fatal("the sealed keys opened without the secret key")
		}
	})
}
