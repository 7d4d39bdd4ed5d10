import Logging

/// How a lease reacts when the kernel breaks it, and how its regions are pinned.
public struct LeaseOptions: Sendable {
    /// Called on a thread of its own when the kernel breaks the lease, before anything is torn
    /// down: stop RDMA on the regions (tell peers, drain in-flight work) by `request.deadline`.
    /// Revocation goes ahead at the deadline whether or not the handler returned.
    public var quiesce: (@Sendable (QuiesceRequest) -> Void)?
    /// The quiesce handler's budget. Default: a quarter of `/proc/sys/fs/lease-break-time`;
    /// never more than three quarters of it, so revocation ends before the kernel gives up.
    public var quiesceBudget: Duration?
    /// Where teardown steps are logged (label `DaxPin.lease`).
    public var logger: Logger
    /// Whether a region registered with On-Demand Paging is prefetched when pinned
    /// (`ibv_advise_mr` PREFETCH[_WRITE] with FLUSH: the pin returns once the range is mapped
    /// for the device), so the NIC's first touch of each page does not fault. On by default;
    /// off suits sparse access, where faulting in only what peers touch is cheaper. Where the
    /// device or rdma-core lacks prefetch (rxe before rdma-core 59) the pin logs it and pages
    /// fault in on first access either way.
    public var prefetchOnDemandPaging = true

    /// Options with an optional quiesce budget, a logger and the quiesce handler.
    public init(quiesceBudget: Duration? = nil, logger: Logger = Logger(label: "DaxPin.lease"),
                quiesce: (@Sendable (QuiesceRequest) -> Void)? = nil) {
        self.quiesce = quiesce
        self.quiesceBudget = quiesceBudget
        self.logger = logger
    }

    /// The budget in force, clamped below the kernel's lease-break time.
    public var effectiveQuiesceBudget: Duration {
        let breakTime = LeaseBreakTime.current
        let ceiling = breakTime * 3 / 4
        return min(quiesceBudget ?? breakTime / 4, ceiling)
    }
}
