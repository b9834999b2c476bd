package analysis

// Visibility is whether a repository's images are open to anyone who can
// reach its registry. The service reads private ones with the operator's
// credentials, so it must not show them to whoever can reach the service.
type Visibility string

// The verdicts of a visibility check.
const (
	// VisibilityUnknown: the repository was never checked.
	VisibilityUnknown Visibility = ""
	// VisibilityPublic: the registry serves it anonymously, or the service
	// holds no credentials for the registry (what it reads, anyone can).
	VisibilityPublic Visibility = "public"
	// VisibilityPrivate: the registry refused an anonymous read of what the
	// service reads with credentials.
	VisibilityPrivate Visibility = "private"
)
