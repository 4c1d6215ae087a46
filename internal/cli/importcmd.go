package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/spec/oslospec"
	"slolab.dev/slolab/spec/slothspec"
)

func importCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import FORMAT FILE",
		Short: "Turn OpenSLO or Sloth specs into slolab specs",
		Long: `Read SLOs written for another tool and print the slolab spec they become.

Formats:
  openslo   OpenSLO v1: Service, SLO, SLI, DataSource, AlertPolicy, AlertCondition
  sloth     Sloth's prometheus/v1 spec

Whatever has no slolab equivalent is never dropped silently: it is a note on
stderr with the source file's position, and a comment beside the field in the
printed spec. Neither format says which routes make up a journey or (OpenSLO)
who owns it, so the importer writes placeholders and says so: edit them
before you use the spec with the proxy.`,
		Example: `  slolab import openslo slo.yaml > chat.yaml
  slolab import sloth sloth/checkout.yaml > checkout.yaml && slolab validate checkout.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("import needs a format: openslo or sloth\nRun 'slolab import --help' for usage.")
			}
			return usageErrorf("unknown import format %q (want openslo or sloth)\nRun 'slolab import --help' for usage.", args[0])
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	var unit time.Duration
	openslo := &cobra.Command{
		Use:   "openslo FILE",
		Short: "Import OpenSLO v1 documents",
		Long: `Import OpenSLO v1 documents (a YAML stream or a YAML list of documents). Each
SLO becomes a CUJ of the service it names: a ratio metric an availability SLO
(Prometheus queries become event counts over each window), a threshold metric
with op lt or lte a latency SLO whose threshold is the value in
--threshold-unit. One spec is printed per service, separated by ---.`,
		Example: `  slolab import openslo slos.yaml > services.yaml
  slolab import openslo latency-slo.yaml --threshold-unit 1s`,
		Args: exactArgs(1, "an OpenSLO file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			res, err := oslospec.Import(args[0], data, oslospec.Options{ThresholdUnit: unit})
			if err != nil {
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintf(e.stderr, "%s: note: %s\n", cmd.CommandPath(), n)
			}
			if len(res.Services) == 0 {
				return fmt.Errorf("%s holds no SLO slolab can import", args[0])
			}
			for i, s := range res.Services {
				if i > 0 {
					fmt.Fprintln(e.stdout, "---")
				}
				if err := writeImported(e, s); err != nil {
					return err
				}
			}
			return nil
		},
	}
	openslo.Flags().DurationVar(&unit, "threshold-unit", time.Millisecond, "the unit of threshold metrics' values, which OpenSLO leaves unsaid")
	sloth := &cobra.Command{
		Use:   "sloth FILE",
		Short: "Import a Sloth prometheus/v1 spec",
		Long: `Import a Sloth prometheus/v1 spec. Each SLO becomes a CUJ with an availability
SLO over Sloth's error and total queries; Sloth's rate() becomes increase(),
since slolab's queries count events (the ratio is the same).`,
		Example: `  slolab import sloth sloth/checkout.yaml > checkout.yaml`,
		Args:    exactArgs(1, "a Sloth spec file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			res, err := slothspec.Import(args[0], data)
			if err != nil {
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintf(e.stderr, "%s: note: %s\n", cmd.CommandPath(), n)
			}
			return writeImported(e, res.Service)
		},
	}
	cmd.AddCommand(openslo, sloth)
	return cmd
}

// writeImported prints an imported spec after checking that slolab reads it.
func writeImported(e *env, s *spec.Commented) error {
	y := s.YAML()
	if _, err := spec.Parse("imported", y); err != nil {
		return fmt.Errorf("the imported spec of %s does not validate (a bug in the importer): %w", s.Service.Name, err)
	}
	_, err := e.stdout.Write(y)
	return err
}
