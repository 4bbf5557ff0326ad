package schema

// Built-in definitions. Each function returns a freshly built value, so
// callers may modify what they get without affecting anyone else; nothing
// here is package-level state.
//
// Characteristics follow the RFC 7643 §8.7.1 representations, with the
// deviations called out where they occur.

// UserSchema returns the core User schema (RFC 7643 §4.1, §8.7.1).
func UserSchema() *Schema {
	return &Schema{
		ID:          UserURN,
		Name:        "User",
		Description: "User Account",
		Attributes: []*Attribute{
			// §4.1.1: userName is REQUIRED, unique across the service
			// provider's Users and, unlike id, compared case-insensitively.
			str("userName", "Unique identifier for the User, typically used by the user to directly authenticate to the service provider. Each User MUST include a non-empty userName value.", required, unique),
			complexAttr("name", "The components of the user's real name.",
				subs(
					str("formatted", "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display."),
					str("familyName", "The family name of the User, or last name in most Western languages."),
					str("givenName", "The given name of the User, or first name in most Western languages."),
					str("middleName", "The middle name(s) of the User."),
					str("honorificPrefix", "The honorific prefix(es) of the User, or title in most Western languages (e.g., 'Ms.')."),
					str("honorificSuffix", "The honorific suffix(es) of the User, or suffix in most Western languages (e.g., 'III')."),
				)),
			str("displayName", "The name of the User, suitable for display to end-users."),
			str("nickName", "The casual way to address the user in real life, e.g., 'Bob' instead of 'Robert'."),
			reference("profileUrl", "A fully qualified URL pointing to a page representing the User's online profile.", refTypes("external")),
			str("title", "The user's title, such as 'Vice President'."),
			str("userType", "Identifies the relationship between the organization and the user, e.g., 'Employee' or 'Contractor'."),
			str("preferredLanguage", "The User's preferred written or spoken language (RFC 7231 Accept-Language format), e.g., 'en-US'."),
			str("locale", "The User's default location for localizing items such as currency and date formats (BCP 47 language tag), e.g., 'en-US'."),
			str("timezone", "The User's time zone in IANA Time Zone database format, e.g., 'America/Los_Angeles'."),
			boolean("active", "A Boolean value indicating the User's administrative status."),
			// §4.1.1: the cleartext password may be written but is never
			// returned, not even in responses to the request that set it.
			str("password", "The User's cleartext password, used to set an initial password or reset an existing one.", writeOnly, returned(ReturnedNever)),

			// §4.1.2 multi-valued attributes. Entra ID addresses emails
			// as emails[type eq "work"], hence the canonical types.
			plural("emails", "Email addresses for the User.",
				str("value", "Email address for the User, canonicalized by the service provider (e.g., lower-case domain)."),
				"work", "home", "other"),
			plural("phoneNumbers", "Phone numbers for the User.",
				str("value", "Phone number of the User, canonicalized per RFC 3966, e.g., 'tel:+1-201-555-0123'."),
				"work", "home", "mobile", "fax", "pager", "other"),
			plural("ims", "Instant messaging addresses for the User.",
				str("value", "Instant messaging address for the User."),
				"aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
			plural("photos", "URLs of photos of the User.",
				reference("value", "URL of a photo of the User.", refTypes("external")),
				"photo", "thumbnail"),
			// §4.1.2 gives addresses a "primary" sub-attribute although the
			// §8.7.1 representation omits it; the prose wins.
			complexAttr("addresses", "A physical mailing address for this User.", multi,
				subs(
					str("formatted", "The full mailing address, formatted for display or use with a mailing label."),
					str("streetAddress", "The full street address component, which may include house number, street name, P.O. box, and multi-line extended street address information."),
					str("locality", "The city or locality component."),
					str("region", "The state or region component."),
					str("postalCode", "The zip code or postal code component."),
					str("country", "The country name component, in ISO 3166-1 'alpha-2' code format."),
					str("type", "A label indicating the attribute's function, e.g., 'work' or 'home'.", canonical("work", "home", "other")),
					boolean("primary", "A Boolean value indicating the 'primary' or preferred address. The primary attribute value 'true' MUST appear no more than once."),
				)),
			// §4.1.2: group membership is managed through the Group
			// resource, so the User's view of it is read-only.
			complexAttr("groups", "A list of groups to which the user belongs, either through direct membership or through nested groups.", multi, readOnly,
				subs(
					str("value", "The identifier of the User's group.", readOnly),
					reference("$ref", "The URI of the corresponding 'Group' resource to which the user belongs.", refTypes("User", "Group"), readOnly),
					str("display", "A human-readable name, primarily used for display purposes.", readOnly),
					str("type", "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.", canonical("direct", "indirect"), readOnly),
				)),
			plural("entitlements", "A list of entitlements for the User that represent a thing the User has.",
				str("value", "The value of an entitlement.")),
			plural("roles", "A list of roles for the User that collectively represent who the User is, e.g., 'Student', 'Faculty'.",
				str("value", "The value of a role.")),
			plural("x509Certificates", "A list of certificates issued to the User.",
				binary("value", "The value of an X.509 certificate: a DER-encoded certificate, base64-encoded.")),
		},
	}
}

// EnterpriseUserSchema returns the Enterprise User extension schema
// (RFC 7643 §4.3, §8.7.1).
func EnterpriseUserSchema() *Schema {
	return &Schema{
		ID:          EnterpriseUserURN,
		Name:        "EnterpriseUser",
		Description: "Enterprise User",
		Attributes: []*Attribute{
			str("employeeNumber", "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization."),
			str("costCenter", "Identifies the name of a cost center."),
			str("organization", "Identifies the name of an organization."),
			str("division", "Identifies the name of a division."),
			str("department", "Identifies the name of a department."),
			// §4.3 calls value REQUIRED within a manager, but the §8.7.1
			// representation marks every sub-attribute required false. We
			// publish §8.7.1: "required" on a sub-attribute is easily
			// misread by clients as making manager itself mandatory.
			complexAttr("manager", "The User's manager. A complex type that optionally allows service providers to represent organizational hierarchy by referencing the 'id' attribute of another User.",
				subs(
					str("value", "The id of the SCIM resource representing the User's manager."),
					reference("$ref", "The URI of the SCIM resource representing the User's manager.", refTypes("User")),
					str("displayName", "The displayName of the User's manager.", readOnly),
				)),
		},
	}
}

// GroupSchema returns the core Group schema (RFC 7643 §4.2, §8.7.1).
func GroupSchema() *Schema {
	return &Schema{
		ID:          GroupURN,
		Name:        "Group",
		Description: "Group",
		Attributes: []*Attribute{
			// §4.2 says displayName is REQUIRED (the §8.7.1 representation
			// says required false; the prose wins). Uniqueness is "server"
			// rather than the RFC's "none" because this service provider
			// enforces unique group names per tenant and wants clients to
			// know it (RFC 7643 §7 "uniqueness").
			str("displayName", "A human-readable name for the Group.", required, unique),
			// §4.2: members reference other resources by id; a member is
			// added or removed, never edited in place, hence immutable.
			complexAttr("members", "A list of members of the Group.", multi,
				subs(
					str("value", "Identifier of the member of this Group.", immutable),
					reference("$ref", "The URI corresponding to a SCIM resource that is a member of this Group.", refTypes("User", "Group"), immutable),
					str("display", "A human-readable name, primarily used for display purposes.", readOnly),
					str("type", "A label indicating the type of resource, e.g., 'User' or 'Group'.", canonical("User", "Group"), immutable),
				)),
		},
	}
}

// CommonAttributes returns the attributes every resource carries
// (RFC 7643 §3.1): id, externalId and meta. They are not listed inside the
// /Schemas representations (RFC 7643 §8.7.1 omits them) but are resolvable
// and projectable like schema attributes.
func CommonAttributes() []*Attribute {
	return []*Attribute{
		// §3.1: id is assigned by the service provider, compared
		// case-exactly and returned always.
		str("id", "A unique identifier for a SCIM resource as defined by the service provider.", caseExact, readOnly, returned(ReturnedAlways), unique),
		str("externalId", "A String that is an identifier for the resource as defined by the provisioning client.", caseExact),
		complexAttr("meta", "A complex attribute containing resource metadata.", readOnly,
			subs(
				str("resourceType", "The name of the resource type of the resource.", caseExact, readOnly),
				dateTime("created", "The DateTime that the resource was added to the service provider.", readOnly),
				dateTime("lastModified", "The most recent DateTime that the details of this resource were updated at the service provider.", readOnly),
				reference("location", "The URI of the resource being returned.", refTypes("uri"), caseExact, readOnly),
				str("version", "The version (ETag) of the resource being returned.", caseExact, readOnly),
			)),
	}
}

func userResourceType() *ResourceType {
	return &ResourceType{
		ID:               "User",
		Name:             "User",
		Endpoint:         "/Users",
		Description:      "User Account",
		Schema:           UserURN,
		SchemaExtensions: []Extension{{Schema: EnterpriseUserURN, Required: false}},
	}
}

func groupResourceType() *ResourceType {
	return &ResourceType{
		ID:          "Group",
		Name:        "Group",
		Endpoint:    "/Groups",
		Description: "Group",
		Schema:      GroupURN,
	}
}

// The helpers below keep the definitions above readable. An attribute
// starts from the RFC 7643 §2.2 defaults (single-valued, optional,
// case-insensitive, readWrite, returned by default, not unique) and
// options adjust it.

type option func(*Attribute)

func required(a *Attribute)  { a.Required = true }
func caseExact(a *Attribute) { a.CaseExact = true }
func multi(a *Attribute)     { a.MultiValued = true }
func unique(a *Attribute)    { a.Uniqueness = UniquenessServer }
func readOnly(a *Attribute)  { a.Mutability = MutabilityReadOnly }
func immutable(a *Attribute) { a.Mutability = MutabilityImmutable }
func writeOnly(a *Attribute) { a.Mutability = MutabilityWriteOnly }

func returned(r string) option { return func(a *Attribute) { a.Returned = r } }

func canonical(values ...string) option {
	return func(a *Attribute) { a.CanonicalValues = values }
}

func refTypes(types ...string) option {
	return func(a *Attribute) { a.ReferenceTypes = types }
}

func subs(sub ...*Attribute) option {
	return func(a *Attribute) { a.SubAttributes = sub }
}

func attr(typ, name, description string, opts ...option) *Attribute {
	a := &Attribute{
		Name:        name,
		Type:        typ,
		Description: description,
		Mutability:  MutabilityReadWrite,
		Returned:    ReturnedDefault,
		Uniqueness:  UniquenessNone,
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

func str(name, description string, opts ...option) *Attribute {
	return attr(TypeString, name, description, opts...)
}

func boolean(name, description string, opts ...option) *Attribute {
	return attr(TypeBoolean, name, description, opts...)
}

func dateTime(name, description string, opts ...option) *Attribute {
	return attr(TypeDateTime, name, description, opts...)
}

func binary(name, description string, opts ...option) *Attribute {
	return attr(TypeBinary, name, description, opts...)
}

func reference(name, description string, opts ...option) *Attribute {
	return attr(TypeReference, name, description, opts...)
}

func complexAttr(name, description string, opts ...option) *Attribute {
	return attr(TypeComplex, name, description, opts...)
}

// plural builds the RFC 7643 §2.4 multi-valued attribute shape shared by
// emails, phoneNumbers, ims, photos, entitlements, roles and
// x509Certificates: value, display, type and primary.
func plural(name, description string, value *Attribute, types ...string) *Attribute {
	var typeOpts []option
	if len(types) > 0 {
		typeOpts = append(typeOpts, canonical(types...))
	}
	return complexAttr(name, description, multi, subs(
		value,
		str("display", "A human-readable name, primarily used for display purposes."),
		str("type", "A label indicating the attribute's function.", typeOpts...),
		boolean("primary", "A Boolean value indicating the 'primary' or preferred attribute value for this attribute. The primary attribute value 'true' MUST appear no more than once."),
	))
}
