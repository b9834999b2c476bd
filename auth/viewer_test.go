package auth

import "testing"

// TestViewerRules checks the contract's "Who may see what" rules case by
// case: a badge token opens only its own repository, a read token reads but
// does not write, and the zero viewer sees nothing private.
func TestViewerRules(t *testing.T) {
	for _, tc := range []struct {
		name       string
		v          Viewer
		see, write bool
	}{
		{"anonymous", Viewer{}, false, false},
		{"signed in", Viewer{Person: "ada@example.com"}, true, true},
		{"read token", Viewer{Scope: ScopeRead}, true, false},
		{"write token", Viewer{Scope: ScopeWrite}, true, true},
		{"badge token of this repository", Viewer{BadgeRepository: "reg.test/acme/app"}, true, false},
		{"badge token of another repository", Viewer{BadgeRepository: "reg.test/acme/other"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.v.MaySeePrivate("reg.test/acme/app"); got != tc.see {
				t.Errorf("MaySeePrivate = %v, want %v", got, tc.see)
			}
			if got := tc.v.MayWritePrivate(); got != tc.write {
				t.Errorf("MayWritePrivate = %v, want %v", got, tc.write)
			}
		})
	}
}
