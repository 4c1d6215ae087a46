package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X slolab.dev/slolab/internal/cli.version=v1.2.3".
var version = "dev"

func versionCmd(e *env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print slolab's version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			v := struct {
				Version string `json:"version"`
				Commit  string `json:"commit,omitempty"`
				Go      string `json:"go"`
			}{Version: version, Go: runtime.Version()}
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						v.Commit = s.Value
					}
				}
			}
			if output == "json" {
				return writeJSON(e.stdout, v)
			}
			fmt.Fprintf(e.stdout, "slolab %s (%s)", v.Version, v.Go)
			if v.Commit != "" {
				fmt.Fprintf(e.stdout, " commit %s", v.Commit)
			}
			fmt.Fprintln(e.stdout)
			return nil
		},
	}
	outputFlag(cmd.Flags(), &output)
	return cmd
}
