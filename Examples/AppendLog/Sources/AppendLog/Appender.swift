import DaxPin
import DaxPinServiceLifecycle
import Glibc
import ServiceLifecycle
import Synchronization

/// Appends fixed-size records to the leased file until graceful shutdown or until the lease is
/// gone: into the pinned region's memory, then `persist` (for a staged region, that writes the
/// bytes back to the file), or through the lease's own descriptor when nothing is pinned.
/// Prints `appended N` once record N is durable: an acknowledgement the tests check.
struct Appender: Service {
    static let recordSize = 16

    let leases: LeaseService
    let region: PinnedRegion.ID?
    let capacity: Int
    let interval: Duration
    let acknowledged: Acknowledged

    /// `record 0000042\n` (16 bytes) for record 42.
    static func record(_ number: Int) -> [UInt8] {
        let digits = String(number)
        return Array(("record " + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + "\n").utf8)
    }

    func run() async {
        var next = 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled, (next + 1) * Self.recordSize <= capacity {
            let bytes = Self.record(next), offset = next * Self.recordSize
            do {
                let written: Void? = try leases.withLease { (lease) throws(DaxPinError) in
                    if let region {
                        try lease.withRegion(region) { (pinned) throws(DaxPinError) in
                            try pinned.withMutableBytes { (span) throws(DaxPinError) in
                                for (i, byte) in bytes.enumerated() { span.storeBytes(of: byte, toByteOffset: offset + i, as: UInt8.self) }
                            }
                            try pinned.persist(offset: offset, length: bytes.count)
                        }
                    } else {
                        try lease.write(bytes.span.bytes, at: offset)
                    }
                }
                guard written != nil else { break }  // the lease was released
            } catch {
                print("append stopped: \(error)")
                break
            }
            acknowledged.count.store(next + 1, ordering: .relaxed)
            print("appended \(next)")
            fflush(nil)
            next += 1
            try? await Task.sleep(for: interval)
        }
    }
}

/// How many records are durable, read by main when the group ends.
final class Acknowledged: Sendable {
    let count = Atomic<Int>(0)
}
