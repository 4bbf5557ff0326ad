package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/migrations"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

func cmdMigrate(ctx context.Context, e env) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	yes := fs.Bool("yes", false, "down: roll back without asking (it drops the tables of the migrations it undoes, and their data)")
	cfg, args, err := parse(e, "migrate", fs)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return fmt.Errorf("usage: gatehouse migrate up | down [--yes] | status")
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
		if !*yes {
			return confirmDown(ctx, bdb)
		}
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

// confirmDown says what `migrate down` would undo, and refuses: a rollback undoes the
// last group `up` applied — after a fresh install, every migration — and drops the
// tables and data (the audit log included) of each.
func confirmDown(ctx context.Context, bdb *bun.DB) error {
	list, err := migrations.List(ctx, bdb)
	if err != nil {
		return err
	}
	var last int64
	for _, s := range list {
		if s.Applied {
			last = max(last, s.Group)
		}
	}
	var names []string
	for _, s := range list {
		if s.Applied && s.Group == last {
			names = append(names, s.Name)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("nothing to roll back")
	}
	return fmt.Errorf("migrate down would roll back %d migration(s) (%s), dropping what they created, data included; back up the database, then run `gatehouse migrate down --yes`",
		len(names), strings.Join(names, ", "))
}
