package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/migrations"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

func cmdMigrate(ctx context.Context, e env) error {
	cfg, args, err := parse(e, "migrate", flag.NewFlagSet("migrate", flag.ContinueOnError))
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return fmt.Errorf("usage: gatehouse migrate up | down | status")
	}
	bdb, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer bdb.Close()
	switch args[0] {
	case "up":
		names, err := migrations.Up(ctx, bdb)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			fmt.Fprintln(e.stdout, "database is up to date")
		}
		for _, n := range names {
			fmt.Fprintln(e.stdout, "applied", n)
		}
	case "down":
		names, err := migrations.Down(ctx, bdb)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			fmt.Fprintln(e.stdout, "nothing to roll back")
		}
		for _, n := range names {
			fmt.Fprintln(e.stdout, "rolled back", n)
		}
	case "status":
		list, err := migrations.List(ctx, bdb)
		if err != nil {
			return err
		}
		for _, s := range list {
			state := "pending"
			if s.Applied {
				state = fmt.Sprintf("applied (group %d)", s.Group)
			}
			fmt.Fprintf(e.stdout, "%-40s %s\n", s.Name, state)
		}
	default:
		return fmt.Errorf("unknown migrate action %q: use up, down or status", args[0])
	}
	return nil
}
