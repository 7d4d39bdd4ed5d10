@testable import DaxPin
import Testing
import Glibc

extension DaxPin {
    /// The small pieces the lease watcher's path to the first deregistration is built from.
    @Suite struct RevocationBookkeeping {
        @Test("a stamp becomes the instant at which it was read")
        func stampToInstant() {
            let before = ContinuousClock.now
            let stamp = Stamp.now()
            usleep(20_000)
            let anchor = Stamp.Anchor.now()
            let instant = anchor.instant(of: stamp)
            #expect(instant >= before)
            let elapsed = instant.duration(to: anchor.instant)
            #expect(elapsed >= .milliseconds(20) && elapsed < .seconds(5), "\(elapsed)")
            #expect(anchor.instant(of: anchor.stamp) == anchor.instant)
            #expect(stamp < anchor.stamp)
        }

        @Test("leases by descriptor: one slot per number, grown and shrunk with the highest")
        func leasesByDescriptor() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let lease = try LayoutLease(path: file.path)
            let core = lease.core
            var table = LeasesByDescriptor()
            #expect(table.count == 0 && table[0] == nil && table[-1] == nil && table[1000] == nil)
            table.insert(core, at: 7)
            table.insert(core, at: 3)
            table.insert(core, at: 3)  // again: still one lease there
            #expect(table.count == 2 && table.slotCount == 8)
            #expect(table[7] === core && table[3] === core && table[5] == nil)
            #expect(table.all.count == 2)
            table.remove(at: 7)
            table.remove(at: 7)  // twice: nothing more to remove
            table.remove(at: -1)
            #expect(table.count == 1 && table[7] == nil && table[3] === core && table.slotCount == 4)
            table.remove(at: 3)
            #expect(table.count == 0 && table.all.isEmpty && table.slotCount == 0)
            lease.release()
        }
    }
}
