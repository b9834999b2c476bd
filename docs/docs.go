// Package docs holds imagebadger's contract in machine-readable form: the
// OpenAPI 3.1 document of the JSON API (openapi.yaml), which describes the
// routes of docs/API.md. The server serves it at /api/v1/openapi.yaml and the
// tests check real answers against it (internal/testing/apispec).
package docs

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the JSON API, as YAML.
//
//go:embed openapi.yaml
var OpenAPI []byte
