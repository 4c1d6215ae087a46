package main

import (
	"strings"
	"testing"
	"time"
)

func TestVegetasHitsAfterItsTargetsRanOutAreNotCounted(t *testing.T) {
	csv := "1000000000,200,1000,0,2,,b2s=,,0,GET,http://x/,\n" +
		"1001000000,200,1000,0,2,,b2s=,,1,GET,http://x/,\n" +
		"1002000000,0,500,0,0,no targets to attack,,,2,,,\n"
	p99, hits, errs, err := vegetaLag(strings.NewReader(csv), 1000)
	if err != nil || hits != 2 || errs != 0 || p99 != 0 {
		t.Errorf("vegetaLag = %s, %d hits, %d errors, %v; want 0s, 2 hits, 0 errors", p99, hits, errs, err)
	}
}

// ladder builds runs at the given rates: per tool, one round's rungs as
// (p99 lag in ms, sent, planned).
func ladder(rates []int, slolab, vegeta [][3]int) map[string]map[int][]rung {
	runs := map[string]map[int][]rung{"slolab": {}, "vegeta": {}}
	for tool, rs := range map[string][][3]int{"slolab": slolab, "vegeta": vegeta} {
		for i, r := range rs {
			runs[tool][rates[i]] = append(runs[tool][rates[i]], rung{lag: time.Duration(r[0]) * time.Millisecond, sent: r[1], want: r[2], rssKB: 30 << 10, cpu: time.Duration(r[1]) * 40 * time.Microsecond})
		}
	}
	return runs
}

func TestTheLoadVerdictComesFromTheSameBarForBothTools(t *testing.T) {
	cfg := loadgenConfig{Rates: []int{1000, 2000, 4000}, Bar: 10 * time.Millisecond, Through: 4000, RSSRate: 4000}
	for _, c := range []struct {
		name           string
		slolab, vegeta [][3]int
		want           []string
	}{
		{
			name:   "twice vegeta's sustained rate leads and meets the goal",
			slolab: [][3]int{{1, 3000, 3000}, {2, 6000, 6000}, {30, 12000, 12000}},
			vegeta: [][3]int{{1, 3000, 3000}, {40, 6000, 6000}, {90, 12000, 12000}},
			want:   []string{"- **leads**: slolab's generator sustains 2000 req/s", "2.00× vegeta's 1000 req/s", "- **meets goal**: Sustained rate 2.00× vegeta's, at least the goal of 1.5×."},
		},
		{
			name:   "an equal rate is on par and misses the goal",
			slolab: [][3]int{{1, 3000, 3000}, {2, 6000, 6000}, {30, 12000, 12000}},
			vegeta: [][3]int{{1, 3000, 3000}, {2, 6000, 6000}, {11, 12000, 12000}},
			want:   []string{"- **on par**: slolab's generator sustains 2000 req/s", "1.00× vegeta's", "- **misses goal**: Sustained rate 1.00× vegeta's, under the goal of 1.5×."},
		},
		{
			name:   "vegeta sustaining nothing is no lead when its lags are lower",
			slolab: [][3]int{{9, 3000, 3000}, {20, 6000, 6000}, {40, 12000, 12000}},
			vegeta: [][3]int{{11, 3000, 3000}, {12, 6000, 6000}, {13, 12000, 12000}},
			want:   []string{"- **trails**: slolab's generator sustains 1000 req/s and vegeta 0 req/s: vegeta sustained no rung, so their ratio means nothing", "- **misses goal**: The goal of 1.5× vegeta's sustained rate cannot be judged when vegeta sustained no rung"},
		},
		{
			name:   "an unsent request fails the rung for slolab as for vegeta",
			slolab: [][3]int{{1, 3000, 3000}, {1, 5999, 6000}, {1, 12000, 12000}},
			vegeta: [][3]int{{1, 3000, 3000}, {1, 6000, 6000}, {1, 12000, 12000}},
			want:   []string{"- **trails**: slolab's generator sustains 1000 req/s", "0.25× vegeta's 4000 req/s", "- **misses goal**: slolab's generator did not send every planned request at every rung up to 4000/s: 5999/6000 at 2000/s."},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			runs := ladder(cfg.Rates, c.slolab, c.vegeta)
			best := map[string][]int{}
			for _, tool := range generators {
				var climbed []rung
				for _, rate := range cfg.Rates {
					climbed = append(climbed, runs[tool][rate]...)
				}
				best[tool] = []int{sustained(cfg.Rates, climbed, cfg.Bar)}
			}
			got := sustainedReading(cfg, runs, float64(best["slolab"][0]), float64(best["vegeta"][0])) + sentInFullReading(cfg, runs)
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("reading lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestPeakMemoryIsJudgedAtTheGoalsRate(t *testing.T) {
	cfg := loadgenConfig{Rates: []int{1000, 12000}, RSSRate: 12000}
	runs := ladder(cfg.Rates, [][3]int{{1, 1, 1}, {1, 1, 1}}, [][3]int{{1, 1, 1}, {1, 1, 1}})
	runs["slolab"][12000][0].rssKB = 70 << 10
	runs["vegeta"][12000][0].rssKB = 30 << 10
	got := rssReading(cfg, runs)
	want := "- **trails**: At 12000 req/s slolab's generator peaked at 70 MB resident, vegeta at 30 MB.\n- **misses goal**: Peak RSS at 12000 req/s 2.33× vegeta's, over the goal of 2×.\n"
	if got != want {
		t.Errorf("rssReading =\n%s\nwant\n%s", got, want)
	}
	delete(runs["vegeta"], 12000)
	if got := rssReading(cfg, runs); !strings.Contains(got, "misses goal**: Peak memory was not compared at 12000 req/s") {
		t.Errorf("without vegeta at 12000/s: %s", got)
	}
}
