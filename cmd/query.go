package cmd

import (
	"context"
	"errors"
	"flag"
)

// runQuery is filled in by the query lane's change.
func runQuery(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	return errors.New("the query command is not built yet")
}
