import Glibc

/// A `CLOCK_BOOTTIME` reading (the clock `ContinuousClock` reads), in nanoseconds: the times a
/// revocation keeps on its way to `F_UNLCK`, turned into `ContinuousClock` instants for the
/// trace once the lease is released.
///
/// `ContinuousClock.Instant` is a resilient type of the Concurrency library: each value of it
/// in a local, an optional or a struct goes through runtime metadata and value witnesses, and
/// each `ContinuousClock.now` is a call into that library: on the way from the break signal
/// to the first `ibv_dereg_mr` they were most of the watcher's work (Benchmarks/suites/profile.sh
/// counts it). A stamp is one `clock_gettime` and an integer, like the C holder's clock.
struct Stamp: Comparable, Sendable {
    let nanoseconds: Int64

    static func now() -> Stamp {
        let time = Syscalls.now(CLOCK_BOOTTIME)
        return Stamp(nanoseconds: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec))
    }

    /// The stamp `nanoseconds` later.
    func adding(nanoseconds more: Int64) -> Stamp {
        Stamp(nanoseconds: nanoseconds.addingReportingOverflow(more).overflow ? .max : nanoseconds + more)
    }

    static func < (a: Stamp, b: Stamp) -> Bool { a.nanoseconds < b.nanoseconds }

    /// The instant at which this stamp was read. Never inlined, like every use of the clock's
    /// types in the revocation: their metadata would be looked up on entry to the caller.
    var instant: ContinuousClock.Instant {
        @inline(never) get { Anchor.now().instant(of: self) }
    }

    /// Readings of both clocks taken together, to turn stamps into instants.
    struct Anchor {
        let stamp: Stamp
        let instant: ContinuousClock.Instant

        static func now() -> Anchor {
            let stamp = Stamp.now()
            return Anchor(stamp: stamp, instant: .now)
        }

        /// The instant at which `stamp` was read.
        func instant(of stamp: Stamp) -> ContinuousClock.Instant {
            instant - .nanoseconds(self.stamp.nanoseconds - stamp.nanoseconds)
        }
    }
}
