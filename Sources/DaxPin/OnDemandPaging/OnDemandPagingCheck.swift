import Glibc

/// DaxPin's proof that a device moves data correctly through an ODP registration: RDMA WRITEs
/// and READs at the loopback's path MTU, several packets long, some starting off a page
/// boundary and some not page-sized, each compared byte for byte, with the bytes around the
/// target (which must not change) compared too.
package enum OnDemandPagingCheck {
    /// One transfer of the check.
    package struct Transfer: Sendable, Hashable, CustomStringConvertible {
        package enum Direction: Sendable, Hashable { case write, read }
        package let direction: Direction
        package let offset: Int
        package let length: Int

        package var description: String {
            "a \(length)-byte RDMA \(direction == .write ? "WRITE to" : "READ from") offset \(offset) of an ODP registration"
        }
    }

    /// The transfers, each in its own slot of the target so that a misplaced payload lands in
    /// bytes that must not change. `slot` is the distance between transfers.
    package static func transfers(pathMTU mtu: Int, pageSize page: Int) -> (transfers: [Transfer], length: Int) {
        let slot = 4 * max(mtu, page)
        let plan: [(Transfer.Direction, Int, Int)] = [
            (.write, 0, 3 * mtu),                    // page-aligned, several packets
            (.write, 100, 2 * mtu + 100),            // starts off a page boundary, not page-sized
            (.write, page - mtu / 2, 2 * page),      // crosses page boundaries mid-packet
            (.write, 8, mtu - 16),                   // one short packet inside a page
            (.read, 0, 3 * mtu),
            (.read, 50, 2 * page + 300),
        ]
        let transfers = plan.enumerated().map { index, entry in
            Transfer(direction: entry.0, offset: index * slot + entry.1, length: entry.2)
        }
        return (transfers, (plan.count + 1) * slot)
    }

    /// The byte the target holds wherever no transfer may write.
    static let fill: UInt8 = 0xA5

    /// Runs every transfer through `loopback` and judges the device.
    package static func run(_ loopback: some OnDemandPagingLoopback) -> OnDemandPagingVerdict {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let (transfers, length) = transfers(pathMTU: loopback.pathMTU, pageSize: page)
        guard loopback.target.count >= length, loopback.local.count >= length else {
            return .failed(reason: "the check's buffers are \(loopback.target.count) bytes, it needs \(length)")
        }
        for (index, transfer) in transfers.enumerated() {
            if let problem = check(transfer, seed: UInt8(truncatingIfNeeded: index &* 37 &+ 11), loopback) {
                return .failed(reason: "\(transfer) (path MTU \(loopback.pathMTU)) \(problem)")
            }
        }
        return .verified
    }

    /// Nil when `transfer` moved exactly its bytes, else what went wrong.
    private static func check(_ transfer: Transfer, seed: UInt8, _ loopback: some OnDemandPagingLoopback) -> String? {
        let range = transfer.offset..<(transfer.offset + transfer.length)
        let (source, destination) = transfer.direction == .write
            ? (loopback.local, loopback.target) : (loopback.target, loopback.local)
        // The destination holds the fill everywhere; the source holds a pattern that differs from it.
        for i in 0..<destination.count { destination[i] = fill }
        for i in range { source[i] = pattern(i, seed) }
        let completion = transfer.direction == .write
            ? loopback.write(offset: transfer.offset, length: transfer.length)
            : loopback.read(offset: transfer.offset, length: transfer.length)
        switch completion {
        case .failure(let error): return "could not be posted: \(error)"
        case .success(let status) where status != .success: return "completed with \(status)"
        case .success: break
        }
        var wrong = 0, changedOutside = 0
        for i in 0..<destination.count {
            if range.contains(i) {
                if destination[i] != source[i] { wrong += 1 }
            } else if destination[i] != fill {
                changedOutside += 1
            }
        }
        guard wrong > 0 || changedOutside > 0 else { return nil }
        var problem = "completed successfully, but \(wrong) of its \(transfer.length) bytes are wrong"
        if changedOutside > 0 { problem += " and \(changedOutside) bytes outside it changed" }
        return problem
    }

    /// A pattern byte that is never the fill, different per position and per transfer.
    private static func pattern(_ index: Int, _ seed: UInt8) -> UInt8 {
        let byte = UInt8(truncatingIfNeeded: index &* 7 &+ index >> 8) ^ seed
        return byte == fill ? byte ^ 0xFF : byte
    }
}
