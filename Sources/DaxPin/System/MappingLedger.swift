import Synchronization

#if DAXPIN_TESTING
/// Test-only accounting at the syscall seam: the address ranges DaxPin's own `mmap` calls map
/// and its `munmap` calls remove, kept like the kernel keeps them (a `MAP_FIXED` mapping replaces
/// what it overlaps). Tests compare ``mappedBytes`` before and after an operation to prove that
/// no path leaks a mapping or a reservation: anonymous mappings cannot be told apart from thread
/// stacks in /proc/self/maps. Off until a test calls ``start()``; one atomic load per call then.
package enum MappingLedger {
    private static let on = Atomic<Bool>(false)
    /// Disjoint `[start, end)` ranges, sorted by start.
    private static let ranges = AnnotatedMutex<[(start: UInt, end: UInt)]>([])

    /// Starts keeping the ledger (from now on; earlier mappings are not in it).
    package static func start() { on.store(true, ordering: .releasing) }

    /// Runs `body` with the ledger off (as it was before, after): for a test that counts the
    /// allocations of a path, which the ledger's own bookkeeping would add to. Whatever `body`
    /// maps it must also unmap, so that the ledger stays true.
    package static func withoutAccounting<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        let was = on.exchange(false, ordering: .acquiringAndReleasing)
        defer { on.store(was, ordering: .releasing) }
        return try body()
    }

    /// Bytes DaxPin has mapped and not unmapped since ``start()``.
    package static var mappedBytes: Int {
        ranges.withLock { $0.reduce(0) { $0 + Int($1.end - $1.start) } }
    }

    static func mapped(_ address: UnsafeMutableRawPointer, length: Int) {
        guard on.load(ordering: .acquiring), length > 0 else { return }
        let start = UInt(bitPattern: address)
        ranges.withLock { list in
            remove(start, start + UInt(length), from: &list)
            let index = list.firstIndex { $0.start > start } ?? list.count
            list.insert((start, start + UInt(length)), at: index)
        }
    }

    static func unmapped(_ address: UnsafeMutableRawPointer?, length: Int) {
        guard on.load(ordering: .acquiring), let address, length > 0 else { return }
        let start = UInt(bitPattern: address)
        ranges.withLock { remove(start, start + UInt(length), from: &$0) }
    }

    /// Cuts `[start, end)` out of the ranges, splitting any that straddle it.
    private static func remove(_ start: UInt, _ end: UInt, from list: inout [(start: UInt, end: UInt)]) {
        var kept: [(start: UInt, end: UInt)] = []
        kept.reserveCapacity(list.count + 1)
        for range in list {
            if range.end <= start || range.start >= end {
                kept.append(range)
                continue
            }
            if range.start < start { kept.append((range.start, start)) }
            if range.end > end { kept.append((end, range.end)) }
        }
        list = kept
    }
}
#else
/// Release builds: no accounting.
enum MappingLedger {
    @inline(__always) static func mapped(_ address: UnsafeMutableRawPointer, length: Int) {}
    @inline(__always) static func unmapped(_ address: UnsafeMutableRawPointer?, length: Int) {}
}
#endif
