import Logging

/// How a lease reacts when the kernel breaks it, and how its regions are pinned.
public struct LeaseOptions: Sendable {
    /// Called on a thread of its own when the kernel breaks the lease, before anything is torn
    /// down: stop RDMA on the regions (tell peers, drain in-flight work) by `request.deadline`.
    /// Revocation goes ahead at the deadline whether or not the handler returned. The lease
    /// lets go of the handler when it is revoked, so a handler may capture what holds the lease.
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
    /// Whether a lease break writes staged regions back to the file before it deregisters them.
    /// On by default.
    ///
    /// A staged region's peers write into a bounce buffer, so without a write-back what they
    /// wrote since the last ``PinnedRegion/writeBack(offset:length:)`` would go with the
    /// buffer. DaxPin cannot tell which bytes a NIC wrote, so the break writes back each staged
    /// region whole: after the queue pairs stopped (no RDMA lands any more) and no byte access
    /// runs, with `pwrite` through the lease's own descriptor (opening the file again would
    /// break the lease anew) and one `fdatasync`, bounded by the file's size and by the
    /// revocation's deadline (seven eighths of `lease-break-time` after the break was noticed).
    /// The kernel holds the breaker until the lease is released, so an opener reads what was
    /// written back, and a truncate removes what lies past its new size only afterwards.
    ///
    /// Whatever is not written back is counted, never dropped without a word: a
    /// ``RevocationTrace/Step/stagedBytesDropped(region:bytes:cause:)`` step per region and
    /// cause, the total in ``RevocationTrace/stagedBytesDropped`` (also in the
    /// ``LeaseEvent/revoked(_:)`` event's trace), and a warning in the log. Off, nothing is
    /// written back and every staged byte is counted as dropped
    /// (``RevocationTrace/DropCause/writeBackOff``): for an application that writes back in
    /// its quiesce handler, or that treats staged bytes as scratch. Only breaks write back:
    /// ``LayoutLease/release()`` and ``LayoutLease/unpin(_:)`` leave that to the application.
    public var writeBackStagedOnBreak = true

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
