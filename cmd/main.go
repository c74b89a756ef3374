// Package cmd is pinpipe's command line: one file per subcommand, each with
// its own flag set and usage text.
package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Env is what a subcommand may touch of the process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

var commands = []struct {
	name, summary string
	run           func(ctx context.Context, env Env, args []string) error
}{
	{"serve", "run the pipeline and the HTTP API (the default)", runServe},
	{"load", "post pins from a JSON or NDJSON file (or - for stdin)", runLoad},
	{"emulate", "post synthetic pins shaped like the real ones at a steady rate", runEmulate},
	{"batch", "run the daily batch job for one day, then exit", runBatch},
	{"query", "run one SQL query over the lake and print a table", runQuery},
}

// Main runs the subcommand named by args[0] ("serve" when args is empty or
// starts with a flag) and returns the process exit code.
func Main(ctx context.Context, env Env, args []string) int {
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" || name == "-h" || name == "--help" {
		usage(env.Stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == name {
			if err := c.run(ctx, env, args); err != nil {
				if err != errUsage {
					fmt.Fprintf(env.Stderr, "pinpipe %s: %v\n", name, err)
				}
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(env.Stderr, "pinpipe: unknown command %q\n", name)
	usage(env.Stderr)
	return 2
}

// errUsage reports a usage error the flag package has already printed.
var errUsage = fmt.Errorf("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "pinpipe — a Pinterest-style event pipeline in one binary.\n\nUsage: pinpipe <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'pinpipe <command> -h' for a command's flags.")
}
