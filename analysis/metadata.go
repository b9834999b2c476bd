package analysis

// Metadata is the merged view of an image's descriptive labels and
// annotations. Empty keys are omitted from JSON.
type Metadata struct {
	Version       string `json:"version,omitempty"`
	Revision      string `json:"revision,omitempty"`
	Source        string `json:"source,omitempty"`
	Licenses      string `json:"licenses,omitempty"`
	Title         string `json:"title,omitempty"`
	Description   string `json:"description,omitempty"`
	URL           string `json:"url,omitempty"`
	Vendor        string `json:"vendor,omitempty"`
	Created       string `json:"created,omitempty"`
	Documentation string `json:"documentation,omitempty"`
}

// metadataKeys pairs each metadata field with its OCI key suffix and its
// Label Schema equivalent, the two vocabularies images use in the wild.
var metadataKeys = []struct {
	oci, labelSchema string
	field            func(*Metadata) *string
}{
	{"version", "version", func(m *Metadata) *string { return &m.Version }},
	{"revision", "vcs-ref", func(m *Metadata) *string { return &m.Revision }},
	{"source", "vcs-url", func(m *Metadata) *string { return &m.Source }},
	{"licenses", "license", func(m *Metadata) *string { return &m.Licenses }},
	{"title", "name", func(m *Metadata) *string { return &m.Title }},
	{"description", "description", func(m *Metadata) *string { return &m.Description }},
	{"url", "url", func(m *Metadata) *string { return &m.URL }},
	{"vendor", "vendor", func(m *Metadata) *string { return &m.Vendor }},
	{"created", "build-date", func(m *Metadata) *string { return &m.Created }},
	{"documentation", "usage", func(m *Metadata) *string { return &m.Documentation }},
}

// mergeMetadata applies the precedence of docs/API.md: manifest annotations, then
// org.opencontainers.image.* labels, then org.label-schema.* labels.
func mergeMetadata(annotations, labels map[string]string) Metadata {
	var m Metadata
	for _, k := range metadataKeys {
		for _, v := range []string{
			annotations["org.opencontainers.image."+k.oci],
			labels["org.opencontainers.image."+k.oci],
			labels["org.label-schema."+k.labelSchema],
		} {
			if v != "" {
				*k.field(&m) = v
				break
			}
		}
	}
	return m
}
