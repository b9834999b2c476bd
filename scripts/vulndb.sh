#!/usr/bin/env bash
# Builds an offline Go vulnerability database for govulncheck, once, from the
# golang.org/x/vulndb module (which carries every report as OSV JSON) fetched
# through the Go module proxy: this machine reaches no other host. The
# database is only as new as VULNDB_VERSION; bump it to scan against newer
# reports. Prints the database directory.
set -euo pipefail

VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
GOVULNCHECK_VERSION=v1.9.0

cache="$(go env GOCACHE)/imagebadger-vulndb/$VULNDB_VERSION"
gopath="$(go env GOPATH)"
gopath="${gopath%%:*}"

if [[ ! -x "$gopath/bin/govulncheck" ]]; then
	echo "vulndb: installing govulncheck $GOVULNCHECK_VERSION" >&2
	GOFLAGS= GOBIN="$gopath/bin" go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" >&2
fi

if [[ ! -f "$cache/db/index/db.json" ]]; then
	echo "vulndb: building the database from golang.org/x/vulndb@$VULNDB_VERSION" >&2
	src="$(GOFLAGS= go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
	work="$(mktemp -d)"
	trap 'rm -rf "$work"' EXIT
	cp -r "$src" "$work/vulndb"
	chmod -R u+w "$work/vulndb"
	(cd "$work/vulndb" && GOFLAGS= go build -o "$work/indexdb" ./cmd/indexdb) >&2
	rm -rf "$cache/db"
	mkdir -p "$cache"
	"$work/indexdb" -vulns "$work/vulndb/data/osv" -out "$cache/db" >&2
fi
echo "$cache/db"
