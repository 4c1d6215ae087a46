package match

import "strings"

// Revision is the release a request was served by while a canary is being
// judged: none (the proxy is not splitting traffic), stable or canary.
type Revision uint8

// The revisions. Their names are the values of the metrics' revision label;
// none is the empty string, so series recorded without a split carry no
// revision at all.
const (
	RevisionNone Revision = iota
	RevisionStable
	RevisionCanary
	NumRevisions = 3
)

var revisionNames = [NumRevisions]string{"", "stable", "canary"}

func (r Revision) String() string { return revisionNames[r] }

// ParseRevision returns the revision with the given name ("" is none).
func ParseRevision(name string) (Revision, bool) {
	for i, n := range revisionNames {
		if n == name {
			return Revision(i), true
		}
	}
	return RevisionNone, false
}

// RevisionOf maps the value of a revision header, set by a mesh or by the app,
// to a revision: "canary", "true", "1", "yes" and "on" (any case, surrounding
// spaces ignored) mean canary; every other value, and no header at all, means
// stable. A mesh usually marks only the canary's route, so unmarked traffic is
// the stable release's.
func RevisionOf(value string) Revision {
	v := strings.TrimSpace(value)
	for _, c := range canaryValues {
		if strings.EqualFold(v, c) {
			return RevisionCanary
		}
	}
	return RevisionStable
}

// canaryValues are the header values that mean canary.
var canaryValues = [...]string{"canary", "true", "1", "yes", "on"}
