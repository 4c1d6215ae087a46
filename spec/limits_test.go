package spec_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"slolab.dev/slolab/spec"
)

// aliasBomb is a "billion laughs" like the 531-byte one the proxy was
// attacked with: nine levels of nine aliases, 9^9 strings once expanded, in
// 380 bytes.
var aliasBomb = func() string {
	var b strings.Builder
	b.WriteString("name: x\nabort: true\ndescription: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, l := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString("x" + l + ": &" + l + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ",") + "]\n")
		prev = l
	}
	return b.String()
}()

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A 531-byte alias bomb cost ~170 MB before it was refused (eight at once
// took a proxy to 1.4 GB); alias expansion is now bounded by the size of the
// document, so a bomb costs little more than its text.
func TestAnAliasBombIsRefusedCheaply(t *testing.T) {
	var err error
	n := allocated(func() { _, err = spec.ParseFaultRule("request body", []byte(aliasBomb), "x") })
	t.Logf("parsing the %d-byte alias bomb allocated %.1f MB", len(aliasBomb), float64(n)/1e6)
	if err == nil || !strings.Contains(err.Error(), "aliases expand") {
		t.Errorf("error %v, want one about alias expansion", err)
	}
	if n > 4<<20 {
		t.Errorf("parsing the alias bomb allocated %d bytes, want under 4 MiB", n)
	}
}

func BenchmarkAliasBomb(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		spec.ParseFaultRule("request body", []byte(aliasBomb), "x") //nolint:errcheck // refused, as wanted
	}
}

// Rates have one syntax: `0x10%` read as 16% and `1e2%` as 100%.
func TestRatesHaveOneSyntax(t *testing.T) {
	for _, bad := range []string{"0x10%", "1e2%", "1e-6", "0b1", "0o7", "1_000", "+1%", "Inf", "1/0", ". %", "1.2.3"} {
		if r, err := spec.ParseRatio(bad); err == nil {
			t.Errorf("ParseRatio(%q) = %s, want an error", bad, r)
		}
		if r, err := spec.ParsePercent(bad); err == nil {
			t.Errorf("ParsePercent(%q) = %s, want an error", bad, r)
		}
	}
	for in, want := range map[string]string{"0.1%": "0.1%", "0.001": "0.1%", "1/3": "1/3", ".5": "50%", "5.": "500%", " 99.9 % ": "99.9%", "1/3%": "1/300"} {
		if r, err := spec.ParseRatio(in); err != nil || r.String() != want {
			t.Errorf("ParseRatio(%q) = %s, %v, want %s", in, r, err, want)
		}
	}
	_, err := spec.ParseFaultRule("body", []byte(`{"abort": true, "rate": "0x10%"}`), "x")
	if want := `body:1:25: rate: want a non-negative number or percentage such as 0.1% or 0.001, got "0x10%"`; err == nil || err.Error() != want {
		t.Errorf("a rule with rate 0x10%%: %v, want %s", err, want)
	}
}

// A status 101 fault left the client waiting for a response that never
// came and counted as good: faults answer with final statuses only.
func TestFaultsAnswerWithFinalStatusesOnly(t *testing.T) {
	for body, want := range map[string]string{
		`{"status": 101}`:           `body:1:12: status: 101 is an informational status, not an answer: a fault answers with a final status, 200 to 599`,
		`{"status": {"code": 100}}`: `body:1:21: status.code: 100 is an informational status, not an answer: a fault answers with a final status, 200 to 599`,
		`{"delay": "1s", "replace": {"response": {"status": 103}}}`: `body:1:52: replace.response.status: 103 is an informational status, not an answer: a fault answers with a final status, 200 to 599`,
		`{"status": 600}`: `body:1:12: status: must be between 100 and 599, got 600`,
	} {
		if _, err := spec.ParseFaultRule("body", []byte(body), "x"); err == nil || err.Error() != want {
			t.Errorf("%s: %v\nwant %s", body, err, want)
		}
	}
	if _, err := spec.ParseFaultRule("body", []byte(`{"status": 200}`), "x"); err != nil {
		t.Errorf("status 200: %v", err)
	}
}

// serviceWith is a service of n CUJs with routes routes each.
func serviceWith(n, routes int) string {
	var b strings.Builder
	b.WriteString("apiVersion: slolab.dev/v1\nkind: Service\nmetadata: {name: big}\nspec:\n  cujs:\n")
	for i := range n {
		fmt.Fprintf(&b, "    - name: c%d\n      owner: team\n      availability: {objective: 99.9%%}\n      routes:\n", i)
		for j := range routes {
			fmt.Fprintf(&b, "        - GET /c%d/r%d\n", i, j)
		}
	}
	return b.String()
}

// A spec with 104,000 CUJs took 36 s and 684 MB to start: the size of a
// spec is bounded, and the error points at the first item beyond.
func TestSpecSizeIsBounded(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"1001 CUJs", serviceWith(1001, 1), "big.yaml:5006:7: spec.cujs[1000]: a service may have at most 1000 CUJs, this one has 1001: each CUJ is series in every proxy and in Prometheus; split the service"},
		{"5001 routes", serviceWith(1, 5001), "big.yaml:5010:11: spec.cujs[0].routes[5000]: a service may have at most 5000 routes, all CUJs together: use patterns ({id}, {rest...}) rather than one route per path"},
		{"5 MiB", serviceWith(1, 1) + strings.Repeat("# padding\n", 500_000), "big.yaml: the spec is larger than 4 MiB: split it into one file per service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := spec.Parse("big.yaml", []byte(tt.text))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v\nwant %s", err, tt.want)
			}
		})
	}
	if _, err := spec.Parse("big.yaml", []byte(serviceWith(1000, 5))); err != nil {
		t.Errorf("1000 CUJs of 5 routes: %v", err)
	}
}
