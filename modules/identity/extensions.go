package identity

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// Tenant-defined SCIM User extension schemas (RFC 7643 §3.3). A tenant declares an
// extension with its attributes; its users then carry values under the extension's URN.
// The declarations and the values are the identity module's: they are attributes of
// users, whose rules live here whatever the transport (see the migration
// 20261122001200_user_extensions).

// MaxExtensionAttributes bounds one declaration.
const MaxExtensionAttributes = 50

// Attribute types an extension attribute may have (RFC 7643 §2.3, without complex and
// binary).
const (
	ExtString    = "string"
	ExtInteger   = "integer"
	ExtDecimal   = "decimal"
	ExtBoolean   = "boolean"
	ExtDateTime  = "dateTime"
	ExtReference = "reference"
)

// ExtensionAttribute is one attribute of a tenant's extension, with its RFC 7643 §7
// characteristics and Indexed, ours: whether filters and sortBy may use it.
type ExtensionAttribute struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	MultiValued bool   `json:"multiValued"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required"`
	CaseExact   bool   `json:"caseExact"`
	Mutability  string `json:"mutability"`
	Returned    string `json:"returned"`
	Uniqueness  string `json:"uniqueness"`
	Indexed     bool   `json:"indexed"`
}

// UserExtension is a tenant's declared User extension schema.
type UserExtension struct {
	URN         string               `json:"id"`
	Name        string               `json:"name"`
	Description string               `json:"description,omitempty"`
	Attributes  []ExtensionAttribute `json:"attributes"`
	CreatedAt   time.Time            `json:"-"`
	UpdatedAt   time.Time            `json:"-"`
}

// Attribute returns the attribute called name (case-insensitively), or nil.
func (x *UserExtension) Attribute(name string) *ExtensionAttribute {
	for i := range x.Attributes {
		if strings.EqualFold(x.Attributes[i].Name, name) {
			return &x.Attributes[i]
		}
	}
	return nil
}

type extensionRow struct {
	bun.BaseModel `bun:"table:scim_extensions"`

	TenantID   string    `bun:"tenant_id,pk"`
	URN        string    `bun:"urn,pk"`
	Definition string    `bun:"definition"`
	CreatedAt  time.Time `bun:"created_at"`
	UpdatedAt  time.Time `bun:"updated_at"`
}

// ExtValue is one value of an extension attribute of a user. Callers set URN, Attr and
// Text (the canonical text: "42", "true", "2026-01-02T15:04:05Z"); the rest is derived.
type ExtValue struct {
	bun.BaseModel `bun:"table:user_ext_values,alias:x"`

	UserID    string     `bun:"user_id,pk"`
	TenantID  string     `bun:"tenant_id"`
	URN       string     `bun:"urn,pk"`
	Attr      string     `bun:"attr,pk"`
	Position  int        `bun:"position,pk"`
	Text      string     `bun:"value_text"`
	Key       string     `bun:"value_key,nullzero"`
	Num       *float64   `bun:"value_num"`
	Bool      *bool      `bun:"value_bool"`
	Time      *time.Time `bun:"value_time"`
	UniqueKey string     `bun:"unique_key,nullzero"`

	// writeOnly values (a PIN, a secret) are audited as "(set)", never as they are.
	writeOnly bool `bun:"-"`
}

// markWriteOnly flags the values of writeOnly attributes among vs.
func markWriteOnly(exts []UserExtension, vs []ExtValue) {
	for i := range vs {
		for j := range exts {
			if strings.EqualFold(exts[j].URN, vs[i].URN) {
				if a := exts[j].Attribute(vs[i].Attr); a != nil && a.Mutability == "writeOnly" {
					vs[i].writeOnly = true
				}
			}
		}
	}
}

// extURN is the shape of a tenant's User extension URN (RFC 7643 §3.3, §10.2.2).
var extURN = regexp.MustCompile(`^urn:ietf:params:scim:schemas:extension:([A-Za-z0-9][A-Za-z0-9._-]*):2\.0:User$`)

func invalidDef(format string, args ...any) error {
	return apperr.Invalid("extension schema: "+format, args...).WithCode("invalidValue")
}

// ParseUserExtension reads and strictly validates an RFC 7643 §7 schema resource
// declaring a User extension, filling the RFC 7643 §2.2 defaults.
func ParseUserExtension(def []byte) (UserExtension, error) {
	var in struct {
		Schemas     []string             `json:"schemas"`
		ID          string               `json:"id"`
		Name        string               `json:"name"`
		Description string               `json:"description"`
		Attributes  []ExtensionAttribute `json:"attributes"`
		Meta        json.RawMessage      `json:"meta"`
	}
	dec := json.NewDecoder(bytes.NewReader(def))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return UserExtension{}, invalidDef("not a schema resource: %v", err)
	}
	if dec.More() {
		return UserExtension{}, invalidDef("data after the JSON object")
	}
	x := UserExtension{URN: in.ID, Name: in.Name, Description: in.Description, Attributes: in.Attributes}
	return x, x.validate()
}

func (x *UserExtension) validate() error {
	m := extURN.FindStringSubmatch(x.URN)
	if m == nil {
		return invalidDef("id %q must be urn:ietf:params:scim:schemas:extension:<name>:2.0:User (<name> of letters, digits, '.', '_', '-')", x.URN)
	}
	if strings.EqualFold(m[1], "enterprise") {
		return invalidDef("id %q is the Enterprise User extension, which is built in", x.URN)
	}
	if x.Name == "" {
		x.Name = m[1]
	}
	if len(x.Name) > 256 || len(x.Description) > MaxStringLen {
		return invalidDef("name or description too long")
	}
	if len(x.Attributes) == 0 {
		return invalidDef("declare at least one attribute")
	}
	if len(x.Attributes) > MaxExtensionAttributes {
		return invalidDef("at most %d attributes, got %d", MaxExtensionAttributes, len(x.Attributes))
	}
	seen := map[string]bool{}
	for i := range x.Attributes {
		a := &x.Attributes[i]
		if !attrName(a.Name) {
			return invalidDef("attribute name %q is not an RFC 7643 §2.1 name (a letter, then letters, digits, '-' or '_', at most 64)", a.Name)
		}
		if seen[strings.ToLower(a.Name)] {
			return invalidDef("attribute %q is declared twice (names are case-insensitive)", a.Name)
		}
		seen[strings.ToLower(a.Name)] = true
		a.Type = cmp.Or(a.Type, ExtString)
		a.Mutability = cmp.Or(a.Mutability, "readWrite")
		if a.Returned == "" {
			a.Returned = "default"
			if a.Mutability == "writeOnly" {
				a.Returned = "never"
			}
		}
		a.Uniqueness = cmp.Or(a.Uniqueness, "none")
		checks := []struct {
			what, v string
			ok      []string
		}{
			{"type", a.Type, []string{ExtString, ExtInteger, ExtDecimal, ExtBoolean, ExtDateTime, ExtReference}},
			{"mutability", a.Mutability, []string{"readWrite", "readOnly", "immutable", "writeOnly"}},
			{"returned", a.Returned, []string{"always", "default", "request", "never"}},
			{"uniqueness", a.Uniqueness, []string{"none", "server"}},
		}
		for _, c := range checks {
			if !slices.Contains(c.ok, c.v) {
				return invalidDef("attribute %q: %s %q is not one of %s", a.Name, c.what, c.v, strings.Join(c.ok, ", "))
			}
		}
		switch {
		case a.Mutability == "writeOnly" && a.Returned != "never":
			return invalidDef("attribute %q is writeOnly, so returned must be \"never\" (RFC 7643 §7)", a.Name)
		case a.Required && a.Mutability == "readOnly":
			return invalidDef("attribute %q cannot be both required and readOnly: no client could set it", a.Name)
		case a.Uniqueness == "server" && a.Type == ExtBoolean:
			return invalidDef("attribute %q is a boolean; uniqueness \"server\" would allow two users", a.Name)
		case len(a.Description) > MaxStringLen:
			return invalidDef("attribute %q: description too long", a.Name)
		}
	}
	return nil
}

func attrName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '-' || c == '_'):
		default:
			return false
		}
	}
	return true
}

func (r *extensionRow) decode() (UserExtension, error) {
	var x UserExtension
	if err := json.Unmarshal([]byte(r.Definition), &x); err != nil {
		return UserExtension{}, fmt.Errorf("identity: stored extension %s: %w", r.URN, err)
	}
	x.CreatedAt, x.UpdatedAt = r.CreatedAt, r.UpdatedAt
	return x, nil
}

// ExtensionsGeneration changes whenever this process declares or removes an extension,
// so callers that cache what UserExtensions returned know to read it again at once;
// changes made by other processes (the CLI, other replicas) they must pick up by age.
func (s *Service) ExtensionsGeneration() uint64 { return s.extGen.Load() }

// UserExtensions returns the tenant's declared User extensions ordered by URN.
func (s *Service) UserExtensions(ctx context.Context, tenantID string) ([]UserExtension, error) {
	return userExtensions(ctx, s.db, tenantID)
}

func userExtensions(ctx context.Context, idb bun.IDB, tenantID string) ([]UserExtension, error) {
	var rows []extensionRow
	if err := idb.NewSelect().Model(&rows).Where("tenant_id = ?", tenantID).OrderExpr("urn").Scan(ctx); err != nil {
		return nil, err
	}
	out := make([]UserExtension, 0, len(rows))
	for i := range rows {
		x, err := rows[i].decode()
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func extensionTarget(urn string) audit.Target {
	return audit.Target{Type: "scim_extension", ID: urn, Display: urn}
}

// SetUserExtension declares (or redeclares) a tenant's User extension from an RFC 7643
// §7 schema resource. On a redeclaration, stored values of attributes that are gone or
// whose type or multiValued changed are deleted (they may not fit any more), and the
// others are re-keyed for the new caseExact and uniqueness (409 if existing values are
// not unique). Audited as scim_extension.changed.
func (s *Service) SetUserExtension(ctx context.Context, tenantID string, def []byte) (UserExtension, error) {
	x, err := ParseUserExtension(def)
	if err != nil {
		return UserExtension{}, err
	}
	body, err := json.Marshal(x)
	if err != nil {
		return UserExtension{}, err
	}
	now := s.clock.Now()
	err = db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		var old extensionRow
		err := tx.NewSelect().Model(&old).Where("tenant_id = ? AND lower(urn) = ?", tenantID, strings.ToLower(x.URN)).Scan(ctx)
		var before any
		row := extensionRow{TenantID: tenantID, URN: x.URN, Definition: string(body), CreatedAt: now, UpdatedAt: now}
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			prev, err := old.decode()
			if err != nil {
				return err
			}
			before = json.RawMessage(old.Definition)
			row.CreatedAt, x.CreatedAt = old.CreatedAt, old.CreatedAt
			// The URN keeps the case it was first declared with: values are stored under it.
			row.URN, x.URN = old.URN, old.URN
			if _, err := tx.NewUpdate().Model(&row).WherePK().Exec(ctx); err != nil {
				return err
			}
			if err := rekeyValues(ctx, tx, now, tenantID, &prev, &x); err != nil {
				return err
			}
		}
		x.UpdatedAt = now
		return s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "scim_extension.changed",
			Target: extensionTarget(x.URN), Changes: map[string]audit.Change{"definition": {Before: before, After: json.RawMessage(body)}}})
	})
	if err != nil {
		return UserExtension{}, err
	}
	s.extGen.Add(1)
	if x.CreatedAt.IsZero() {
		x.CreatedAt = now
	}
	return x, nil
}

// rekeyValues brings stored values in line with a redeclared extension. The users
// whose values it deletes, or whose values are now returned differently, see their
// resource change: they get a new version.
func rekeyValues(ctx context.Context, tx bun.Tx, now time.Time, tenantID string, prev, next *UserExtension) error {
	var gone, shown []string
	for _, pa := range prev.Attributes {
		na := next.Attribute(pa.Name)
		if na == nil || na.Type != pa.Type || na.MultiValued != pa.MultiValued || na.Name != pa.Name {
			gone = append(gone, pa.Name)
			continue
		}
		if na.Returned != pa.Returned {
			shown = append(shown, pa.Name)
		}
		if na.CaseExact == pa.CaseExact && na.Uniqueness == pa.Uniqueness {
			continue
		}
		set := "unique_key = NULL"
		if na.Uniqueness == "server" {
			set = "unique_key = value_key"
			if na.CaseExact || na.Type != ExtString {
				set = "unique_key = value_text"
			}
		}
		_, err := tx.NewUpdate().Model((*ExtValue)(nil)).Set(set).
			Where("tenant_id = ? AND urn = ? AND attr = ?", tenantID, prev.URN, pa.Name).Exec(ctx)
		if db.IsUniqueViolation(err) {
			return apperr.Conflict("users already share values of %s:%s, so it cannot be made unique", prev.URN, pa.Name).WithCode("uniqueness")
		}
		if err != nil {
			return err
		}
	}
	if changed := append(slices.Clip(gone), shown...); len(changed) > 0 {
		holders := tx.NewSelect().Model((*ExtValue)(nil)).Column("user_id").
			Where("tenant_id = ? AND urn = ? AND attr IN (?)", tenantID, prev.URN, bun.In(changed))
		if err := touchUsers(ctx, tx, now, tenantID, holders); err != nil {
			return err
		}
	}
	if len(gone) > 0 {
		_, err := tx.NewDelete().Model((*ExtValue)(nil)).Where("tenant_id = ? AND urn = ? AND attr IN (?)", tenantID, prev.URN, bun.In(gone)).Exec(ctx)
		return err
	}
	return nil
}

// RemoveUserExtension removes a tenant's extension and every value of it; the users who
// had any get a new version. Audited as scim_extension.changed.
func (s *Service) RemoveUserExtension(ctx context.Context, tenantID, urn string) error {
	defer s.extGen.Add(1)
	return db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		var old extensionRow
		err := tx.NewSelect().Model(&old).Where("tenant_id = ? AND lower(urn) = ?", tenantID, strings.ToLower(urn)).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFound("no extension %q in this tenant", urn)
		}
		if err != nil {
			return err
		}
		holders := tx.NewSelect().Model((*ExtValue)(nil)).Column("user_id").Where("tenant_id = ? AND urn = ?", tenantID, old.URN)
		if err := touchUsers(ctx, tx, s.clock.Now(), tenantID, holders); err != nil {
			return err
		}
		n, err := tx.NewDelete().Model((*ExtValue)(nil)).Where("tenant_id = ? AND urn = ?", tenantID, old.URN).Exec(ctx)
		if err != nil {
			return err
		}
		removed, _ := n.RowsAffected()
		if _, err := tx.NewDelete().Model(&old).WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "scim_extension.changed",
			Target: extensionTarget(old.URN), Changes: map[string]audit.Change{
				"definition":    {Before: json.RawMessage(old.Definition), After: nil},
				"valuesRemoved": {After: removed},
			}})
	})
}

// normalizeExt checks the user's extension values against the tenant's declarations and
// fills their derived columns: positions, typed values, keys. An attribute a user has any
// value of an extension for must carry its required attributes; a user without any value
// of an extension is not held to it (the extension is optional, RFC 7643 §6).
func (u *User) normalizeExt(exts []UserExtension) error {
	byURN := map[string]*UserExtension{}
	for i := range exts {
		byURN[strings.ToLower(exts[i].URN)] = &exts[i]
	}
	for i := range u.Ext {
		v := &u.Ext[i]
		x := byURN[strings.ToLower(v.URN)]
		if x == nil {
			return apperr.Invalid("%q is not an extension declared by this tenant", v.URN).WithCode("invalidValue")
		}
		a := x.Attribute(v.Attr)
		if a == nil {
			return apperr.Invalid("attribute %q is not part of the extension %s", v.Attr, x.URN).WithCode("invalidValue")
		}
		v.URN, v.Attr, v.UserID, v.TenantID = x.URN, a.Name, u.ID, u.TenantID
	}
	// Stored and loaded in (urn, attr, position) order, so a diff compares like with like.
	slices.SortStableFunc(u.Ext, func(a, b ExtValue) int {
		return cmp.Or(strings.Compare(a.URN, b.URN), strings.Compare(a.Attr, b.Attr))
	})
	counts := map[string]int{}
	used := map[*UserExtension]map[string]bool{}
	for i := range u.Ext {
		v := &u.Ext[i]
		x := byURN[strings.ToLower(v.URN)]
		a := x.Attribute(v.Attr)
		key := v.URN + ":" + v.Attr
		v.Position = counts[key]
		counts[key]++
		if v.Position > 0 && !a.MultiValued {
			return apperr.Invalid("attribute %q is single-valued", key).WithCode("invalidValue")
		}
		if counts[key] > MaxValuesPerAttr {
			return apperr.Invalid("%s has more than %d values", key, MaxValuesPerAttr).WithCode("invalidValue")
		}
		if err := v.typed(a); err != nil {
			return apperr.Invalid("attribute %q %s", key, err.Error()).WithCode("invalidValue")
		}
		if used[x] == nil {
			used[x] = map[string]bool{}
		}
		used[x][a.Name] = true
	}
	for x, names := range used {
		for _, a := range x.Attributes {
			if a.Required && !names[a.Name] {
				return apperr.Invalid("attribute %q of %s is required", a.Name, x.URN).WithCode("invalidValue")
			}
		}
	}
	return nil
}

// typed fills the typed columns of v from its text.
func (v *ExtValue) typed(a *ExtensionAttribute) error {
	v.Key, v.Num, v.Bool, v.Time, v.UniqueKey = "", nil, nil, nil, ""
	v.writeOnly = a.Mutability == "writeOnly"
	if len(v.Text) > MaxStringLen {
		return fmt.Errorf("is longer than %d bytes", MaxStringLen)
	}
	switch a.Type {
	case ExtString, ExtReference:
		v.Key = Fold(v.Text)
	case ExtInteger:
		n, err := strconv.ParseInt(v.Text, 10, 64)
		if err != nil {
			return fmt.Errorf("must be an integer, got %q", v.Text)
		}
		f := float64(n)
		v.Num = &f
	case ExtDecimal:
		f, err := strconv.ParseFloat(v.Text, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("must be a number, got %q", v.Text)
		}
		v.Num = &f
	case ExtBoolean:
		b, err := strconv.ParseBool(v.Text)
		if err != nil || (v.Text != "true" && v.Text != "false") {
			return fmt.Errorf("must be true or false, got %q", v.Text)
		}
		v.Bool = &b
	case ExtDateTime:
		t, err := time.Parse(time.RFC3339Nano, v.Text)
		if err != nil {
			return fmt.Errorf("must be an RFC 3339 dateTime, got %q", v.Text)
		}
		t = t.UTC()
		v.Time = &t
	}
	if a.Uniqueness == "server" {
		v.UniqueKey = v.Text
		if a.Type == ExtString && !a.CaseExact {
			v.UniqueKey = v.Key
		}
	}
	return nil
}

// storeExt replaces the user's stored extension values, refusing values another user of
// the tenant already holds for an attribute declared unique.
func storeExt(ctx context.Context, tx bun.Tx, u *User, replace bool) error {
	if replace {
		if _, err := tx.NewDelete().Model((*ExtValue)(nil)).Where("user_id = ?", u.ID).Exec(ctx); err != nil {
			return err
		}
	}
	if len(u.Ext) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, v := range u.Ext {
		if v.UniqueKey == "" {
			continue
		}
		k := v.URN + ":" + v.Attr + "\x00" + v.UniqueKey
		if seen[k] {
			return apperr.Invalid("attribute %q has the value %q twice", v.URN+":"+v.Attr, v.Text).WithCode("invalidValue")
		}
		seen[k] = true
		n, err := tx.NewSelect().Model((*ExtValue)(nil)).
			Where("tenant_id = ? AND urn = ? AND attr = ? AND unique_key = ? AND user_id <> ?", u.TenantID, v.URN, v.Attr, v.UniqueKey, u.ID).Count(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return conflictExt(v)
		}
	}
	if _, err := tx.NewInsert().Model(&u.Ext).Exec(ctx); err != nil {
		if db.IsUniqueViolation(err) {
			return apperr.Conflict("a value of a unique extension attribute is already taken in this tenant").WithCode("uniqueness")
		}
		return err
	}
	return nil
}

func conflictExt(v ExtValue) error {
	return apperr.Conflict("%s:%s %q is already taken in this tenant", v.URN, v.Attr, v.Text).WithCode("uniqueness")
}

func loadExt(ctx context.Context, idb bun.IDB, byID map[string]*User, idList []string) error {
	var xs []ExtValue
	err := idb.NewSelect().Model(&xs).Where("user_id IN (?)", bun.In(idList)).
		OrderExpr("user_id, urn, attr, position").Scan(ctx)
	if err != nil {
		return err
	}
	for _, x := range xs {
		if x.Time != nil {
			t := x.Time.UTC()
			x.Time = &t
		}
		u := byID[x.UserID]
		u.Ext = append(u.Ext, x)
	}
	return nil
}

func sameExt(a, b []ExtValue) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].URN != b[i].URN || a[i].Attr != b[i].Attr || a[i].Text != b[i].Text {
			return false
		}
	}
	return true
}

func extSummary(vs []ExtValue) map[string][]string {
	if len(vs) == 0 {
		return nil
	}
	out := map[string][]string{}
	for _, v := range vs {
		t := v.Text
		if v.writeOnly {
			t = "(set)"
		}
		out[v.URN+":"+v.Attr] = append(out[v.URN+":"+v.Attr], t)
	}
	return out
}
