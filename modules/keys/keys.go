// Package keys owns the deployment's signing keys: the Ed25519 keys that sign session
// JWTs and the RSA key (with a self-signed certificate) that signs SAML AuthnRequests.
// Every replica reads them from the database, so a rotation done once is seen by all.
//
// Rotation is three steps so that nobody who verifies our signatures is ever surprised:
// Add publishes a new key as "next" (in the JWKS and the SP metadata, not yet used to
// sign); Activate makes it the signing key and moves the old one to "previous" (still
// published and accepted); Retire withdraws a key for good.
package keys

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
)

// Purpose says what a key signs.
type Purpose string

const (
	// PurposeSession keys sign session JWTs (EdDSA).
	PurposeSession Purpose = "session"
	// PurposeSAML keys sign SAML AuthnRequests (RSA-SHA256, with a certificate).
	PurposeSAML Purpose = "saml"
)

// Purposes lists every purpose.
var Purposes = []Purpose{PurposeSession, PurposeSAML}

// Status is where a key is in its rotation.
type Status string

const (
	StatusNext     Status = "next"
	StatusActive   Status = "active"
	StatusPrevious Status = "previous"
	StatusRetired  Status = "retired"
)

// Key is a signing key. Signer is nil for keys listed without their private half.
type Key struct {
	ID          string
	Purpose     Purpose
	Algorithm   string
	Status      Status
	Signer      crypto.Signer
	Public      crypto.PublicKey
	Certificate *x509.Certificate // SAML keys only
	CreatedAt   time.Time
	ActivatedAt *time.Time
	RetiredAt   *time.Time
}

// Published reports whether verifiers should trust the key (it is listed in the JWKS
// and the SP metadata).
func (k Key) Published() bool { return k.Status != StatusRetired }

type row struct {
	bun.BaseModel `bun:"table:signing_keys"`

	ID          string     `bun:"id,pk"`
	Purpose     Purpose    `bun:"purpose"`
	Algorithm   string     `bun:"algorithm"`
	Status      Status     `bun:"status"`
	PrivateKey  string     `bun:"private_key"`
	PublicKey   string     `bun:"public_key"`
	CreatedAt   time.Time  `bun:"created_at"`
	ActivatedAt *time.Time `bun:"activated_at"`
	RetiredAt   *time.Time `bun:"retired_at"`
}

// refreshEvery bounds how stale a replica's view of the keys can be; an unknown key id
// also forces a reload (at most once per minReload), so a key activated on another
// replica is accepted here at once.
const (
	refreshEvery = time.Minute
	minReload    = 2 * time.Second
)

// Store is the keys module's API.
type Store struct {
	db    bun.IDB
	clock clock.Clock
	aead  cipher.AEAD // nil: private keys are stored unsealed

	mu      sync.Mutex
	loaded  map[Purpose]time.Time
	byID    map[string]Key
	ordered map[Purpose][]Key
}

// New returns the key store. secretKey (32 bytes) seals private keys at rest with
// AES-256-GCM; nil stores them unsealed.
func New(idb bun.IDB, clk clock.Clock, secretKey []byte) (*Store, error) {
	s := &Store{db: idb, clock: clk, loaded: map[Purpose]time.Time{}, byID: map[string]Key{}, ordered: map[Purpose][]Key{}}
	if secretKey != nil {
		block, err := aes.NewCipher(secretKey)
		if err != nil {
			return nil, fmt.Errorf("secret key: %w", err)
		}
		if s.aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Sealed reports whether private keys are sealed at rest.
func (s *Store) Sealed() bool { return s.aead != nil }

func validPurpose(p Purpose) error {
	for _, q := range Purposes {
		if p == q {
			return nil
		}
	}
	return apperr.Invalid("purpose %q is not known: use session or saml", p)
}

// Active returns the purpose's signing key, creating the first one if there is none.
func (s *Store) Active(ctx context.Context, p Purpose) (Key, error) {
	for attempt := 0; attempt < 2; attempt++ {
		ks, err := s.keys(ctx, p, attempt > 0)
		if err != nil {
			return Key{}, err
		}
		for _, k := range ks {
			if k.Status == StatusActive {
				return k, nil
			}
		}
	}
	k, err := s.create(ctx, p, StatusActive)
	if db.IsUniqueViolation(err) {
		// Another replica created it first; use theirs.
		s.forget(p)
		ks, err := s.keys(ctx, p, false)
		if err != nil {
			return Key{}, err
		}
		for _, k := range ks {
			if k.Status == StatusActive {
				return k, nil
			}
		}
		return Key{}, errors.New("keys: no active key after a concurrent create")
	}
	return k, err
}

// Published returns the keys verifiers should trust, the active one first.
func (s *Store) Published(ctx context.Context, p Purpose) ([]Key, error) {
	if _, err := s.Active(ctx, p); err != nil {
		return nil, err
	}
	ks, err := s.keys(ctx, p, false)
	if err != nil {
		return nil, err
	}
	var out []Key
	for _, k := range ks {
		if k.Published() {
			out = append(out, k)
		}
	}
	return out, nil
}

// Verifier returns the published key with id kid, or a not-found error.
func (s *Store) Verifier(ctx context.Context, p Purpose, kid string) (Key, error) {
	for attempt := 0; attempt < 2; attempt++ {
		if _, err := s.keys(ctx, p, attempt > 0); err != nil {
			return Key{}, err
		}
		s.mu.Lock()
		k, ok := s.byID[kid]
		s.mu.Unlock()
		if ok && k.Purpose == p && k.Published() {
			return k, nil
		}
	}
	return Key{}, apperr.NotFound("no %s key with id %q", p, kid)
}

// List returns every key of the purpose, retired ones included, newest first.
func (s *Store) List(ctx context.Context, p Purpose) ([]Key, error) {
	if err := validPurpose(p); err != nil {
		return nil, err
	}
	var rows []row
	if err := s.db.NewSelect().Model(&rows).Where("purpose = ?", p).OrderExpr("id DESC").Scan(ctx); err != nil {
		return nil, err
	}
	out := make([]Key, 0, len(rows))
	for _, r := range rows {
		k, err := s.decode(r, false)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// Add creates a key in status next: published, not yet signing.
func (s *Store) Add(ctx context.Context, p Purpose) (Key, error) {
	if err := validPurpose(p); err != nil {
		return Key{}, err
	}
	return s.create(ctx, p, StatusNext)
}

// Activate makes kid the signing key of its purpose; the key it replaces becomes
// previous (still trusted) until it is retired.
func (s *Store) Activate(ctx context.Context, kid string) (Key, error) {
	var r row
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(&r).Where("id = ?", kid).Scan(ctx); err != nil {
			return apperr.NotFound("no key with id %q (see `gatehouse keys list`)", kid)
		}
		if r.Status != StatusNext && r.Status != StatusPrevious {
			return apperr.Invalid("key %s is %s; only a next or previous key can be activated", kid, r.Status)
		}
		if _, err := tx.NewUpdate().Model((*row)(nil)).Set("status = ?", StatusPrevious).
			Where("purpose = ? AND status = ?", r.Purpose, StatusActive).Exec(ctx); err != nil {
			return err
		}
		now := s.clock.Now()
		r.Status, r.ActivatedAt = StatusActive, &now
		_, err := tx.NewUpdate().Model(&r).Column("status", "activated_at").WherePK().Exec(ctx)
		return err
	})
	if err != nil {
		return Key{}, err
	}
	s.forget(r.Purpose)
	return s.decode(r, false)
}

// Retire withdraws a key: it no longer signs and is no longer trusted. The active key
// cannot be retired; activate its successor first.
func (s *Store) Retire(ctx context.Context, kid string) (Key, error) {
	var r row
	if err := s.db.NewSelect().Model(&r).Where("id = ?", kid).Scan(ctx); err != nil {
		return Key{}, apperr.NotFound("no key with id %q (see `gatehouse keys list`)", kid)
	}
	if r.Status == StatusActive {
		return Key{}, apperr.Invalid("key %s is active; add and activate a new key before retiring it", kid)
	}
	now := s.clock.Now()
	r.Status, r.RetiredAt = StatusRetired, &now
	if _, err := s.db.NewUpdate().Model(&r).Column("status", "retired_at").WherePK().Exec(ctx); err != nil {
		return Key{}, err
	}
	s.forget(r.Purpose)
	return s.decode(r, false)
}

func (s *Store) forget(p Purpose) {
	s.mu.Lock()
	delete(s.loaded, p)
	s.mu.Unlock()
}

// keys returns the purpose's keys from memory, reloading when stale or when force is
// set (and the last load is older than minReload).
func (s *Store) keys(ctx context.Context, p Purpose, force bool) ([]Key, error) {
	now := s.clock.Now()
	s.mu.Lock()
	at, ok := s.loaded[p]
	fresh := ok && now.Sub(at) < refreshEvery && !(force && now.Sub(at) >= minReload)
	if fresh {
		ks := s.ordered[p]
		s.mu.Unlock()
		return ks, nil
	}
	s.mu.Unlock()

	if err := s.sealStored(ctx, p); err != nil {
		return nil, err
	}
	var rows []row
	if err := s.db.NewSelect().Model(&rows).Where("purpose = ? AND status <> ?", p, StatusRetired).
		OrderExpr("id DESC").Scan(ctx); err != nil {
		return nil, err
	}
	ks := make([]Key, 0, len(rows))
	for _, r := range rows {
		k, err := s.decode(r, true)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	// Active first, then newest first: the order the JWKS and SP metadata list them.
	for i, k := range ks {
		if k.Status == StatusActive && i > 0 {
			copy(ks[1:i+1], ks[:i])
			ks[0] = k
			break
		}
	}
	s.mu.Lock()
	for id, k := range s.byID {
		if k.Purpose == p {
			delete(s.byID, id)
		}
	}
	for _, k := range ks {
		s.byID[k.ID] = k
	}
	s.ordered[p], s.loaded[p] = ks, now
	s.mu.Unlock()
	return ks, nil
}

func (s *Store) create(ctx context.Context, p Purpose, st Status) (Key, error) {
	now := s.clock.Now()
	r := row{ID: ids.NewAt(now), Purpose: p, Status: st, CreatedAt: now}
	if st == StatusActive {
		r.ActivatedAt = &now
	}
	var der []byte
	var err error
	switch p {
	case PurposeSession:
		r.Algorithm = "EdDSA"
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return Key{}, gerr
		}
		if der, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
			return Key{}, err
		}
		pub, _ := x509.MarshalPKIXPublicKey(priv.Public())
		r.PublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	case PurposeSAML:
		r.Algorithm = "RS256"
		priv, gerr := rsa.GenerateKey(rand.Reader, 2048)
		if gerr != nil {
			return Key{}, gerr
		}
		if der, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
			return Key{}, err
		}
		cert, cerr := selfSigned(priv, r.ID, now)
		if cerr != nil {
			return Key{}, cerr
		}
		r.PublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}))
	default:
		return Key{}, validPurpose(p)
	}
	if r.PrivateKey, err = s.seal(der); err != nil {
		return Key{}, err
	}
	if _, err := s.db.NewInsert().Model(&r).Exec(ctx); err != nil {
		return Key{}, err
	}
	s.forget(p)
	return s.decode(r, true)
}

// selfSigned makes the SP certificate. SAML uses the certificate only as a container for
// the public key (metadata trust is by the key itself), so it is long-lived; rotation is
// done by adding a new key, not by expiry.
func selfSigned(priv *rsa.PrivateKey, kid string, now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Gatehouse SAML SP " + strings.ToLower(kid)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
}

const (
	sealedPrefix   = "sealed:v1:"
	unsealedPrefix = "pkcs8:"
)

// sealStored seals the purpose's private keys that are stored unsealed (retired ones
// too), when this store has a secret key: a deployment that started without
// GATEHOUSE_SECRET_KEY and set it later must not keep its keys in the clear. The
// update names the unsealed value, so replicas doing it at once do not clash.
func (s *Store) sealStored(ctx context.Context, p Purpose) error {
	if s.aead == nil {
		return nil
	}
	var rows []row
	if err := s.db.NewSelect().Model(&rows).Column("id", "private_key").
		Where("purpose = ? AND private_key LIKE ?", p, unsealedPrefix+"%").Scan(ctx); err != nil {
		return err
	}
	for _, r := range rows {
		der, err := s.unseal(r.PrivateKey)
		if err != nil {
			return fmt.Errorf("key %s: %w", r.ID, err)
		}
		sealed, err := s.seal(der)
		if err != nil {
			return err
		}
		if _, err := s.db.NewUpdate().Model((*row)(nil)).Set("private_key = ?", sealed).
			Where("id = ? AND private_key = ?", r.ID, r.PrivateKey).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) seal(der []byte) (string, error) {
	if s.aead == nil {
		return unsealedPrefix + base64.StdEncoding.EncodeToString(der), nil
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return sealedPrefix + base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, der, []byte("gatehouse signing key"))), nil
}

func (s *Store) unseal(v string) ([]byte, error) {
	switch {
	case strings.HasPrefix(v, unsealedPrefix):
		return base64.StdEncoding.DecodeString(strings.TrimPrefix(v, unsealedPrefix))
	case strings.HasPrefix(v, sealedPrefix):
		if s.aead == nil {
			return nil, errors.New("signing keys in the database are sealed: set GATEHOUSE_SECRET_KEY to the key they were sealed with")
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, sealedPrefix))
		if err != nil || len(b) < s.aead.NonceSize() {
			return nil, errors.New("a sealed signing key is corrupt")
		}
		der, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte("gatehouse signing key"))
		if err != nil {
			return nil, errors.New("cannot unseal the signing keys: GATEHOUSE_SECRET_KEY is not the key they were sealed with")
		}
		return der, nil
	}
	return nil, errors.New("a stored signing key has an unknown format")
}

func (s *Store) decode(r row, withPrivate bool) (Key, error) {
	k := Key{ID: r.ID, Purpose: r.Purpose, Algorithm: r.Algorithm, Status: r.Status,
		CreatedAt: r.CreatedAt, ActivatedAt: r.ActivatedAt, RetiredAt: r.RetiredAt}
	blk, _ := pem.Decode([]byte(r.PublicKey))
	if blk == nil {
		return Key{}, fmt.Errorf("key %s: public key is not PEM", r.ID)
	}
	switch blk.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return Key{}, fmt.Errorf("key %s: %w", r.ID, err)
		}
		k.Certificate, k.Public = cert, cert.PublicKey
	default:
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return Key{}, fmt.Errorf("key %s: %w", r.ID, err)
		}
		k.Public = pub
	}
	if withPrivate && r.Status != StatusRetired {
		der, err := s.unseal(r.PrivateKey)
		if err != nil {
			return Key{}, err
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return Key{}, fmt.Errorf("key %s: %w", r.ID, err)
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return Key{}, fmt.Errorf("key %s cannot sign", r.ID)
		}
		k.Signer = signer
	}
	return k, nil
}
