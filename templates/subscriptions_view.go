package templates

import "strconv"

// SubscriptionForm is the page at /subscriptions/new: the form, filled with
// what was typed when it is shown again with an error.
type SubscriptionForm struct {
	Meta
	Image string
	URL   string
	// Events maps each event type to whether its box is ticked.
	Events []EventChoice
	// Error explains why the last post was refused; empty on first show.
	Error string
	// DockerHubHook is the Docker Hub webhook URL of Image's repository,
	// when Image is on Docker Hub, for the "Get the webhook" box.
	DockerHubHook string
	// DockerHubLater says Image is on Docker Hub but its repository has no
	// webhook yet: it is made with the first subscription, never by
	// showing this page.
	DockerHubLater bool
	// Formats are the delivery formats to choose from, with the URL each
	// expects.
	Formats []FormatChoice
	// HeaderNames fills the header rows (MaxHeaderRows of them) when the
	// form is shown again; their values are never shown again.
	HeaderNames []string
	// Include, Exclude, Semver and Coalesce are the tag filters and the
	// coalescing window as typed.
	Include, Exclude, Semver string
	Coalesce                 string
}

// MaxHeaderRows is how many extra header rows the form offers.
const MaxHeaderRows = 3

// HeaderRow is one row of the form's extra headers.
type HeaderRow struct {
	N    int
	Name string
}

// HeaderRows returns the form's header rows, filled with the names given.
func (p SubscriptionForm) HeaderRows() []HeaderRow {
	out := make([]HeaderRow, MaxHeaderRows)
	for i := range out {
		out[i].N = i + 1
		if i < len(p.HeaderNames) {
			out[i].Name = p.HeaderNames[i]
		}
	}
	return out
}

// FormatChoice is one option of the format list.
type FormatChoice struct {
	Value       string
	Description string
	Selected    bool
}

// EventChoice is one event type checkbox.
type EventChoice struct {
	Type        string
	Description string
	Checked     bool
}

// SubscriptionCreated is shown once after a subscription is created: the
// secret and manage link exist only on this page.
type SubscriptionCreated struct {
	Meta
	Subscription SubscriptionView
	Secret       string
	// ManageHref is /subscriptions/{id}?token=…, the only way back in.
	ManageHref string
	// DockerHubHook is the Docker Hub webhook URL of the subscribed
	// repository, when it is on Docker Hub.
	DockerHubHook string
}

// SubscriptionView describes a subscription for its pages.
type SubscriptionView struct {
	ID    string
	Image string
	// ImageHref is the subscribed image's page: the tag's, or the
	// repository's for a subscription to every tag.
	ImageHref string
	URL       string
	Events    []string
	Status    string
	Reason    string
	Created   TimeView
	// Format, HeaderNames (never their values), Tags (the filters in words)
	// and Coalesce describe how deliveries are made.
	Format      string
	HeaderNames []string
	Tags        string
	Coalesce    string
}

// SubscriptionPage is /subscriptions/{id}?token=…: the subscription, its
// latest deliveries and a delete button.
type SubscriptionPage struct {
	Meta
	Subscription SubscriptionView
	Token        string
	Deliveries   []DeliveryView
	// DeleteAction is where the delete form posts.
	DeleteAction string
}

// DeliveryView is one row of a subscription's delivery log.
type DeliveryView struct {
	WebhookID  string
	Type       string
	Status     string
	Attempts   int
	StatusCode string
	Error      string
	At         TimeView
	Next       TimeView
	// Note is the delivery log's word on coalescing ("held until 10:05:00
	// UTC to coalesce").
	Note string
}

// SubscriptionDeleted confirms a deletion.
type SubscriptionDeleted struct {
	Meta
	ID string
}

// AttemptsText is the attempts column: blank before the first attempt.
func (d DeliveryView) AttemptsText() string {
	if d.Attempts == 0 {
		return "–"
	}
	return strconv.Itoa(d.Attempts)
}
