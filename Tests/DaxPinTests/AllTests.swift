import Testing

/// One serialized root: the tests count the process's fds, mappings and locks, and break
/// leases with other processes, so they must not interleave.
@Suite(.serialized) struct DaxPin {}
