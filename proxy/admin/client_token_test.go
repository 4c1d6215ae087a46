package admin_test

import (
	"context"
	"strings"
	"testing"

	"slolab.dev/slolab"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/spec"
)

// TestTheClientSaysWhetherTheTokenWasMissingOrWrong: the proxy answers 401
// to both; the client knows which it sent and says so, naming a wrong
// token by its fingerprint only.
func TestTheClientSaysWhetherTheTokenWasMissingOrWrong(t *testing.T) {
	e := setup(t, "s3cret-s3cret-s3cret")
	rule, err := spec.ParseFaultRule("t", []byte(`{"match": {"cuj": "update"}, "status": 500, "rate": "0.1%"}`), "a")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ token, want string }{
		{"", "the admin API at " + e.srv.URL + " needs its token for this change, and none was given: set SLOLAB_ADMIN_TOKEN or --admin-token"},
		{"wrong-wrong-wrong-wrong", "the admin API at " + e.srv.URL + " refused the token given (token:"},
	} {
		client, err := admin.NewClient(e.srv.URL, c.token)
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.PutFault(context.Background(), rule)
		if slolab.KindOf(err) != slolab.Unauthorized || err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "wrong") {
			t.Errorf("token %q: %v, want %q…", c.token, err, c.want)
		}
	}
}
