package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// depthLimit refuses, before any resolver runs, operations nested deeper than max
// selection levels and operations that ask for more than maxFields fields once every
// fragment spread is expanded. Complexity bounds the work of wide queries; depth bounds
// the pathological deep ones (user → groups → members → groups → …); the expanded size
// bounds fragments spread several times over, which double what they ask for at every
// link of a chain (2 KB of text can ask for a billion fields). Each fragment is measured
// once, so this check costs what the text is long; it must run before the complexity
// check, which walks the whole expansion.
type depthLimit struct{ max, maxFields int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	m := measurer{frags: oc.Doc.Fragments, memo: map[string]shape{}, busy: map[string]bool{}}
	s := m.selections(oc.Operation.SelectionSet)
	if s.fields > d.maxFields {
		err := gqlerror.Errorf("the query asks for more than %d fields once its fragments are expanded; the limit is %d", d.maxFields, d.maxFields)
		err.Extensions = map[string]any{"code": "COMPLEXITY_LIMIT_EXCEEDED"}
		return err
	}
	if s.depth > d.max {
		err := gqlerror.Errorf("the query is nested %d levels deep; the limit is %d", s.depth, d.max)
		err.Extensions = map[string]any{"code": "DEPTH_LIMIT_EXCEEDED"}
		return err
	}
	return nil
}

// shape is what a selection set asks for: how deep it nests and how many fields it
// selects, fragments expanded (fields saturates at maxShapeFields).
type shape struct{ depth, fields int }

const maxShapeFields = 1 << 40

// measurer measures selection sets, each fragment once.
type measurer struct {
	frags ast.FragmentDefinitionList
	memo  map[string]shape
	busy  map[string]bool // fragments being measured: a cycle is a validation error anyway
}

func (m *measurer) selections(set ast.SelectionSet) shape {
	var out shape
	for _, sel := range set {
		var s shape
		switch x := sel.(type) {
		case *ast.Field:
			s = m.selections(x.SelectionSet)
			s.depth++
			s.fields = min(s.fields+1, maxShapeFields)
		case *ast.InlineFragment:
			s = m.selections(x.SelectionSet)
		case *ast.FragmentSpread:
			s = m.fragment(x.Name)
		default:
			panic(fmt.Sprintf("unknown selection %T", sel))
		}
		out.depth = max(out.depth, s.depth)
		out.fields = min(out.fields+s.fields, maxShapeFields)
	}
	return out
}

func (m *measurer) fragment(name string) shape {
	if s, ok := m.memo[name]; ok {
		return s
	}
	f := m.frags.ForName(name)
	if f == nil || m.busy[name] {
		return shape{}
	}
	m.busy[name] = true
	s := m.selections(f.SelectionSet)
	delete(m.busy, name)
	m.memo[name] = s
	return s
}
