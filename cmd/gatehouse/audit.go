package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// tailPollEvery is how often `audit tail --follow` looks for new events.
var tailPollEvery = time.Second

// stringList is a flag that may be repeated and takes comma-separated values.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// cmdAudit verifies a tenant's audit log and shows its latest events.
func cmdAudit(ctx context.Context, e env) error {
	action, e, err := subcommand(e, "gatehouse audit verify | tail --tenant SLUG [--follow] [--action ACTION]")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("audit "+action, flag.ContinueOnError)
	slug := tenantFlag(fs)
	var follow bool
	var actions stringList
	var lines int
	switch action {
	case "verify":
	case "tail":
		fs.BoolVar(&follow, "follow", false, "keep printing new events (checking every second) until interrupted")
		fs.Var(&actions, "action", "only events with this action, e.g. user.deactivated (repeat or comma-separate for several)")
		fs.IntVar(&lines, "n", 20, "how many of the latest events to print first")
	default:
		return fmt.Errorf("unknown audit action %q: use verify or tail", action)
	}
	cfg, _, err := parse(e, "audit", fs)
	if err != nil {
		return err
	}
	bdb, _, t, err := openTenant(ctx, cfg, *slug)
	if err != nil {
		return err
	}
	defer bdb.Close()
	log := audit.New(clock.System{})
	if action == "verify" {
		return verifyAudit(ctx, e, log, bdb, t)
	}
	return tailAudit(ctx, e.stdout, log, bdb, t, audit.Filter{Actions: actions}, lines, follow)
}

func verifyAudit(ctx context.Context, e env, log *audit.Log, bdb *bun.DB, t tenancy.Tenant) error {
	rep, err := log.Verify(ctx, bdb, t.ID)
	if err != nil {
		return err
	}
	if !rep.OK {
		id := "missing"
		if rep.BrokenID != "" {
			id = "id " + rep.BrokenID
		}
		fmt.Fprintf(e.stdout, "BROKEN at event #%d (%s): %s\n", rep.BrokenSeq, id, rep.Reason)
		fmt.Fprintf(e.stdout, "%d events before it verified\n", rep.Checked)
		return fmt.Errorf("the audit log of %s is broken at event #%d", t.Slug, rep.BrokenSeq)
	}
	fmt.Fprintf(e.stdout, "audit log of %s: %d events verified, chain intact\n", t.Slug, rep.Checked)
	if rep.FromCheckpoint > 0 {
		fmt.Fprintf(e.stdout, "(verified from the checkpoint after event #%d: older events were pruned or predate the chain)\n", rep.FromCheckpoint)
	}
	return nil
}

// tailAudit prints the last n matching events and, when following, every new one as
// it is committed, until ctx ends.
func tailAudit(ctx context.Context, w io.Writer, log *audit.Log, bdb *bun.DB, t tenancy.Tenant, f audit.Filter, n int, follow bool) error {
	latest, err := log.Latest(ctx, bdb, t.ID)
	if err != nil {
		return err
	}
	recent, err := lastEvents(ctx, log, bdb, t.ID, f, latest, n)
	if err != nil {
		return err
	}
	for _, ev := range recent {
		fmt.Fprintln(w, eventLine(ev))
	}
	if !follow {
		if len(recent) == 0 {
			fmt.Fprintf(w, "no matching audit events in %s\n", t.Slug)
		}
		return nil
	}
	tick := time.NewTicker(tailPollEvery)
	defer tick.Stop()
	last := latest
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for {
			page, more, err := log.Page(ctx, bdb, t.ID, f, last, audit.MaxPage)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, ev := range page {
				fmt.Fprintln(w, eventLine(ev))
				last = ev.Seq
			}
			if !more {
				break
			}
		}
	}
}

// lastEvents returns the last n events matching f up to seq upTo, oldest first. Page
// reads forward, so it looks back through windows that grow eightfold until it has
// found n or reached the start: one page without a filter, a few for a rare action.
func lastEvents(ctx context.Context, log *audit.Log, bdb *bun.DB, tenantID string, f audit.Filter, upTo int64, n int) ([]audit.Stored, error) {
	if n <= 0 || upTo == 0 {
		return nil, nil
	}
	for window := int64(n); ; window *= 8 {
		from := max(upTo-window, 0)
		var found []audit.Stored
		after := from
	pages:
		for {
			page, more, err := log.Page(ctx, bdb, tenantID, f, after, audit.MaxPage)
			if err != nil {
				return nil, err
			}
			for _, ev := range page {
				if ev.Seq > upTo {
					break pages
				}
				found = append(found, ev)
				if len(found) > n {
					found = found[1:]
				}
			}
			if !more {
				break
			}
			after = page[len(page)-1].Seq
		}
		if len(found) >= n || from == 0 {
			return found, nil
		}
	}
}

// eventLine is one event on one line: #seq time action actor target changes.
func eventLine(ev audit.Stored) string {
	actor := ev.ActorName
	if actor == "" {
		actor = ev.ActorID
	}
	target := "-"
	if ev.TargetType != "" || ev.TargetID != "" {
		name := ev.TargetDisplay
		if name == "" {
			name = ev.TargetID
		}
		target = ev.TargetType + ":" + name
	}
	line := fmt.Sprintf("#%d  %s  %s  %s:%s  %s", ev.Seq, ev.OccurredAt.UTC().Format(time.RFC3339), ev.Action, ev.ActorType, actor, target)
	if s := changesSummary(ev.Changes); s != "" {
		line += "  " + s
	}
	return oneLine(line)
}

// changesSummary shows what changed, attributes sorted, shortened to a line's worth.
func changesSummary(changes map[string]audit.Change) string {
	names := make([]string, 0, len(changes))
	for k := range changes {
		names = append(names, k)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		c := changes[k]
		switch {
		case c.Before == nil && c.After == nil:
			parts = append(parts, k)
		case c.Before == nil:
			parts = append(parts, k+"="+compactJSON(c.After))
		default:
			parts = append(parts, k+"="+compactJSON(c.Before)+"→"+compactJSON(c.After))
		}
	}
	s := strings.Join(parts, " ")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:119]) + "…"
	}
	return s
}

func compactJSON(v any) string {
	if v == nil {
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// oneLine replaces control characters (a newline in a display name) with spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
