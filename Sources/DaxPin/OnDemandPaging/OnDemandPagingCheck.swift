/// DaxPin's proof that a device moves data correctly through an ODP registration: RDMA WRITEs
/// and READs at the loopback's path MTU, several packets long, some starting off a page
/// boundary and some not page-sized, first into pages the device has never touched (so it
/// faults them in) and then, after the target's pages were invalidated, again (so it faults
/// them in anew). Each transfer's bytes and the bytes around them are compared.
package enum OnDemandPagingCheck {
    /// One transfer of the check.
    package struct Transfer: Sendable, Hashable, CustomStringConvertible {
        package enum Direction: Sendable, Hashable { case write, read }
        package let direction: Direction
        package let offset: Int
        package let length: Int
        /// The transfer's own part of the buffers: the bytes around it that must not change.
        package let slot: Range<Int>
        /// Whether the target's pages were invalidated after the device last touched them.
        package let refault: Bool

        /// The bytes the transfer moves.
        package var range: Range<Int> { offset..<(offset + length) }

        package var description: String {
            "a \(length)-byte RDMA \(direction == .write ? "WRITE to" : "READ from") offset \(offset) of an ODP registration"
                + (refault ? " whose pages were invalidated" : "")
        }
    }

    /// Why the check failed, and at which transfer.
    package struct Failure: Sendable, Hashable, CustomStringConvertible {
        /// The index in ``transfers(pathMTU:pageSize:)`` of the transfer that found the fault,
        /// or nil when only the final comparison of the whole target did.
        package let transfer: Int?
        package let description: String
    }

    /// The transfers, each in its own slot of the target so that a misplaced payload lands in
    /// bytes that must not change, and the buffers' length. `slot` is the distance between
    /// transfers; the last slot stays empty. The transfers marked `refault` run after the
    /// target was invalidated and repeat earlier ones into the same slots.
    package static func transfers(pathMTU mtu: Int, pageSize page: Int) -> (transfers: [Transfer], length: Int) {
        let slot = 4 * max(mtu, page)
        let firstFaults: [(Transfer.Direction, Int, Int)] = [
            (.write, 0, 3 * mtu),                    // page-aligned, several packets
            (.write, 100, 2 * mtu + 100),            // starts off a page boundary, not page-sized
            (.write, page - mtu / 2, 2 * page),      // crosses page boundaries mid-packet
            (.write, 8, mtu - 16),                   // one short packet inside a page
            (.read, 0, 3 * mtu),
            (.read, 50, 2 * page + 300),
        ]
        var transfers = firstFaults.enumerated().map { index, entry in
            Transfer(direction: entry.0, offset: index * slot + entry.1, length: entry.2,
                     slot: (index * slot)..<((index + 1) * slot), refault: false)
        }
        // One page-aligned, one page-crossing WRITE and one READ again: enough to reach the
        // re-fault path for both directions without doubling the bytes moved.
        transfers += [0, 2, 5].map { index in
            let first = transfers[index]
            return Transfer(direction: first.direction, offset: first.offset, length: first.length, slot: first.slot, refault: true)
        }
        return (transfers, (firstFaults.count + 1) * slot)
    }

    /// The byte the local buffer holds wherever a READ may not write. The target needs none: a
    /// fresh or invalidated file target reads zero, and the pattern has no zero bytes.
    static let fill: UInt8 = 0xA5

    /// Runs every transfer through `loopback` and judges the device.
    package static func run(_ loopback: some OnDemandPagingLoopback) -> OnDemandPagingVerdict {
        guard let failure = firstFailure(loopback) else { return .verified }
        return .failed(reason: failure.description)
    }

    /// Runs the transfers in order and returns the first fault found, or nil when every byte
    /// went where it was sent.
    package static func firstFailure(_ loopback: some OnDemandPagingLoopback) -> Failure? {
        let mtu = loopback.pathMTU
        let (transfers, length) = transfers(pathMTU: mtu, pageSize: SystemPage.size)
        guard loopback.target.count >= length, loopback.local.count >= length else {
            return Failure(transfer: nil, description: "the check's buffers are \(loopback.target.count) bytes, it needs \(length)")
        }
        // What the target must hold: the CPU never reads it before the device has written it.
        var expected = [UInt8](repeating: 0, count: length)
        var invalidated = false
        for (index, transfer) in transfers.enumerated() {
            if transfer.refault, !invalidated {
                if case .failure(let error) = loopback.invalidate() {
                    return Failure(transfer: index, description: "invalidating the target's pages before \(transfer) failed: \(error)")
                }
                if !loopback.invalidationKeepsContents { expected = [UInt8](repeating: 0, count: length) }
                invalidated = true
            }
            let seed = UInt8(truncatingIfNeeded: index &* 37 &+ 11)
            if let problem = check(transfer, seed: seed, expected: &expected, loopback) {
                return Failure(transfer: index, description: "\(transfer) (path MTU \(mtu)) \(problem)")
            }
        }
        // A payload misplaced beyond its own slot shows only here.
        let stray = (0..<length).reduce(0) { $0 + (loopback.target[$1] != expected[$1] ? 1 : 0) }
        guard stray == 0 else {
            return Failure(transfer: nil, description: "after the check's transfers (path MTU \(mtu)), \(stray) bytes of the ODP registration that no transfer was sent to had changed")
        }
        return nil
    }

    /// Nil when `transfer` moved exactly its bytes, else what went wrong.
    private static func check(_ transfer: Transfer, seed: UInt8, expected: inout [UInt8],
                              _ loopback: some OnDemandPagingLoopback) -> String? {
        let range = transfer.range
        let completion: Result<QueuePair.Completion, DaxPinError>
        switch transfer.direction {
        case .write:
            for i in range {
                loopback.local[i] = pattern(i, seed)
                expected[i] = pattern(i, seed)
            }
            completion = loopback.write(offset: transfer.offset, length: transfer.length)
        case .read:
            // The CPU's stores do not map the pages for the device: the READ still faults.
            for i in range {
                loopback.target[i] = pattern(i, seed)
                expected[i] = pattern(i, seed)
            }
            for i in transfer.slot { loopback.local[i] = fill }
            completion = loopback.read(offset: transfer.offset, length: transfer.length)
        }
        switch completion {
        case .failure(let error): return "could not be posted: \(error)"
        case .success(let status) where status != .success: return "completed with \(status)"
        case .success: break
        }
        var wrong = 0, changedOutside = 0
        for i in transfer.slot {
            let (actual, wanted) = transfer.direction == .write
                ? (loopback.target[i], expected[i])
                : (loopback.local[i], range.contains(i) ? expected[i] : fill)
            if actual != wanted {
                if range.contains(i) { wrong += 1 } else { changedOutside += 1 }
            }
        }
        guard wrong > 0 || changedOutside > 0 else { return nil }
        var problem = "completed successfully, but \(wrong) of its \(transfer.length) bytes are wrong"
        if changedOutside > 0 { problem += " and \(changedOutside) bytes outside it changed" }
        return problem
    }

    /// A pattern byte that is never zero nor the fill, different per position and per transfer.
    private static func pattern(_ index: Int, _ seed: UInt8) -> UInt8 {
        let byte = UInt8(truncatingIfNeeded: index &* 7 &+ index >> 8) ^ seed
        return byte == 0 || byte == fill ? byte ^ 0x3C : byte
    }
}
