package graph

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// noNUL refuses, before any resolver runs, an operation with a NUL character (U+0000)
// in any string it passes: in its variables or in an argument written in the query.
// No text column can store one (PostgreSQL refuses it), so it could only reach the
// database as an internal error; it is the client's mistake, BAD_USER_INPUT.
type noNUL struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = noNUL{}

func (noNUL) ExtensionName() string                   { return "NoNUL" }
func (noNUL) Validate(graphql.ExecutableSchema) error { return nil }

func (noNUL) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	found := false
	for _, v := range oc.Variables {
		found = found || nulIn(v)
	}
	found = found || nulInDirectives(oc.Operation.Directives) || nulInSelections(oc.Operation.SelectionSet)
	for _, f := range oc.Doc.Fragments {
		found = found || nulInDirectives(f.Directives) || nulInSelections(f.SelectionSet)
	}
	if !found {
		return nil
	}
	err := gqlerror.Errorf(`a string in the request contains the NUL character (\u0000), which no field accepts`)
	err.Extensions = map[string]any{"code": "BAD_USER_INPUT"}
	return err
}

// nulIn reports whether a variable's value holds a string with a NUL.
func nulIn(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.ContainsRune(x, 0)
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) || nulIn(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if nulIn(e) {
				return true
			}
		}
	}
	return false
}

// nulInSelections reports whether an argument written in set (not in the fragments it
// spreads, which are looked at on their own) holds a string with a NUL.
func nulInSelections(set ast.SelectionSet) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			for _, a := range s.Arguments {
				if nulInValue(a.Value) {
					return true
				}
			}
			if nulInDirectives(s.Directives) || nulInSelections(s.SelectionSet) {
				return true
			}
		case *ast.InlineFragment:
			if nulInDirectives(s.Directives) || nulInSelections(s.SelectionSet) {
				return true
			}
		case *ast.FragmentSpread:
			if nulInDirectives(s.Directives) {
				return true
			}
		}
	}
	return false
}

func nulInDirectives(ds ast.DirectiveList) bool {
	for _, d := range ds {
		for _, a := range d.Arguments {
			if nulInValue(a.Value) {
				return true
			}
		}
	}
	return false
}

func nulInValue(v *ast.Value) bool {
	if v == nil {
		return false
	}
	if (v.Kind == ast.StringValue || v.Kind == ast.BlockValue) && strings.ContainsRune(v.Raw, 0) {
		return true
	}
	for _, c := range v.Children {
		if nulInValue(c.Value) {
			return true
		}
	}
	return false
}
