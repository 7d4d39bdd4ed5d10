import Glibc

/// `CLOCK_MONOTONIC_COARSE`: the time of the last timer tick (a few milliseconds of
/// resolution), read from the vDSO without a system call and without touching the clock
/// hardware. For heuristics on hot paths (was a queue busy lately? is a progress line due?):
/// where the clocksource has no vDSO support (HPET, as under emulation), every
/// `ContinuousClock.now` is a system call plus a device read.
package enum CoarseClock {
    /// Nanoseconds since an arbitrary start, advancing once per timer tick.
    package static var nanoseconds: Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// How far the clock moves at a tick (`clock_getres`): two readings closer than this may
    /// show the same time, and two a moment apart may differ by a whole tick.
    package static let resolutionNanoseconds: Int64 = {
        var resolution = timespec()
        clock_getres(CLOCK_MONOTONIC_COARSE, &resolution)
        return max(1, Int64(resolution.tv_sec) * 1_000_000_000 + Int64(resolution.tv_nsec))
    }()
}
