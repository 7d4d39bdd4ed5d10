# Kernel release strings, parsed one way for every script (sourced, not run).
# Accepts what Debian ships: 6.1.0-57-amd64, 7.2.13+deb14-amd64, and a release candidate's
# 7.3-amd64 (no patch level). Tests/DaxPinTests/KernelReleaseScriptTests.swift checks this
# parser against the library's KernelVersion(release:) and KernelBehaviour.

# kernel_major_minor RELEASE: prints "MAJOR MINOR", or fails on a string with no major.minor.
kernel_major_minor() {
    local release=$1
    [[ $release =~ ^([0-9]+)\.([0-9]+)([^0-9]|$) ]] || return 1
    printf '%s %s\n' "$((10#${BASH_REMATCH[1]}))" "$((10#${BASH_REMATCH[2]}))"
}

# kernel_at_least RELEASE MAJOR MINOR: true when RELEASE is MAJOR.MINOR or later.
kernel_at_least() {
    local major minor
    read -r major minor < <(kernel_major_minor "$1") || return 1
    (( major > $2 || (major == $2 && minor >= $3) ))
}

# The rows of KernelBehaviour that scripts act on; each must agree with its Swift twin.
# rxeWorksAcrossNetworkNamespaces
kernel_rxe_works_across_netns() { kernel_at_least "$1" 7 1; }
# rxeAdvertisesOnDemandPaging
kernel_rxe_advertises_odp() { kernel_at_least "$1" 6 15; }
