// Package cmd is pinpipe's command line, built on cobra: one file per
// command, one help layout (--flag), help on stdout, and exit codes 0 (ok),
// 1 (the command failed) and 2 (the command line was wrong).
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"pinpipe/internal/buildinfo"
)

// Env is what a command may touch of the process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line was wrong; nothing was done
)

// usageError is a wrong command line: an unknown command or flag, a bad
// value, a missing argument. It exits 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// newRoot returns the pinpipe command with every subcommand.
func newRoot(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "pinpipe",
		Short: "A Pinterest-style event pipeline in one binary",
		Long: `pinpipe — a Pinterest-style event pipeline in one binary: POST /pins into
Kafka, a batch lane to an S3 lake and Cassandra, a stream lane to Postgres,
SQL over the lake and a dashboard. Every dependency left unset runs embedded.

Without a command, pinpipe runs 'serve'.`,
		Version:       versionLine(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServe(env), newLoad(env), newEmulate(env), newBatch(env), newQuery(env), newVersion(env))
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	return root
}

// Main runs the command line args (without the program name) and returns
// the process exit code. With no arguments, or with flags first, it runs
// serve, as pinpipe always has.
func Main(ctx context.Context, env Env, args []string) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && !isRootFlag(args[0]) {
		args = append([]string{"serve"}, args...)
	}
	root := newRoot(env)
	root.SetArgs(args)
	c, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if c == nil {
		c = root
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		fmt.Fprintf(env.Stderr, "%s: %v\nRun '%s --help' for usage.\n", c.CommandPath(), err, c.CommandPath())
		return exitUsage
	}
	fmt.Fprintf(env.Stderr, "%s: %v\n", c.CommandPath(), err)
	return exitFailure
}

// isRootFlag reports whether arg is one of the root command's own flags,
// which must not be handed to serve.
func isRootFlag(arg string) bool {
	switch arg {
	case "-h", "--help", "-v", "--version":
		return true
	}
	return false
}

// isCobraUsage reports whether err is one of cobra's own command-line
// errors, which it returns as plain errors.
func isCobraUsage(err error) bool {
	for _, p := range []string{"unknown command ", "unknown flag", "unknown shorthand flag", "invalid argument ",
		"flag needs an argument", "accepts ", "requires ", "invalid argument"} {
		if strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
}

// noArgs refuses positional arguments as a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return usagef("takes no arguments, got %q", args)
}

// versionLine is what `pinpipe version` and `pinpipe --version` print.
func versionLine() string {
	i := buildinfo.Get()
	modified := ""
	if i.Modified {
		modified = " (modified)"
	}
	return fmt.Sprintf("pinpipe %s\ncommit: %s%s\nbuilt:  %s (commit time)\ngo:     %s", i.Version, i.Commit, modified, i.Time, i.Go)
}

func newVersion(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version, the commit and the build date",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(env.Stdout, versionLine())
			return err
		},
	}
}
