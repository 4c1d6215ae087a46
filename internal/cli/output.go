package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"
)

// secretFlag adds a string flag holding a secret (a token) whose default
// comes from the environment variable env. Its help names the variable,
// never its value: a --help pasted into a ticket must not carry the token.
func secretFlag(fs *pflag.FlagSet, dst *string, name, env string, getenv func(string) string, usage string) {
	*dst = getenv(env)
	fs.Var(secret{dst}, name, usage)
}

// envFlag adds a string flag whose default is $env, else fallback; its
// usage names both, and --help prints no default of its own (it would show
// whatever the environment holds, after the usage that already says it).
func envFlag(fs *pflag.FlagSet, dst *string, name, env, fallback string, getenv func(string) string, usage string) {
	if *dst = getenv(env); *dst == "" {
		*dst = fallback
	}
	fs.Var(secret{dst}, name, fmt.Sprintf("%s (default $%s or %s)", usage, env, fallback))
}

// secret is a flag value that prints nothing as its default.
type secret struct{ v *string }

func (s secret) String() string     { return "" }
func (s secret) Set(v string) error { *s.v = v; return nil }
func (s secret) Type() string       { return "string" }

// outputFlag adds -o/--output with the formats "table" and "json".
func outputFlag(fs *pflag.FlagSet, dst *string) {
	fs.StringVarP(dst, "output", "o", "table", "output format: table or json")
}

func checkOutput(format string) error {
	if format != "table" && format != "json" {
		return usageErrorf("unknown output format %q (want table or json)", format)
	}
	return nil
}

// writeJSON writes v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(toAny(header)...)
	return t
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (t *table) row(cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(t.tw, strings.Join(parts, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }
