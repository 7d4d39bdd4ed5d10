import DaxPin

// What the paired durable-write clients (read after write, FLUSH) share: the pinned source block
// and the wait for the completion that makes a block durable.

/// Pins `2 * blockSize` bytes of anonymous memory under `lease` on `device` and fills the first
/// block with the pattern the C peers write: the source every write is posted from. Returns the
/// base address and local key of the pinned region.
func pinSourceBlock(_ lease: inout LayoutLease, blockSize: Int, on device: RDMADevice) -> (address: UInt64, localKey: UInt32) {
    do {
        let id = try lease.pin(length: 2 * blockSize, on: device)
        return try lease.withRegion(id) { region in
            // The source filled once, as the C peers fill their own.
            try region.withMutableBytes { span in
                span.withUnsafeMutableBytes { bytes in
                    for index in 0..<blockSize { bytes[index] = UInt8(truncatingIfNeeded: index &* 31 &+ 7) }
                }
            }
            return (region.memoryRegion.remote.address, region.memoryRegion.localKey)
        }
    } catch { fail("pin the source block: \(error)") }
}

/// Reads completions of `connection` into `completions` until the one with `id` arrives; fails
/// the run on a failed completion or on 10 s without any (`block` names the write).
func awaitCompletion(_ id: UInt64, of block: Int, on connection: RDMAConnection,
                     into completions: inout [RDMAConnection.WorkCompletion]) throws(DaxPinError) {
    while true {
        completions.removeAll(keepingCapacity: true)
        guard try connection.completions(into: &completions, timeout: .seconds(10)) > 0 else {
            fail("no completion within 10 s (block \(block))")
        }
        for completion in completions {
            guard completion.status == .success else { fail("block \(block): \(completion.status)") }
            if completion.id == id { return }
        }
    }
}
