/// Records a teardown's steps as they happen, as plain clock readings (see ``Stamp``), and
/// writes them into the lease's ``RevocationTrace`` afterwards: the steps up to `F_UNLCK` run
/// while the breaker waits, so they do not touch the lease's lock or the trace's clock types.
struct TeardownRecorder {
    private var steps: [(step: RevocationTrace.Step, at: Stamp)] = []

    init(expectedRegions: Int = 0) {
        steps.reserveCapacity(6 + 2 * expectedRegions)
    }

    /// Notes that `step` happened now.
    mutating func record(_ step: RevocationTrace.Step) {
        steps.append((step, .now()))
    }

    /// Whether `step` was recorded (and not yet written).
    func contains(_ step: RevocationTrace.Step) -> Bool {
        steps.contains { $0.step == step }
    }

    /// The regions whose deregistration failed, with errno.
    var failedDeregistrations: [(region: Int, errno: Int32)] {
        steps.compactMap { if case .deregistrationFailed(let region, let code) = $0.step { (region, code) } else { nil } }
    }

    /// Appends the recorded steps to `trace`, in order, and forgets them.
    @inline(never)  // keeps the clock's resilient types out of the callers' frames
    mutating func write(into trace: inout RevocationTrace) {
        let anchor = Stamp.Anchor.now()
        trace.reserve(additional: steps.count)
        for (step, stamp) in steps { trace.record(step, at: anchor.instant(of: stamp)) }
        steps.removeAll(keepingCapacity: true)
    }
}
