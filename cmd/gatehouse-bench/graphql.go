package main

import (
	"context"
	"encoding/json"
	"fmt"
)

// benchSpaces is how many spaces the GraphQL measurement's tenant has.
const benchSpaces = 20

// directGrantees is how many users of the first page get spaces granted to them
// directly, two each, besides what the big group gives them.
const directGrantees = 50

// usersQuery is the issue's `users(first: 100) { groups { spaces } effectiveSpaces }` in
// the schema's terms: a group's spaces are its spaceGrants.
const usersQuery = `{ users(first: 100) { nodes { id groups { displayName spaceGrants { role space { name } } } effectiveSpaces { role space { name } } } } }`

// seedSpaces makes benchSpaces spaces through the GraphQL API as the owner, grants all of
// them to the big group "Everyone" (VIEWER) and two of them to each of the first
// directGrantees users (EDITOR), then runs usersQuery once and describes what it returns
// — which must include both kinds of access.
func (b *bench) seedSpaces(ctx context.Context, owner string) (string, error) {
	gql := func(query string, out any) error {
		data, err := b.gqlOK(ctx, b.a, owner, query)
		if err != nil {
			return err
		}
		return json.Unmarshal(data, out)
	}
	var groups struct {
		Data struct {
			Groups struct {
				Nodes []struct{ ID, DisplayName string }
			}
		}
	}
	if err := gql(`{ groups(first: 100) { nodes { id displayName } } }`, &groups); err != nil {
		return "", err
	}
	everyone := ""
	for _, g := range groups.Data.Groups.Nodes {
		if g.DisplayName == "Everyone" {
			everyone = g.ID
		}
	}
	if everyone == "" {
		return "", fmt.Errorf("the big group is not among the tenant's groups over GraphQL")
	}
	var users struct {
		Data struct {
			Users struct{ Nodes []struct{ ID string } }
		}
	}
	if err := gql(fmt.Sprintf(`{ users(first: %d) { nodes { id } } }`, directGrantees), &users); err != nil {
		return "", err
	}
	grant := func(space, principal, role string) error {
		var out any
		return gql(fmt.Sprintf(`mutation { grantSpaceAccess(input: {spaceId: %q, principalId: %q, role: %s}) { id } }`, space, principal, role), &out)
	}
	spaces := make([]string, benchSpaces)
	for i := range spaces {
		var created struct {
			Data struct{ CreateSpace struct{ ID string } }
		}
		if err := gql(fmt.Sprintf(`mutation { createSpace(input: {name: "Space %02d"}) { id } }`, i), &created); err != nil {
			return "", err
		}
		spaces[i] = created.Data.CreateSpace.ID
		if err := grant(spaces[i], everyone, "VIEWER"); err != nil {
			return "", err
		}
	}
	for i, u := range users.Data.Users.Nodes {
		for _, s := range []int{i % benchSpaces, (i + 7) % benchSpaces} {
			if err := grant(spaces[s], u.ID, "EDITOR"); err != nil {
				return "", err
			}
		}
	}

	var page struct {
		Data struct {
			Users struct {
				Nodes []struct {
					Groups []struct {
						SpaceGrants []struct{ Role string }
					}
					EffectiveSpaces []struct{ Role string }
				}
			}
		}
	}
	if err := gql(usersQuery, &page); err != nil {
		return "", err
	}
	var groupGrants, effective, editor int
	nodes := page.Data.Users.Nodes
	for _, u := range nodes {
		for _, g := range u.Groups {
			groupGrants += len(g.SpaceGrants)
		}
		for _, e := range u.EffectiveSpaces {
			effective++
			if e.Role == "EDITOR" {
				editor++
			}
		}
	}
	if len(nodes) == 0 || groupGrants == 0 || effective == 0 || editor == 0 {
		return "", fmt.Errorf("the GraphQL query does not see the seeded access: %d users, %d group grants, %d effective spaces (%d as EDITOR)", len(nodes), groupGrants, effective, editor)
	}
	return fmt.Sprintf("%d users; %d spaces; per page %d group space grants and %d effective spaces (%d of them EDITOR through direct grants)",
		len(nodes), benchSpaces, groupGrants, effective, editor), nil
}
