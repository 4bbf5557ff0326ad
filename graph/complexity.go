package graph

import "github.com/gatehouse-dev/gatehouse/graph/model"

// complexity weighs each connection by its page size: a page of first items costs first
// times what one item's selection costs (plus one for the field), so `users(first: 100)`
// counts a hundred times a user's fields, and nested pages multiply. Other fields cost
// one plus their selection (gqlgen's default). first is taken as the resolver will use
// it (1 to 100, default 50); a first out of range is refused by the resolver anyway.
func complexity() ComplexityRoot {
	var c ComplexityRoot
	c.Query.Users = func(child int, _ *model.UserFilter, first *int, _ *string) int { return page(child, first) }
	c.Query.Groups = func(child int, first *int, _ *string) int { return page(child, first) }
	c.Query.Spaces = func(child int, first *int, _ *string) int { return page(child, first) }
	c.Query.AuditEvents = func(child int, _ *model.AuditFilter, first *int, _ *string) int { return page(child, first) }
	c.Group.Members = func(child int, first *int, _ *string) int { return page(child, first) }
	c.Space.EffectiveMembers = func(child int, first *int, _ *string) int { return effectiveMembersCost + page(child, first) }
	return c
}

// effectiveMembersCost is what a space's effectiveMembers costs besides its page: each
// list is statements of its own (the groups behind the space, a seek per group, the
// sources), not batched across spaces, so a request may ask for few of them (a hundred
// spaces' members in one query is over the limit).
const effectiveMembersCost = 50

func page(child int, first *int) int {
	n := defaultPageSize
	if first != nil {
		n = min(max(*first, 1), maxPageSize)
	}
	return 1 + n*child
}
