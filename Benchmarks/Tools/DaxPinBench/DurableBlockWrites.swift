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

/// Batch times and per-block latencies (ns) of two block writers measured in alternating batches.
struct AlternatingBatches {
    var firstBatches: [Int64] = [], secondBatches: [Int64] = []
    var firstBlocks: [Int64] = [], secondBlocks: [Int64] = []
}

/// `warmUp` unrecorded blocks through each writer, then `batches` pairs of `batch` blocks, in an
/// order that flips every pair. A writer is called with its own running block number. Each
/// block is timed on CLOCK_MONOTONIC from the end of the one before (one clock read per block),
/// so a batch's time is its blocks' sum and the tails come from the same run as the throughput.
func alternateBatches(batches: Int, batch: Int, warmUp: Int,
                      first: (_ block: Int) -> Void, second: (_ block: Int) -> Void) -> AlternatingBatches {
    var firstBlock = 0, secondBlock = 0
    func timed(_ count: Int, _ write: (Int) -> Void, from block: inout Int, into latencies: inout [Int64]) -> Int64 {
        let start = monotonicNanoseconds()
        var last = start
        for _ in 0..<count {
            write(block)
            block += 1
            let now = monotonicNanoseconds()
            latencies.append(now - last)
            last = now
        }
        return last - start
    }
    var warmUpLatencies: [Int64] = []
    warmUpLatencies.reserveCapacity(warmUp)
    _ = timed(warmUp, first, from: &firstBlock, into: &warmUpLatencies)
    _ = timed(warmUp, second, from: &secondBlock, into: &warmUpLatencies)
    var result = AlternatingBatches()
    result.firstBlocks.reserveCapacity(batches * batch)
    result.secondBlocks.reserveCapacity(batches * batch)
    for pair in 0..<batches {
        if pair % 2 == 0 {
            result.firstBatches.append(timed(batch, first, from: &firstBlock, into: &result.firstBlocks))
            result.secondBatches.append(timed(batch, second, from: &secondBlock, into: &result.secondBlocks))
        } else {
            result.secondBatches.append(timed(batch, second, from: &secondBlock, into: &result.secondBlocks))
            result.firstBatches.append(timed(batch, first, from: &firstBlock, into: &result.firstBlocks))
        }
    }
    return result
}

/// Prints one "`labels.first` <bytes/s>" and one "`labels.second` <bytes/s>" line per pair (the
/// batch's throughput), then a "`label`_BLOCK <ns>" line per recorded block of each writer.
func printAlternatingBatches(_ result: AlternatingBatches, labels: (first: String, second: String), bytesPerBatch: Int) {
    let bytes = Double(bytesPerBatch)
    for (first, second) in zip(result.firstBatches, result.secondBatches) {
        print("\(labels.first) \(bytes * 1e9 / Double(first))")
        print("\(labels.second) \(bytes * 1e9 / Double(second))")
    }
    for latency in result.firstBlocks { print("\(labels.first)_BLOCK \(latency)") }
    for latency in result.secondBlocks { print("\(labels.second)_BLOCK \(latency)") }
}
