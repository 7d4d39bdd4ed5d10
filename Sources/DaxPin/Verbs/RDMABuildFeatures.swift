import CIbverbs

/// The verbs this build of DaxPin can use, fixed when it was compiled: the rdma-core headers it
/// was built against, and what they offer beyond Debian 12's rdma-core 44.
///
/// A feature the build lacks is refused with ``DaxPinError/featureUnavailable(feature:reason:)``,
/// never emulated with something weaker. A feature the build has still needs the device and the
/// kernel: DaxPin trusts it only once the kernel accepts the request (the registration, the queue
/// pair) and each operation's completion says it succeeded.
public struct RDMABuildFeatures: Sendable, Hashable, CustomStringConvertible {
    /// The rdma-core release of the headers this build compiled against (44 for Debian 12's),
    /// or nil when the build could not tell.
    public let rdmaCoreRelease: Int?
    /// Native RDMA FLUSH (`ibv_wr_flush`, rdma-core 45 and later): posting a FLUSH after WRITEs,
    /// and registering persistent memory with `IBV_ACCESS_FLUSH_PERSISTENT`.
    public let flush: Bool
    /// RDMA ATOMIC WRITE (`ibv_wr_atomic_write`, rdma-core 45 and later, with FLUSH): an 8-byte
    /// write the responder places whole, never torn.
    public var atomicWrite: Bool { flush }

    /// What this build has.
    public static let current = RDMABuildFeatures(
        rdmaCoreRelease: daxpin_rdma_core_release() > 0 ? Int(daxpin_rdma_core_release()) : nil,
        flush: daxpin_rdma_flush_compiled() != 0)

    /// The refusal for RDMA FLUSH when this build lacks it, saying how to get a build with it;
    /// nil when it has it.
    public var flushRefusal: DaxPinError? {
        flush ? nil : missing("RDMA FLUSH", call: "ibv_wr_flush")
    }

    /// The refusal for RDMA ATOMIC WRITE when this build lacks it; nil when it has it.
    public var atomicWriteRefusal: DaxPinError? {
        atomicWrite ? nil : missing("RDMA ATOMIC WRITE", call: "ibv_wr_atomic_write")
    }

    /// The refusal for `feature`, whose verb `call` needs rdma-core 45 or later.
    private func missing(_ feature: String, call: String) -> DaxPinError {
        let headers = rdmaCoreRelease.map { "rdma-core \($0)" } ?? "an rdma-core whose release pkg-config did not report"
        return .featureUnavailable(
            feature: feature,
            reason: "this build of DaxPin was compiled against \(headers), and \(call) needs rdma-core 45 or later: rebuild DaxPin against a newer rdma-core (install it, then PKG_CONFIG_PATH=PREFIX/lib/pkgconfig swift build)")
    }

    /// For `daxpin probe` and logs: `rdma-core 65, RDMA FLUSH and ATOMIC WRITE compiled in`.
    public var description: String {
        let headers = rdmaCoreRelease.map { "rdma-core \($0)" } ?? "rdma-core (release unknown)"
        return "\(headers), RDMA FLUSH and ATOMIC WRITE \(flush ? "compiled in" : "not compiled in (need rdma-core 45)")"
    }
}
