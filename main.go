// Command pinpipe runs a Pinterest-style event pipeline with a lambda
// architecture in one binary. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"pinpipe/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Main(ctx, cmd.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}
