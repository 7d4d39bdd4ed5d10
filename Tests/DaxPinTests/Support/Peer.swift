@testable import DaxPin
import Dispatch
import Foundation
import Synchronization

/// A requester queue pair connected (over rxe's loopback) to a responder on the same
/// device, with a registered 4 KiB source buffer: the "remote client" of the testbed tests.
final class Peer: @unchecked Sendable {
    // Used from one writer thread at a time; the lease inside is only read after setup.
    static let blockSize = 4096
    let responder: QueuePair
    let requester: QueuePair
    private var source: LayoutLease
    private let sourceID: PinnedRegion.ID
    private let local: QueuePair.LocalBuffer

    init(device: RDMADevice) throws {
        responder = try QueuePair(device: device)
        requester = try QueuePair(device: device)
        try responder.connect(to: requester.endpoint)
        try requester.connect(to: responder.endpoint)
        source = LayoutLease.anonymous()
        sourceID = try source.pin(length: Self.blockSize, on: device)
        local = try source.withRegion(sourceID) { region in
            QueuePair.LocalBuffer(address: region.memoryRegion.remote.address, length: Self.blockSize,
                                  localKey: region.memoryRegion.localKey)
        }
    }

    /// Writes one block filled with `pattern` at block `index` of `remote`.
    func write(block index: Int, pattern: UInt8, to remote: MemoryRegion.RemoteAccess) throws -> QueuePair.Completion {
        try source.withRegion(sourceID) { region in
            try region.withMutableBytes { bytes in
                for offset in 0..<Self.blockSize { bytes.storeBytes(of: pattern, toByteOffset: offset, as: UInt8.self) }
            }
        }
        return try requester.write(local, to: remote, offset: index * Self.blockSize, timeout: .seconds(10))
    }

    /// Reads block `index` of `remote` with an RDMA READ; its bytes, or nil when the READ failed.
    func read(block index: Int, from remote: MemoryRegion.RemoteAccess) throws -> [UInt8]? {
        guard try requester.read(into: local, from: remote, offset: index * Self.blockSize, timeout: .seconds(10)) == .success else {
            return nil
        }
        return try source.withRegion(sourceID) { region in
            try region.withBytes { bytes in (0..<Self.blockSize).map { bytes.unsafeLoad(fromByteOffset: $0, as: UInt8.self) } }
        }
    }
}

/// Sustained RDMA WRITE traffic into a region on a background thread, recording what was
/// acknowledged and when, until told to stop or until the first failed completion.
final class Writer: Sendable {
    struct Ack { let block: Int; let pattern: UInt8; let at: ContinuousClock.Instant }
    struct State {
        var acks: [Ack] = []
        var failure: QueuePair.Completion?
        var failedAt: ContinuousClock.Instant?
        var finished = false
    }
    /// AnnotatedMutex, not Mutex: ThreadSanitizer cannot see Mutex's futex, so acks handed
    /// from the writer's thread to the test under a Mutex look like a race to it.
    let state = AnnotatedMutex(State())
    private let stopRequested = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    /// Blocks `0..<blocks` are written round-robin, pattern `1 + seq % 150` (never the 0xA5 fill).
    func start(_ peer: Peer, remote: MemoryRegion.RemoteAccess, blocks: Int, limit: Duration = .seconds(60)) {
        let deadline = ContinuousClock.now + limit
        DispatchQueue.global().async { [self] in
            var sequence = 0
            while !stopRequested.load(ordering: .acquiring), ContinuousClock.now < deadline {
                let block = sequence % blocks
                let pattern = UInt8(1 + sequence % 150)
                let completion = (try? peer.write(block: block, pattern: pattern, to: remote)) ?? .failed(status: 9999)
                let now = ContinuousClock.now
                if completion == .success {
                    state.withLock { $0.acks.append(Ack(block: block, pattern: pattern, at: now)) }
                } else {
                    state.withLock { $0.failure = completion; $0.failedAt = now }
                    break
                }
                sequence += 1
            }
            state.withLock { $0.finished = true }
            done.signal()
        }
    }

    /// Asks the writer to stop after its current write and waits (bounded) until it has.
    @discardableResult
    func stopAndDrain(timeout: Duration = .seconds(10)) -> Bool {
        stopRequested.store(true, ordering: .releasing)
        return waitFinished(timeout: timeout)
    }

    func waitFinished(timeout: Duration = .seconds(30)) -> Bool {
        if state.withLock({ $0.finished }) { return true }
        let (seconds, _) = timeout.components
        let ok = done.wait(timeout: .now() + .seconds(Int(seconds))) == .success
        if ok { done.signal() }  // let later waiters through too
        return ok
    }

    var ackCount: Int { state.withLock { $0.acks.count } }

    /// The last acknowledged pattern of each block.
    var lastAcked: [Int: UInt8] {
        state.withLock { s in
            var last: [Int: UInt8] = [:]
            for ack in s.acks { last[ack.block] = ack.pattern }
            return last
        }
    }
}
