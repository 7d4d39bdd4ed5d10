import Dispatch

extension Duration {
    /// Whole milliseconds, rounded toward zero and saturating: the unit of `poll(2)` timeouts.
    package var wholeMilliseconds: Int64 { scaled(unitsPerSecond: 1_000) }

    /// Whole nanoseconds, rounded toward zero and saturating.
    package var wholeNanoseconds: Int64 { scaled(unitsPerSecond: 1_000_000_000) }

    /// The Dispatch deadline this long from now (a negative duration is now), for
    /// `DispatchGroup.wait` and `DispatchSemaphore.wait`.
    package var dispatchDeadline: DispatchTime {
        .now() + .nanoseconds(Int(clamping: max(0, wholeNanoseconds)))
    }

    private func scaled(unitsPerSecond: Int64) -> Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: unitsPerSecond)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, carry) = whole.addingReportingOverflow(attoseconds / (1_000_000_000_000_000_000 / unitsPerSecond))
        return carry ? (seconds < 0 ? .min : .max) : sum
    }
}
