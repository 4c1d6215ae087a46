// Package cli is slolab's command line: one explicit table of subcommands,
// their flags and output formats, and the single place where errors become
// exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"slolab.dev/slolab"
	"slolab.dev/slolab/spec"
)

// Exit codes, as docs/architecture.md promises them to scripts.
const (
	ExitOK      = 0
	ExitFailure = 1 // a hypothesis failed, a canary failed, a dependency is down
	ExitUsage   = 2 // bad flags or arguments
	// ExitInconclusive is a canary judgment without enough evidence either
	// way; it shares 2 with usage mistakes, as the canary contract promises.
	ExitInconclusive = 2
	ExitInvalid      = 3 // an invalid spec
)

// env is what every command may use instead of globals, so tests can run the
// CLI in-process with their own streams and environment.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// Run runs slolab with args (without the program name) and returns the exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(&env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}, args)
}

func run(e *env, args []string) int {
	root := &cobra.Command{
		Use:   "slolab",
		Short: "Feel, prove, operate and guard SLOs per Critical User Journey",
		Long: `slolab makes SLOs per Critical User Journey (CUJ) tangible.

One spec lists your CUJs, their routes and their availability and latency SLOs.
slolab proxies your app and measures every CUJ, injects faults at exact rates,
reproduces SLO states so people can feel them, runs experiments with guardrails,
judges canaries per CUJ and generates rules and dashboards for your tools.

Start with:  slolab lab           (a demo app, proxy, load and dashboard)
Check:       slolab validate examples/chat.yaml`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%v\nRun '%s --help' for usage.", err, c.CommandPath())
	})
	root.AddCommand(commands(e)...)
	refuseUnknownSubcommands(root)
	cmd, err := root.ExecuteContextC(e.ctx)
	if err == nil {
		return ExitOK
	}
	return report(e, cmd, err)
}

// commands is the closed set of subcommands.
func commands(e *env) []*cobra.Command {
	return []*cobra.Command{
		validateCmd(e),
		genCmd(e),
		importCmd(e),
		proxyCmd(e),
		clusterCmd(e),
		faultCmd(e),
		sloCmd(e),
		errorsCmd(e),
		simulateCmd(e),
		loadCmd(e),
		canaryCmd(e),
		rolloutCmd(e),
		experimentCmd(e),
		gamedayCmd(e),
		demoAppCmd(e),
		labCmd(e),
		serveCmd(e),
		versionCmd(e),
	}
}

// refuseUnknownSubcommands makes every command that only groups others (slo,
// fault, ...) refuse a word that is none of them, with a suggestion, instead
// of printing its help and succeeding: 'slolab slo statuss' must fail.
// Alone, such a command prints its help.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		var s []string // what the word begins, else what is within two edits of it
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), strings.ToLower(args[0])) {
				s = append(s, sub.Name())
			}
		}
		if len(s) == 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's own default, set only on its own path
			s = cmd.SuggestionsFor(args[0])
		}
		if len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usageErrorf("%s\nRun '%s --help' for usage.", msg, cmd.CommandPath())
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// usageError marks mistakes in flags and arguments (exit 2).
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// report prints err and returns its exit code. It is the only place where
// errors become exit codes.
func report(e *env, cmd *cobra.Command, err error) int {
	var ue *usageError
	var se spec.Errors
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "slolab: %v\n", err)
		return ExitUsage
	case strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "accepts ") ||
		strings.HasPrefix(err.Error(), "requires ") || strings.HasPrefix(err.Error(), "unknown flag"):
		fmt.Fprintf(e.stderr, "slolab: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return ExitUsage
	case errors.As(err, &se):
		fmt.Fprintln(e.stderr, err)
		return ExitInvalid
	case errors.Is(err, errSilentFailure):
		return ExitFailure
	case errors.Is(err, errSilentInconclusive):
		return ExitInconclusive
	case errors.Is(err, errInvalidSpecPrinted):
		return ExitInvalid
	}
	fmt.Fprintf(e.stderr, "slolab: %v\n", err)
	if slolab.KindOf(err) == slolab.Invalid {
		return ExitUsage
	}
	return ExitFailure
}

// errSilentFailure ends a command with exit 1 after it has printed its own verdict.
var errSilentFailure = errors.New("failed")

// errSilentInconclusive ends a command with exit 2 after it has printed an
// inconclusive verdict.
var errSilentInconclusive = errors.New("inconclusive")

// minArgs is cobra.MinimumNArgs(1) with a message that says what is missing.
func minArgs(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
			return usageErrorf("%s needs %s\nRun '%s --help' for usage.", name, what, cmd.CommandPath())
		}
		return nil
	}
}

// exactArgs is cobra.ExactArgs with a message that says what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s needs %s\nRun '%s --help' for usage.", cmd.CommandPath(), what, cmd.CommandPath())
		}
		return nil
	}
}
