#!/usr/bin/env bash
# Installs what the tests need, if missing; does nothing when all is there.
#   Debian packages: docker-registry (the CNCF distribution registry), skopeo, chromium, wrk,
#                    curl and jq (the shell consumers of the MicroBadger API test),
#                    postgresql (throwaway clusters for the store suite and the replicas tests),
#                    apache2-utils (htpasswd, for the registry with auth: htpasswd),
#                    systemd (systemd-analyze, which checks deploy/systemd's unit)
#                    `make image`'s inputs: gcc-aarch64-linux-gnu and libc6-dev-arm64-cross
#                    (cgo cross-compiler and static C library for linux/arm64),
#                    ca-certificates and tzdata (the image's CA bundle and time zones),
#                    and qemu-user-static (runs the arm64 binary in the image tests)
#   Go tools:        crane (go-containerregistry's CLI), into $(go env GOPATH)/bin
#   npm packages:    the Teams format's independent reader (notify/testdata/teams: Microsoft's
#                    adaptivecards), with `npm ci` from the committed package-lock.json; needs
#                    Node.js and npm, which the machine has (else the Debian packages nodejs, npm)
# Debian packages are installed only as root; otherwise the script says what to install
# and fails.
#
#   scripts/deps.sh                       install what is missing
#   scripts/deps.sh --print-apt-packages  print the Debian package names (for .ci/run)
#   scripts/deps.sh --npm                 only the npm packages (make check)
set -euo pipefail

# npm_deps installs each committed package-lock.json's packages when its
# node_modules is missing or older than the lock.
npm_deps() {
	local dir
	for dir in notify/testdata/teams; do
		if [[ ! -d "$dir/node_modules" || "$dir/package-lock.json" -nt "$dir/node_modules" ]]; then
			if ! command -v npm >/dev/null; then
				echo "deps: npm is missing (Debian: apt-get install -y nodejs npm)" >&2
				return 1
			fi
			echo "deps: npm ci in $dir"
			(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
			touch "$dir/node_modules"
		fi
	done
}

if [[ "${1:-}" == "--npm" ]]; then
	npm_deps
	exit 0
fi

APT_PACKAGES=(docker-registry skopeo chromium wrk curl jq postgresql apache2-utils systemd
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross ca-certificates tzdata qemu-user-static)
CRANE_VERSION=v0.22.1

if [[ "${1:-}" == "--print-apt-packages" ]]; then
	echo "${APT_PACKAGES[@]}"
	exit 0
fi

installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
	installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]})); then
	if [[ "$(id -u)" != 0 ]]; then
		echo "deps: missing Debian packages: ${missing[*]}" >&2
		echo "deps: as root run: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	# Another apt run (a background install) may hold the lock: wait for it up to 5 minutes.
	apt_opts=(-o DPkg::Lock::Timeout=300)
	apt-get "${apt_opts[@]}" update
	DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"
fi

gopath="$(go env GOPATH)"
gopath="${gopath%%:*}"
if [[ ! -x "$gopath/bin/crane" ]]; then
	echo "deps: installing crane $CRANE_VERSION"
	GOFLAGS= GOBIN="$gopath/bin" go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
fi

npm_deps
