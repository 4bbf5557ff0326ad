// Command gatehouse is the Gatehouse server and its operator CLI. main is tiny: it calls
// run, which takes everything from the outside world as arguments so tests can drive it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"sort"
	"strings"
	"syscall"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		os.Exit(1)
	}
}

// env is what a command receives: its arguments, the process environment and outputs.
type env struct {
	args   []string
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	summary string
	run     func(ctx context.Context, e env) error
}

var commands = map[string]command{
	"serve":          {"run the HTTP server (SCIM, health checks)", cmdServe},
	"config":         {"print the effective configuration, secrets masked", cmdConfig},
	"migrate":        {"apply or inspect schema migrations: up | down | status", cmdMigrate},
	"tenant":         {"manage tenants: create | list | show | update", cmdTenant},
	"domain":         {"manage a tenant's email domains: add | verify | list", cmdDomain},
	"scim-token":     {"manage a tenant's SCIM bearer tokens: issue | list | revoke", cmdSCIMToken},
	"scim-extension": {"declare a tenant's own SCIM User extension schemas: set | list | remove", cmdSCIMExtension},
	"saml":           {"configure or show a tenant's SAML IdP connection: configure | show", cmdSAML},
	"session":        {"list or revoke a user's sessions: list | revoke", cmdSession},
	"keys":           {"show and rotate signing keys (session JWT, SAML SP): list | add | activate | retire", cmdKeys},
	"role":           {"company roles: list | set | map | unmap", cmdRole},
	"audit":          {"the audit log: verify | tail", cmdAudit},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: gatehouse <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-15s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every command takes the server settings as flags or GATEHOUSE_* variables;")
	fmt.Fprintln(w, "run `gatehouse <command> -h` to list them.")
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	// Changes made from the CLI are audited as the operator's.
	ctx = audit.WithActor(ctx, audit.Actor{Type: audit.ActorCLI, Name: operatorName()})
	return c.run(ctx, env{args: args[1:], getenv: getenv, stdout: stdout, stderr: stderr})
}

func operatorName() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}

// parse parses a command's flags (its own plus every server setting) and loads the
// configuration. Flags may come before or after positional arguments.
func parse(e env, name string, fs *flag.FlagSet) (config.Config, []string, error) {
	fs.SetOutput(e.stderr)
	cf := config.Register(fs)
	var positional []string
	args := e.args
	for {
		if err := fs.Parse(args); err != nil {
			return config.Config{}, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	cfg, err := cf.Load(e.getenv)
	if err != nil {
		return config.Config{}, nil, fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return cfg, positional, nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdConfig(_ context.Context, e env) error {
	cfg, _, err := parse(e, "config", flag.NewFlagSet("config", flag.ContinueOnError))
	if err != nil {
		return err
	}
	return cfg.Print(e.stdout)
}
