// Package patch implements SCIM 2.0 PATCH (RFC 7644 §3.5.2) for the User and
// Group resources, as identity providers actually send it.
//
// [ParseRequest] decodes the PatchOp envelope; [Apply] applies the operations
// to a resource held as map[string]any in SCIM JSON shape (canonical-case
// keys, extension attributes under their schema URN, complex values as
// map[string]any, multi-valued ones as []any) and returns the new resource.
// Apply is atomic: it works on a deep copy and either every operation
// succeeds or the caller gets an *Error and nothing else.
//
// Beyond the RFC, the deviations of Microsoft Entra ID and Okta are
// accepted: operation names in any case, booleans as "True"/"False",
// attribute paths as keys of a path-less value ("name.givenName",
// "emails[type eq \"work\"].value", URN-qualified names), manager given as a
// bare id or a one-element list, single values wrapped as [{"value": x}],
// "remove members" with a value list (removes just those members), an "id"
// echoed back in a path-less replace, and filters that match nothing in an
// add or replace (a new element is built from the filter).
//
// Group membership can be huge, so with [Options.MembersAsDelta] operations
// on "members" are not applied to the resource but returned as a
// [MemberChange] for the caller to apply to its store.
package patch
