#!/usr/bin/env bash
# Builds Stripe's mock API server (stripe-mock) once into a per-version cache outside the
# checkout and prints the binary's path on stdout. Progress and errors go to stderr.
#
#   STRIPE_MOCK=$(scripts/ensure-stripe-mock.sh) && "$STRIPE_MOCK" -http-port 12111
#
# The only download is `go install` through the Go module proxy. Set STRIPE_MOCK_VERSION to
# try another tag (`go list -m -versions github.com/stripe/stripe-mock`).
set -euo pipefail

STRIPE_MOCK_VERSION="${STRIPE_MOCK_VERSION:-v0.203.0}"
CACHE_ROOT="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mvno-bss"
BIN_DIR="${CACHE_ROOT}/stripe-mock-${STRIPE_MOCK_VERSION}"
BIN="${BIN_DIR}/stripe-mock"

log() { printf 'ensure-stripe-mock: %s\n' "$*" >&2; }

if [[ -x "${BIN}" ]]; then
  printf '%s\n' "${BIN}"
  exit 0
fi

GO="${GO:-}"
if [[ -n "${GO}" && ! -x "${GO}" ]]; then
  log "GO=${GO} is not an executable Go toolchain; unset GO or point it at a 'go' binary."
  exit 127
fi
if [[ -z "${GO}" ]]; then
  if command -v go >/dev/null 2>&1; then
    GO="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then
    GO=/usr/local/go/bin/go
  else
    log "Go is not installed (no 'go' on PATH nor /usr/local/go/bin/go)."
    log "stripe-mock ${STRIPE_MOCK_VERSION} is built from source with 'go install'; install Go >= 1.22 and retry."
    exit 127
  fi
fi

mkdir -p "${BIN_DIR}"
# Build into a private directory, then rename: concurrent callers (parallel jest workers,
# CI) never see a half-written binary.
TMP_DIR="$(mktemp -d "${BIN_DIR}/.build.XXXXXX")"
trap 'rm -rf "${TMP_DIR}"' EXIT

log "building github.com/stripe/stripe-mock@${STRIPE_MOCK_VERSION} with $("${GO}" version) (first time only)..."
start=$(date +%s)
if ! GOBIN="${TMP_DIR}" GOFLAGS="${GOFLAGS:-} -buildvcs=false" "${GO}" install \
  "github.com/stripe/stripe-mock@${STRIPE_MOCK_VERSION}" >&2; then
  log "go install github.com/stripe/stripe-mock@${STRIPE_MOCK_VERSION} failed (is the Go module proxy reachable?)"
  exit 1
fi
mv -f "${TMP_DIR}/stripe-mock" "${BIN}"
log "built ${BIN} in $(( $(date +%s) - start ))s"
printf '%s\n' "${BIN}"
