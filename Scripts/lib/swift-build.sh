# Sourced by the scripts that build: one way to run `swift build` for a script's log.

# swift_build ARGS...: `swift build ARGS`, its progress lines left out of the log (diagnostics
# stay); fails, under the caller's `set -eo pipefail`, exactly when the build fails.
swift_build() {
    swift build "$@" 2>&1 | { grep -Ev '^\[[0-9]+/[0-9]+\]' || true; }
}
