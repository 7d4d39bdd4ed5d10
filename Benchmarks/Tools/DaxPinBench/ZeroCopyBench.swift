// The zero-copy rows (Benchmarks/targets.json declares them, report zero-copy): ext4-dax pinned with
// On-Demand Paging against staged through a bounce buffer, first touch with and without the
// prefetch, and the ODP check's cost. For a kernel whose rxe passes DaxPin's check (the
// newest kernel with the fixed rxe): nothing here passes over the check, and the ODP side is
// whatever `.auto` picks, which must be On-Demand Paging. Both sides of a row run in one
// process, alternating, so that the emulator's slow and fast spells fall on both alike.
@_spi(Benchmarks) import DaxPin
import Glibc

/// A pinned export on its own lease, and what a peer needs to WRITE into it.
private final class Side {
    let name: String
    var lease: LayoutLease?
    let region: PinnedRegion.ID
    let remote: MemoryRegion.RemoteAccess
    let path: String
    var cursor = 0
    /// Where the last batch began and ended, and the byte it wrote.
    var lastBatch: (first: Int, last: Int, byte: UInt8)?

    init(name: String, path: String, bytes: Int, device: RDMADevice, policy: StrategyPolicy, expect: Strategy) {
        self.name = name
        self.path = path
        createFile(path, size: bytes)
        do {
            var lease = try LayoutLease(path: path)
            let region = try lease.pin(offset: 0, length: bytes, on: device, policy: policy)
            let (strategy, remote) = try lease.withRegion(region) { ($0.strategy, $0.memoryRegion.remote) }
            guard strategy == expect else { fail("\(name): \(path) pinned \(strategy), expected \(expect)") }
            self.region = region
            self.remote = remote
            self.lease = consume lease
        } catch {
            fail("\(name): pin \(path): \(error)")
        }
    }

    /// What makes `length` bytes at `offset` durable in the file: for a staged export the
    /// copy from the bounce buffer as well.
    func makeDurable(offset: Int, length: Int) {
        do {
            try lease?.withRegion(region) { region in
                if region.strategy == .staged { try region.writeBack(offset: offset, length: length) }
                else { try region.persist(offset: offset, length: length) }
            }
        } catch {
            fail("\(name): make \(length) bytes at \(offset) durable: \(error)")
        }
    }
}

/// The source of the peer's WRITEs: an anonymous pinned block, refilled with `byte`.
private final class Source {
    let lease: LayoutLease
    let id: PinnedRegion.ID
    let buffer: QueuePair.LocalBuffer

    init(block: Int, device: RDMADevice) {
        do {
            var lease = LayoutLease.anonymous()
            let id = try lease.pin(length: block, on: device)
            buffer = try lease.withRegion(id) { region in
                QueuePair.LocalBuffer(address: region.memoryRegion.remote.address, length: block, localKey: region.memoryRegion.localKey)
            }
            self.id = id
            self.lease = consume lease
        } catch {
            fail("source: \(error)")
        }
    }

    func fill(_ byte: UInt8) {
        do {
            _ = try lease.withRegion(id) { region in
                try region.withMutableBytes { span in span.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: byte) } }
            }
        } catch {
            fail("source: \(error)")
        }
    }
}

private func openDevice(_ name: String) -> RDMADevice {
    do { return try RDMADevice.open(named: name) } catch { fail("\(error)") }
}

/// Reads `length` bytes of the file at `offset` (not through the pin; the file's lease must be
/// released first, as an open breaks it) and fails unless every one is `byte`: the WRITEs and
/// the durability step put the bytes in the file, not only in a bounce buffer.
private func expectFile(_ path: String, offset: Int, length: Int, byte: UInt8, what: String) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { fail("open \(path): errno \(errno)") }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: length)
    let read = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, off_t(offset)) }
    guard read == length, bytes.allSatisfy({ $0 == byte }) else {
        fail("\(what): \(path) at \(offset) does not hold the bytes written (read \(read))")
    }
}

/// "zero-copy-write" and "zero-copy-durable": an ext4-dax export of `bytes` pinned with `.auto`
/// (On-Demand Paging once the check has verified it) and one pinned `.only(.staged)`, default
/// options both. Per round, one batch into each, the order flipping every round, after one
/// unrecorded round. `persistEach`: each block made durable right after its WRITE (a batch is
/// `blocks` blocks, the cursor wrapping over the export); otherwise a batch is one pass over
/// the export and one durability step for the whole of it. Prints
/// "<row> <odp|staged> <round> <seconds> <bytes>".
func zeroCopyAgainstStaged(row: String, fsdaxDir: String, bytes: Int, block: Int, blocks: Int, persistEach: Bool,
                           rounds: Int, deviceName: String) {
    let device = openDevice(deviceName)
    let sides = [
        Side(name: "odp", path: "\(fsdaxDir)/daxpin-zero-copy-odp-\(getpid())", bytes: bytes, device: device,
             policy: .auto, expect: .onDemandPaging),
        Side(name: "staged", path: "\(fsdaxDir)/daxpin-zero-copy-staged-\(getpid())", bytes: bytes, device: device,
             policy: .only(.staged), expect: .staged),
    ]
    defer { for side in sides { _ = side.lease.take()?.release(); unlink(side.path) } }
    let source = Source(block: block, device: device)
    let loopback: (requester: QueuePair, responder: QueuePair)
    do { loopback = try loopbackPair(on: device) } catch { fail("peer: \(error)") }
    let perBatch = persistEach ? blocks : bytes / block
    for round in 0...rounds {
        for step in 0..<sides.count {
            let side = sides[(round + step) % sides.count]
            // A value per round and side, never 0 (a fresh file's bytes), so the check below sees this batch's bytes.
            let byte = UInt8(truncatingIfNeeded: 2 * round + step) | 1
            source.fill(byte)
            if !persistEach { side.cursor = 0 }
            let first = side.cursor
            let start = monotonicNanoseconds()
            for _ in 0..<perBatch {
                let offset = side.cursor
                let completion: QueuePair.Completion
                do { completion = try loopback.requester.write(source.buffer, to: side.remote, offset: offset) } catch { fail("write: \(error)") }
                guard completion == .success else { fail("\(side.name) write at \(offset): \(completion)") }
                if persistEach { side.makeDurable(offset: offset, length: block) }
                side.cursor = (offset + block) % bytes
            }
            if !persistEach { side.makeDurable(offset: 0, length: bytes) }
            let elapsed = monotonicNanoseconds() - start
            side.lastBatch = (first, (side.cursor + bytes - block) % bytes, byte)
            if round > 0 { print("\(row) \(side.name) \(round) \(Double(elapsed) / 1e9) \(perBatch * block)") }
        }
    }
    // Read back only once the leases are gone: opening a leased file breaks its lease.
    for side in sides {
        _ = side.lease.take()?.release()
        guard let (first, last, byte) = side.lastBatch else { continue }
        expectFile(side.path, offset: first, length: block, byte: byte, what: side.name)
        expectFile(side.path, offset: last, length: block, byte: byte, what: side.name)
    }
}

/// "zero-copy-first-touch": per round, a fresh ext4-dax file of `bytes` pinned with `.auto`
/// (On-Demand Paging, verified) with default options (prefetched at pin) and another with
/// `prefetchOnDemandPaging` off, the order flipping every round, after one unrecorded round; a
/// peer writes every 4 KiB block once (the first pass), then once more (the second). Prints
/// "touch <prefetch|noprefetch> <round> <pin|first|second> <seconds>" and
/// "touch <prefetch|noprefetch> <round> mapped <pages present after the pin> <pages>".
func zeroCopyFirstTouch(fsdaxDir: String, bytes: Int, rounds: Int, deviceName: String) {
    let device = openDevice(deviceName)
    let block = 4096
    let source = Source(block: block, device: device)
    source.fill(0x5a)
    let loopback: (requester: QueuePair, responder: QueuePair)
    do { loopback = try loopbackPair(on: device) } catch { fail("peer: \(error)") }
    let path = "\(fsdaxDir)/daxpin-zero-copy-touch-\(getpid())"
    defer { unlink(path) }
    let variants = ["prefetch", "noprefetch"]
    for round in 0...rounds {
        for step in 0..<variants.count {
            let variant = variants[(round + step) % variants.count]
            unlink(path)
            createFile(path, size: bytes)
            var options = LeaseOptions()
            options.prefetchOnDemandPaging = variant == "prefetch"
            var held: LayoutLease
            do { held = try LayoutLease(path: path, options: options) } catch { fail("lease on \(path): \(error)") }
            BackgroundWork.settle()
            let remote: MemoryRegion.RemoteAccess
            let pinStart = monotonicNanoseconds()
            do {
                let id = try held.pin(offset: 0, length: bytes, on: device, policy: .auto)
                let strategy: Strategy
                (strategy, remote) = try held.withRegion(id) { ($0.strategy, $0.memoryRegion.remote) }
                guard strategy == .onDemandPaging else { fail("\(path) pinned \(strategy), expected On-Demand Paging") }
            } catch {
                fail("pin: \(error)")
            }
            let pinned = monotonicNanoseconds() - pinStart
            let mapped = presentPages(at: remote.address, pages: bytes / block)
            var times = [("pin", pinned)]
            for pass in ["first", "second"] {
                let start = monotonicNanoseconds()
                for offset in stride(from: 0, to: bytes, by: block) {
                    let completion: QueuePair.Completion
                    do { completion = try loopback.requester.write(source.buffer, to: remote, offset: offset) } catch { fail("write: \(error)") }
                    guard completion == .success else { fail("write at \(offset): \(completion)") }
                }
                times.append((pass, monotonicNanoseconds() - start))
            }
            _ = held.release()
            expectFile(path, offset: bytes - block, length: block, byte: 0x5a, what: variant)
            guard round > 0 else { continue }
            print("touch \(variant) \(round) mapped \(mapped) \(bytes / block)")
            for (what, elapsed) in times { print("touch \(variant) \(round) \(what) \(Double(elapsed) / 1e9)") }
        }
    }
}

/// "zero-copy-pin": seconds of one `lease.pin` of `bytes` (map, populate or copy in, register)
/// with default options on the verified device, per variant and round, the order rotating every
/// round, after one unrecorded round: ext4-dax `.auto` (On-Demand Paging, prefetched), ext4-dax
/// `.only(.staged)`, tmpfs `.only(.onDemandPaging)` (prefetched) and tmpfs `.only(.pinned)`.
/// Each pin's strategy is checked. Prints "pin <fsdax|tmpfs> <odp|staged|pinned> <round> <seconds>".
func zeroCopyPin(fsdaxDir: String, tmpfsDir: String, bytes: Int, rounds: Int, deviceName: String) {
    let device = openDevice(deviceName)
    let fsdaxPath = "\(fsdaxDir)/daxpin-zero-copy-pin-\(getpid())", tmpfsPath = "\(tmpfsDir)/daxpin-zero-copy-pin-\(getpid())"
    createFile(fsdaxPath, size: bytes)
    createFile(tmpfsPath, size: bytes)
    defer { unlink(fsdaxPath); unlink(tmpfsPath) }
    let variants: [(medium: String, side: String, path: String, policy: StrategyPolicy, expect: Strategy)] = [
        ("fsdax", "odp", fsdaxPath, .auto, .onDemandPaging),
        ("fsdax", "staged", fsdaxPath, .only(.staged), .staged),
        ("tmpfs", "odp", tmpfsPath, .only(.onDemandPaging), .onDemandPaging),
        ("tmpfs", "pinned", tmpfsPath, .only(.pinned), .pinned),
    ]
    for round in 0...rounds {
        for step in 0..<variants.count {
            let variant = variants[(round + step) % variants.count]
            var held: LayoutLease
            do { held = try LayoutLease(path: variant.path) } catch { fail("lease on \(variant.path): \(error)") }
            BackgroundWork.settle()
            let start = monotonicNanoseconds()
            let id: PinnedRegion.ID
            do { id = try held.pin(offset: 0, length: bytes, on: device, policy: variant.policy) } catch {
                fail("\(variant.medium) \(variant.side): \(error)")
            }
            let elapsed = monotonicNanoseconds() - start
            let strategy: Strategy
            do { strategy = try held.withRegion(id) { $0.strategy } } catch { fail("region: \(error)") }
            guard strategy == variant.expect else { fail("\(variant.path) pinned \(strategy), expected \(variant.expect)") }
            _ = held.release()
            if round > 0 { print("pin \(variant.medium) \(variant.side) \(round) \(Double(elapsed) / 1e9)") }
        }
    }
}

/// "zero-copy-check": the cost of DaxPin's On-Demand Paging check for read-write ext4-dax pins
/// in `fsdaxDir`, on a fresh device object in a fresh process (the verdict cache is per
/// process), then of a second call (the cached verdict). Prints
/// "CHECK <seconds> <verdict> CACHED <seconds>".
func zeroCopyCheckCost(deviceName: String, fsdaxDir: String) {
    let device = openDevice(deviceName)
    let memory = MemoryKind.fsDAX(fileSystem: "ext4")
    let start = monotonicNanoseconds()
    let verdict = device.onDemandPaging(for: .readWrite, memory: memory, directory: fsdaxDir)
    let checked = monotonicNanoseconds()
    _ = device.onDemandPaging(for: .readWrite, memory: memory, directory: fsdaxDir)
    let cached = monotonicNanoseconds() - checked
    let word = switch verdict { case .verified: "verified"; case .notOffered: "not-offered"; case .failed: "failed" }
    print("CHECK \(Double(checked - start) / 1e9) \(word) CACHED \(Double(cached) / 1e9)")
    if case .failed(let reason) = verdict { fail("the check failed: \(reason)") }
}
