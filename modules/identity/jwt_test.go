package identity_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
)

// acceptAnyEd25519 is a signing method that "verifies" every signature made for an
// Ed25519 public key. jwt's own guards cannot stop it: alg is not "none" and the key
// type is the one the key function returns. Only the algorithm pin can.
type acceptAnyEd25519 struct{}

func (acceptAnyEd25519) Alg() string { return "X-TEST-ANY-ED25519" }

func (acceptAnyEd25519) Sign(string, any) ([]byte, error) { return []byte("forged"), nil }

func (acceptAnyEd25519) Verify(_ string, _ []byte, key any) error {
	if _, ok := key.(ed25519.PublicKey); !ok {
		return errors.New("not an Ed25519 key")
	}
	return nil
}

func init() {
	jwt.RegisterSigningMethod(acceptAnyEd25519{}.Alg(), func() jwt.SigningMethod { return acceptAnyEd25519{} })
}

// Session tokens are accepted only with EdDSA: a token naming any other registered
// algorithm is refused before its signature is looked at, so a weak or broken
// algorithm can never stand in for the real one. The control is the same claims,
// kid and session signed with EdDSA.
func TestAlgorithmPinned(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		m := cache.NewMemory()
		t.Cleanup(func() { m.Close() })
		f := setup(t, bdb, m)
		ctx := context.Background()
		s, _ := f.start(t)
		k, err := f.keys.Active(ctx, keys.PurposeSession)
		if err != nil {
			t.Fatal(err)
		}
		claims := jwt.MapClaims{"iss": issuer, "aud": []string{identity.DefaultAudience}, "sub": f.user.ID,
			"tid": f.tenantID, "sid": s.ID, "exp": f.clk.Now().Add(time.Hour).Unix()}
		sign := func(m jwt.SigningMethod, key any) string {
			tok := jwt.NewWithClaims(m, claims)
			tok.Header["kid"] = k.ID
			out, err := tok.SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		if _, err := f.sessions.Authenticate(ctx, sign(jwt.SigningMethodEdDSA, k.Signer)); err != nil {
			t.Fatalf("control (EdDSA) refused: %v", err)
		}
		refused(t, f, "a registered algorithm other than EdDSA", sign(acceptAnyEd25519{}, nil))
	})
}
