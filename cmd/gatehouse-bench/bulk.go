package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// bulkUsers is how many creates one Bulk request carries (the server's maxOperations).
const bulkUsers = 1000

// bulkResult holds the rounds of bulkVsSingles: the time of each Bulk request and of
// each run of bulkUsers single creates, and the statements of one of each.
type bulkResult struct {
	bulk, singles      []time.Duration
	bulkSQL, singleSQL sqlTiming
}

// bulkVsSingles provisions bulkUsers users with one POST /Bulk and bulkUsers users with
// one POST /Users each (one client, one after another, as the Bulk runs its operations),
// the same payloads under other userNames, per round; the order alternates between
// rounds so that neither always runs on a warmer or fuller database.
func (b *bench) bulkVsSingles(ctx context.Context, rounds int) (bulkResult, error) {
	var res bulkResult
	user := func(kind string, r, i int) []byte {
		return userJSON(fmt.Sprintf("%s%d-%d@acme.bench", kind, r, i), fmt.Sprintf("ext-%s-%d-%d", kind, r, i), fmt.Sprintf("%s%d-%d@mail.acme.bench", kind, r, i))
	}
	bulk := func(r int) error {
		ops := make([]map[string]any, bulkUsers)
		for i := range ops {
			ops[i] = map[string]any{"method": "POST", "path": "/Users", "bulkId": fmt.Sprint("u", i), "data": json.RawMessage(user("bulk", r, i))}
		}
		body, _ := json.Marshal(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"}, "Operations": ops})
		t := time.Now()
		data, sql, err := b.scimSQL(ctx, b.a, http.StatusOK, http.MethodPost, "/Bulk", body)
		if err != nil {
			return err
		}
		res.bulk = append(res.bulk, time.Since(t))
		res.bulkSQL = sql
		var out struct{ Operations []struct{ Status string } }
		if err := json.Unmarshal(data, &out); err != nil {
			return fmt.Errorf("bulk response: %w", err)
		}
		if len(out.Operations) != bulkUsers {
			return fmt.Errorf("bulk response has %d operations, want %d", len(out.Operations), bulkUsers)
		}
		for i, op := range out.Operations {
			if op.Status != "201" {
				return fmt.Errorf("bulk operation %d: status %s: %.300s", i, op.Status, data)
			}
		}
		return nil
	}
	singles := func(r int) error {
		t := time.Now()
		for i := range bulkUsers {
			_, sql, err := b.scimSQL(ctx, b.a, http.StatusCreated, http.MethodPost, "/Users", user("single", r, i))
			if err != nil {
				return err
			}
			res.singleSQL = sql
		}
		res.singles = append(res.singles, time.Since(t))
		return nil
	}
	for r := range rounds {
		first, second := bulk, singles
		if r%2 == 1 {
			first, second = singles, bulk
		}
		if err := first(r); err != nil {
			return res, err
		}
		if err := second(r); err != nil {
			return res, err
		}
	}
	return res, nil
}
