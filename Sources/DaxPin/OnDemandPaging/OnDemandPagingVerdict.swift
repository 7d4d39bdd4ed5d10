/// Whether a device's On-Demand Paging (ODP) can be trusted, and why.
///
/// A device that advertises ODP is not taken at its word: before any strategy relies on ODP,
/// DaxPin moves data through an ODP registration of the kind of memory being pinned, on
/// loopback queue pairs, and compares every byte (see
/// ``RDMADevice/onDemandPaging(for:memory:directory:remoteAtomics:remoteFlush:)``). Linux
/// 7.2's Soft-RoCE, for one, advertises ODP and acknowledges RDMA WRITEs whose payload it then
/// writes to the wrong place.
public enum OnDemandPagingVerdict: Sendable, Hashable, CustomStringConvertible {
    /// The device does not advertise ODP for the operations the access needs on RC queue pairs.
    case notOffered
    /// The device advertises ODP and moved every byte of DaxPin's check correctly.
    case verified
    /// The device advertises ODP, but the check found wrong data, could not run, or does not
    /// cover what the registration allows (remote atomics, RDMA FLUSH): ODP is not used.
    case failed(reason: String)

    /// Whether a strategy may rely on ODP.
    public var isUsable: Bool { self == .verified }

    /// Human-readable text for messages, logs and `daxpin probe`.
    public var description: String {
        switch self {
        case .notOffered: "not offered"
        case .verified: "verified"
        case .failed(let reason): "failed verification: \(reason)"
        }
    }

    /// Why a strategy plan skips ODP, or nil when it may use it.
    var skipReason: String? {
        switch self {
        case .verified: nil
        case .notOffered: "the device does not offer On-Demand Paging"
        case .failed(let reason):
            "the device advertises On-Demand Paging, but it failed DaxPin's check, so it is not trusted: \(reason)"
        }
    }
}
