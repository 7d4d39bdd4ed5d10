import Metrics

/// Emits the counters and timers of ``DaxPinMetricNames`` for pins and revocations. Every
/// function first looks whether a backend is bootstrapped and returns at once when none is, so
/// an application without metrics pays one factory read per event. Revocations are recorded
/// after `F_UNLCK` (from the trace, off the watcher thread), never while the breaker waits.
enum LeaseMetrics {
    /// The bootstrapped backend, or nil when metrics go nowhere.
    static var backend: MetricsFactory? {
        let factory = MetricsSystem.factory
        return factory is NOOPMetricsHandler ? nil : factory
    }

    /// A region was pinned.
    static func pinned(device: String, memory: MemoryKind, strategy: Strategy) {
        guard let factory = backend else { return }
        Counter(label: DaxPinMetricNames.pins,
                dimensions: [("device", device), ("memory", memory.metricLabel), ("strategy", strategy.description)],
                factory: factory).increment()
    }

    /// A pin was refused.
    static func refused(device: String, memory: MemoryKind, error: DaxPinError) {
        guard let factory = backend else { return }
        Counter(label: DaxPinMetricNames.pinRefusals,
                dimensions: [("device", device), ("memory", memory.metricLabel), ("reason", error.refusalLabel)],
                factory: factory).increment()
    }

    /// A teardown finished; `teardown` holds its steps (the trace without earlier `unpin` steps).
    @inline(never)  // a symbol of its own: Benchmarks/suites/profile.sh counts its instructions
    static func revoked(memory: MemoryKind, reason: RevocationReason, teardown: ArraySlice<RevocationTrace.Entry>) {
        guard let factory = backend else { return }
        let kind = memory.metricLabel
        var lost = false, stopped = 0, overran = false, writtenBack = 0, dropped = 0
        var quiesceStart: ContinuousClock.Instant?, quiesceEnd: ContinuousClock.Instant?
        for entry in teardown {
            switch entry.step {
            case .leaseLost: lost = true
            case .queuePairsStopped(let count): stopped += count
            case .wroteBack(_, let bytes): writtenBack += bytes
            case .stagedBytesDropped(_, let bytes, _): dropped += bytes
            case .quiesceStarted: quiesceStart = entry.at
            case .quiesceFinished: quiesceEnd = entry.at
            case .quiesceOverran: quiesceEnd = entry.at; overran = true
            default: break
            }
        }
        let memoryLabel = [("memory", kind)]
        if reason == .leaseBreak {
            Counter(label: DaxPinMetricNames.leaseBreaks, dimensions: memoryLabel, factory: factory).increment()
        }
        let reasonLabels = [("memory", kind), ("reason", reason.metricLabel(lost: lost))]
        Counter(label: DaxPinMetricNames.revocations, dimensions: reasonLabels, factory: factory).increment()
        if let first = teardown.first?.at, let last = teardown.last?.at {
            Metrics.Timer(label: DaxPinMetricNames.revocationDuration, dimensions: reasonLabels, factory: factory)
                .record(duration: first.duration(to: last))
        }
        if let quiesceStart, let quiesceEnd {
            Metrics.Timer(label: DaxPinMetricNames.quiesceDuration, dimensions: memoryLabel, factory: factory)
                .record(duration: quiesceStart.duration(to: quiesceEnd))
        }
        if overran {
            Counter(label: DaxPinMetricNames.quiesceOverruns, dimensions: memoryLabel, factory: factory).increment()
        }
        if stopped > 0 {
            Counter(label: DaxPinMetricNames.forcedStops, dimensions: memoryLabel, factory: factory).increment(by: stopped)
        }
        if writtenBack > 0 {
            Counter(label: DaxPinMetricNames.stagedBytesWrittenBack, dimensions: memoryLabel, factory: factory).increment(by: writtenBack)
        }
        if dropped > 0 {
            Counter(label: DaxPinMetricNames.stagedBytesDropped, dimensions: memoryLabel, factory: factory).increment(by: dropped)
        }
    }
}
