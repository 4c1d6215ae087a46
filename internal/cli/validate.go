package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"slolab.dev/slolab/spec"
)

func validateCmd(e *env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check spec files and summarise what they declare",
		Long: `Check spec files. Every mistake is reported at once as
file:line:col: field.path: message, and each valid file gets a one-line summary.

Exit status: 0 when every file is valid, 3 when any is not.`,
		Example: `  slolab validate examples/chat.yaml
  slolab validate -o json specs/*.yaml`,
		Args: minArgs("at least one spec file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			type result struct {
				File    string         `json:"file"`
				Valid   bool           `json:"valid"`
				Summary []spec.Summary `json:"services,omitempty"`
				Plans   []string       `json:"experiments,omitempty"`
				Errors  []string       `json:"errors,omitempty"`
			}
			var results []result
			var all spec.Errors
			for _, path := range args {
				r := result{File: path}
				f, err := loadSpecFile(path)
				if err == nil {
					// Experiments compile against their services; a file's
					// GameDays may name experiments of the other files given.
					r.Plans, err = checkExperiments(path, args, f)
				}
				if err == nil {
					r.Valid = true
					for _, s := range f.Services {
						r.Summary = append(r.Summary, s.Summary())
					}
				} else {
					var se spec.Errors
					if !errors.As(err, &se) {
						se = spec.Errors{{Pos: spec.Pos{File: path}, Msg: err.Error()}}
					}
					all = append(all, se...)
					for _, x := range se {
						r.Errors = append(r.Errors, x.Error())
					}
				}
				results = append(results, r)
			}
			if output == "json" {
				if err := writeJSON(e.stdout, results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					if !r.Valid {
						for _, msg := range r.Errors {
							fmt.Fprintln(e.stderr, msg)
						}
						fmt.Fprintf(e.stdout, "%s: invalid: %d %s\n", r.File, len(r.Errors), plural(len(r.Errors), "error", "errors"))
						continue
					}
					for _, s := range r.Summary {
						fmt.Fprintf(e.stdout, "%s: ok: service %s: %d %s, %d %s, %d %s\n", r.File, s.Service,
							s.CUJs, plural(s.CUJs, "CUJ", "CUJs"), s.Routes, plural(s.Routes, "route", "routes"), s.SLOs, plural(s.SLOs, "SLO", "SLOs"))
					}
					for _, p := range r.Plans {
						fmt.Fprintf(e.stdout, "%s: ok: %s\n", r.File, p)
					}
				}
			}
			if len(all) > 0 {
				return fmt.Errorf("%w", errInvalidSpecPrinted)
			}
			return nil
		},
	}
	outputFlag(cmd.Flags(), &output)
	return cmd
}

// errInvalidSpecPrinted ends a command with exit 3 after it printed the errors itself.
var errInvalidSpecPrinted = errors.New("invalid spec")

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
