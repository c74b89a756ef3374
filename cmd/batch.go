package cmd

import (
	"context"
	"errors"
	"flag"
)

// runBatch is filled in by the batch lane's change.
func runBatch(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("batch", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	return errors.New("the batch command is not built yet")
}
