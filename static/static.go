// Package static holds the stylesheet, the small script and the icons of the
// pages, embedded in the binary so the service works offline and needs no CDN.
package static

import "embed"

// FS holds the files served under /static/. It is read-only: embed.FS
// cannot be changed at run time.
//
//go:embed style.css app.js favicon.svg
var FS embed.FS
