import CIbverbs

/// The verbs this build of DaxPin can use, fixed when it was compiled: the rdma-core headers it
/// was built against, and what they offer beyond Debian 12's rdma-core 44.
///
/// A feature the build lacks is refused with ``DaxPinError/featureUnavailable(feature:reason:)``,
/// never emulated with something weaker. A feature the build has still needs the device and the
/// kernel: DaxPin trusts it only once the kernel accepts the request (the registration, the queue
/// pair) and each operation's completion says it succeeded.
public struct RDMABuildFeatures: Sendable, Hashable, CustomStringConvertible {
    /// The rdma-core release of the libibverbs this process loaded (44 for Debian 12's), read
    /// from the library's file name (`libibverbs.so.1.14.44.0`); nil when it cannot be told.
    /// Provider features that come with rdma-core but no header (rxe's `ibv_advise_mr`, for
    /// one) follow it.
    public let rdmaCoreRelease: Int?
    /// Native RDMA FLUSH (`ibv_wr_flush`, rdma-core 45 and later): posting a FLUSH after WRITEs,
    /// and registering persistent memory with `IBV_ACCESS_FLUSH_PERSISTENT`. Decided by the
    /// headers this build compiled against.
    public let flush: Bool
    /// RDMA ATOMIC WRITE (`ibv_wr_atomic_write`, in the headers from rdma-core 44): an 8-byte
    /// write the responder places whole, never torn. Decided by the headers this build compiled
    /// against; the device, provider and kernel must still accept the queue pair.
    public let atomicWrite: Bool

    /// What this build has.
    public static let current = RDMABuildFeatures(
        rdmaCoreRelease: loadedRelease(maps: readTextFile("/proc/self/maps")),
        flush: daxpin_rdma_flush_compiled() != 0,
        atomicWrite: daxpin_rdma_atomic_write_compiled() != 0)

    /// The release in the name of the libibverbs mapped into a process (`/proc/PID/maps`).
    static func loadedRelease(maps: String) -> Int? {
        for line in maps.split(separator: "\n") {
            guard let path = line.split(separator: " ", omittingEmptySubsequences: true).last,
                  let name = path.split(separator: "/").last, name.hasPrefix("libibverbs.so.") else { continue }
            let parts = name.dropFirst("libibverbs.so.".count).split(separator: ".")
            if parts.count >= 3, let release = Int(parts[2]) { return release }
        }
        return nil
    }

    /// The refusal for RDMA FLUSH when this build lacks it, saying how to get a build with it;
    /// nil when it has it.
    public var flushRefusal: DaxPinError? {
        flush ? nil : missing("RDMA FLUSH", call: "ibv_wr_flush", since: 45)
    }

    /// The refusal for RDMA ATOMIC WRITE when this build lacks it; nil when it has it.
    public var atomicWriteRefusal: DaxPinError? {
        atomicWrite ? nil : missing("RDMA ATOMIC WRITE", call: "ibv_wr_atomic_write", since: 44)
    }

    /// The refusal for `feature`, whose verb `call` the rdma-core headers declare from `since`.
    private func missing(_ feature: String, call: String, since: Int) -> DaxPinError {
        .featureUnavailable(
            feature: feature,
            reason: "this build of DaxPin was compiled against rdma-core headers without \(call), which needs rdma-core \(since) or later: rebuild DaxPin against a newer rdma-core (install it, then PKG_CONFIG_PATH=PREFIX/lib/pkgconfig swift build)")
    }

    /// For `daxpin probe` and logs: `rdma-core 65; RDMA FLUSH compiled in; RDMA ATOMIC WRITE compiled in`.
    public var description: String {
        let loaded = rdmaCoreRelease.map { "rdma-core \($0)" } ?? "rdma-core (release unknown)"
        func state(_ compiled: Bool, since: Int) -> String { compiled ? "compiled in" : "not compiled in (needs rdma-core \(since))" }
        return "\(loaded); RDMA FLUSH \(state(flush, since: 45)); RDMA ATOMIC WRITE \(state(atomicWrite, since: 44))"
    }
}
