/// The names and labels of the metrics DaxPin emits through swift-metrics, for dashboards and
/// alerts. Nothing is emitted until the application bootstraps a backend
/// (`MetricsSystem.bootstrap`); until then each event costs one look at the factory.
///
/// Labels are bounded: an RDMA device name, a memory kind (``memoryKindValues``), a strategy
/// (``Strategy/description``), a reason. Paths never become labels.
public enum DaxPinMetricNames {
    /// Gauge: leases this process holds (held or being revoked), by `memory`.
    public static let leasesHeld = "daxpin_leases_held"
    /// Gauge: pinned regions (each with one MR), by `device`, `memory` and `strategy`.
    public static let regions = "daxpin_regions"
    /// Gauge: bytes registered by those regions, by `device`, `memory` and `strategy`. An
    /// On-Demand Paging region pins nothing long term; a staged one pins its bounce buffer.
    public static let pinnedBytes = "daxpin_pinned_bytes"
    /// Counter: regions pinned, by `device`, `memory` and `strategy`.
    public static let pins = "daxpin_pins_total"
    /// Counter: pins refused, by `device`, `memory` and `reason` (``refusalReasonValues``).
    public static let pinRefusals = "daxpin_pin_refusals_total"
    /// Counter: lease breaks that revoked a lease, by `memory`.
    public static let leaseBreaks = "daxpin_lease_breaks_total"
    /// Counter: revocations, by `memory` and `reason` (``revocationReasonValues``).
    public static let revocations = "daxpin_revocations_total"
    /// Counter: quiesce handlers that overran their budget, by `memory`.
    public static let quiesceOverruns = "daxpin_quiesce_overruns_total"
    /// Counter: queue pairs (and other attached work) stopped by a revocation, by `memory`.
    public static let forcedStops = "daxpin_forced_stops_total"
    /// Counter: bytes of staged regions that lease breaks wrote back to the file, by `memory`
    /// (``LeaseOptions/writeBackStagedOnBreak``).
    public static let stagedBytesWrittenBack = "daxpin_staged_bytes_written_back_total"
    /// Counter: bytes of staged regions that lease breaks left out of the file (peers' writes
    /// lost: write errors, the deadline, a file that already shrank, write-back off), by
    /// `memory`. Alert on any increase.
    public static let stagedBytesDropped = "daxpin_staged_bytes_dropped_total"
    /// Timer: a revocation from its first step (the break noticed, or the release) to the
    /// descriptor closed, by `memory` and `reason`.
    public static let revocationDuration = "daxpin_revocation_duration"
    /// Timer: a quiesce handler from its call to its return (or to its budget's end), by `memory`.
    public static let quiesceDuration = "daxpin_quiesce_duration"

    /// The values of the `memory` label.
    public static let memoryKindValues = ["device-dax", "fs-dax", "shared-memory", "page-cache", "anonymous"]
    /// The values of the `reason` label of ``revocations``: `lost` is a break that the kernel
    /// ended first (lease-break-time ran out).
    public static let revocationReasonValues = ["break", "release", "dropped", "lost"]
    /// The values of the `reason` label of ``pinRefusals``.
    public static let refusalReasonValues = ["registration-refused", "invalid-range", "revoked", "system-call",
                                             "feature-unavailable", "other"]
}

extension MemoryKind {
    /// The `memory` label: the kind without its file system or device name.
    var metricLabel: String {
        switch self {
        case .deviceDAX: "device-dax"
        case .fsDAX: "fs-dax"
        case .sharedMemory: "shared-memory"
        case .pageCache: "page-cache"
        case .anonymous: "anonymous"
        }
    }
}

extension RevocationReason {
    /// The `reason` label of a revocation, `lost` when the kernel had dropped the lease first.
    func metricLabel(lost: Bool) -> String {
        switch self {
        case .leaseBreak: lost ? "lost" : "break"
        case .released: "release"
        case .dropped: "dropped"
        }
    }
}

extension DaxPinError {
    /// The `reason` label of a refused pin.
    var refusalLabel: String {
        switch self {
        case .registrationRefused: "registration-refused"
        case .invalidRange: "invalid-range"
        case .revoked: "revoked"
        case .systemCall: "system-call"
        case .featureUnavailable: "feature-unavailable"
        default: "other"
        }
    }
}
