// Package filter parses SCIM 2.0 filter expressions (RFC 7644 §3.4.2.2) and PATCH
// attribute paths (RFC 7644 §3.5.2) into a small, closed AST that storage code
// translates into SQL. The parser only checks syntax: whether an attribute exists,
// is multi-valued or has a comparable type is for the caller to decide against its
// schema.
//
// # Filter grammar
//
// Parse accepts, in ABNF-like notation (keywords, operators and the literals true,
// false and null are matched case-insensitively):
//
//	FILTER    = OR
//	OR        = AND *("or" AND)                    ; left-associative
//	AND       = UNARY *("and" UNARY)               ; left-associative, binds tighter than or
//	UNARY     = "(" OR ")" / "not" "(" OR ")" / ATTREXP
//	ATTREXP   = ATTRPATH "pr"
//	          / ATTRPATH COMPAREOP COMPVALUE
//	          / VALUEPATH [ "." ATTRNAME ( "pr" / COMPAREOP COMPVALUE ) ]  ; suffix: Entra quirk
//	VALUEPATH = [URN ":"] ATTRNAME "[" VALFILTER "]"
//	VALFILTER = OR, whose attribute paths are plain ATTRNAMEs and which has no VALUEPATH
//	COMPAREOP = "eq" / "ne" / "co" / "sw" / "ew" / "gt" / "ge" / "lt" / "le"
//	COMPVALUE = JSON string / JSON number / "true" / "false" / "null"
//	ATTRPATH  = [URN ":"] ATTRNAME ["." ATTRNAME]
//	ATTRNAME  = ["$"] ALPHA *(ALPHA / DIGIT / "-" / "_")
//
// An attribute path beginning with "urn:" (any case) is split at its last ':'; what
// precedes it is the schema URN (which must have at least three non-empty
// ':'-separated segments, "urn:nid:nss") and what follows is ATTRNAME["."ATTRNAME].
// A ':' in an attribute path that does not start with "urn:" is an error. The leading
// "$" in ATTRNAME exists for "$ref". The case the client sent is preserved in the
// AST; matching names case-insensitively is the caller's job.
//
// Inside "[...]" attribute paths are relative to the multi-valued attribute, so they
// must be single names: `emails[type eq "work"]`, not `emails[emails.type eq "work"]`
// and not URN-qualified. A "[" inside brackets (a nested value path) is an error.
//
// # Quirks accepted
//
//   - Microsoft Entra ID sends `emails[type eq "work"].value eq "x@y.com"`, which the
//     RFC's filter grammar does not allow. It is read as "some email whose type is
//     work and whose value is x@y.com" and represented as
//     ValuePath{emails, And{type eq "work", value eq "x@y.com"}}; `.value pr` is
//     accepted likewise. Format prints the folded, standard form.
//   - Entra also capitalises literals (`True`); true, false, null, operators and
//     and/or/not are case-insensitive, as RFC 7644 requires for operators anyway.
//   - Whitespace (spaces and horizontal tabs; nothing else) is optional wherever the
//     token boundary is unambiguous: `userName eq"john"`, `(a pr)and(b pr)` and
//     `not(a pr)` are accepted, and any run of spaces works where one is required.
//     A word or number must be followed by whitespace, a bracket, a parenthesis, a
//     quote or the end of input, so `userName eq1` (unknown operator "eq1") and
//     `a eq 1and b pr` are errors. Leading and trailing whitespace is ignored.
//   - A value path is one lexical unit: no whitespace is allowed before "[" or
//     around the "." of `].value`.
//
// # Strictness
//
//   - Strings are JSON strings: only the JSON escapes are accepted (including
//     \uXXXX with properly paired surrogates); raw control characters, invalid
//     UTF-8 and unpaired surrogates are errors. Single-quoted strings are rejected.
//   - Numbers follow the JSON number grammar and are kept as written (Value.Num).
//   - "not" must be followed by a parenthesised filter, as in the RFC.
//   - Operators constrain the literal: co, sw and ew need a string; gt, ge, lt and le
//     need a string or a number; eq and ne accept anything, including null.
//   - The words and, or and not cannot be used as bare attribute names.
//
// # Limits
//
// ParseWithLimits bounds the input length, the nesting depth and the number of AST
// nodes. Depth counts nested groups — parentheses (including the one after "not")
// and value-path brackets — which are the only constructs the parser recurses on
// (and/or/not without parentheses cannot nest more than a constant amount).
// Chains of and/or are parsed in a loop, so a flat chain of any length costs no
// stack and only counts against MaxNodes. Parsing is a single left-to-right pass
// with one token of lookahead and is linear in the input length; it stops at the
// first error or exceeded limit.
//
// # Errors
//
// Every error is an *Error carrying a message written for the API client and the
// byte offset where the problem was found; map it to scimType invalidFilter
// (Parse) or invalidPath (ParsePath). Limit violations additionally match
// ErrTooLong, ErrTooDeep or ErrTooComplex with errors.Is. Messages quote at most a
// few dozen bytes of the input, whatever its size.
//
// # Paths
//
// ParsePath accepts the PATCH path grammar
//
//	PATH = ATTRPATH / VALUEPATH ["." ATTRNAME]
//
// with no whitespace outside the brackets (a path is a JSON string chosen by the
// client, not typed into a URL, so there is no reason to be lenient there).
//
// # AST
//
// Nodes are plain values (And, not *And) and are comparable with ==, which makes
// ASTs easy to test and to use as map keys. Format prints an AST as a canonical
// filter that parses back to an equal AST.
package filter
