package main

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// openTenant opens the store for a command about one tenant and resolves --tenant; on
// an error nothing is left open.
func openTenant(ctx context.Context, cfg config.Config, slug string) (*bun.DB, *tenancy.Service, tenancy.Tenant, error) {
	bdb, ten, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, tenancy.Tenant{}, err
	}
	t, err := requireTenant(ctx, ten, slug)
	if err != nil {
		bdb.Close()
		return nil, nil, tenancy.Tenant{}, err
	}
	return bdb, ten, t, nil
}
