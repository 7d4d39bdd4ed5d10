import DaxPin
import Glibc
import Synchronization

/// The soak's RDMA peer, on a real device only (the stand-in moves no bytes): per holder
/// thread a 4 KiB source buffer (anonymous memory, pinned), and per cycle a pair of queue
/// pairs connected over the device's loopback. The responder stands for the holder's side of
/// a connection, the requester for a remote client that RDMA WRITEs into the pinned regions.
final class SoakPeer: @unchecked Sendable {
    // The source buffer is filled and posted by one thread at a time: the cycle's writer, or
    // the holder thread once that writer has finished.
    /// Bytes per WRITE: each slot of a region is written at most once per cycle, so an
    /// acknowledged slot has exactly one pattern it may hold.
    static let slotLength = 256
    /// The first slot: past page 0 (a hole punch clears it) and page 2 (the CPU stamp's).
    static let firstSlotOffset = 3 * 4096
    static let slotsPerRegion = (SoakHolder.regionLength - firstSlotOffset) / slotLength
    /// Where the WRITE after revocation aims: page 2, past the stamp, never a writer's slot.
    static let probeOffset = SoakHolder.stampOffset + slotLength
    /// One WRITE's completion wait.
    static let writeTimeout = Duration.seconds(10)

    let device: RDMADevice
    /// Deregistered and unmapped when the peer goes (the lease's deinit), with its thread.
    private var source: LayoutLease
    private let sourceID: PinnedRegion.ID
    private let local: QueuePair.LocalBuffer

    init(device: RDMADevice) throws(DaxPinError) {
        self.device = device
        source = LayoutLease.anonymous()
        sourceID = try source.pin(length: 4096, on: device)
        local = try source.withRegion(sourceID) { region in
            QueuePair.LocalBuffer(address: region.memoryRegion.remote.address, length: Self.slotLength,
                                  localKey: region.memoryRegion.localKey)
        }
    }

    /// A connected requester/responder pair on the device.
    func connectedPair() throws(DaxPinError) -> (requester: QueuePair, responder: QueuePair) {
        let responder = try QueuePair(device: device)
        let requester = try QueuePair(device: device)
        try responder.connect(to: requester.endpoint)
        try requester.connect(to: responder.endpoint)
        return (requester, responder)
    }

    /// The 256 bytes a slot holds after the WRITE tagged `tag`: 32 words, each a different
    /// function of the tag, so a slot written at the wrong offset or in part does not pass.
    static func pattern(_ tag: UInt64) -> [UInt64] {
        (0..<slotLength / 8).map { tag ^ (UInt64($0) &* 0x9E37_79B9_7F4A_7C15) }
    }

    /// RDMA WRITE of the pattern of `tag` into `remote` at `offset`, on `requester`.
    func write(tag: UInt64, to remote: MemoryRegion.RemoteAccess, offset: Int, on requester: QueuePair) -> QueuePair.Completion {
        let words = Self.pattern(tag)
        do {
            try source.withRegion(sourceID) { region in
                try region.withMutableBytes { bytes in
                    for (index, word) in words.enumerated() { bytes.storeBytes(of: word, toByteOffset: index * 8, as: UInt64.self) }
                }
            }
            return try requester.write(local, to: remote, offset: offset, timeout: Self.writeTimeout)
        } catch {
            return .failed(status: UInt32.max)  // no completion in time, or the post failed: not acknowledged
        }
    }
}

/// One cycle's stream of peer WRITEs, on a thread of its own: slot after slot, round-robin over
/// the regions, until every slot is written, it is told to stop, or a WRITE fails (the break
/// moved the queue pairs to the error state). It records what was acknowledged.
final class SoakWriter: @unchecked Sendable {
    // `thread` is set once by start() and read by join(), both on the holder thread.
    struct Target: Sendable {
        /// The region's index in the file (its offset / regionLength).
        let region: Int
        let remote: MemoryRegion.RemoteAccess
    }
    struct Ack: Sendable { let region: Int; let slot: Int; let tag: UInt64 }
    struct State: Sendable {
        var acks: [Ack] = []
        var failure: QueuePair.Completion?
        var failedAt: ContinuousClock.Instant?
        var finished = false
    }

    let state = Mutex(State())
    private let stopRequested = Atomic<Bool>(false)
    private var thread: pthread_t?

    /// Starts writing; `tag(region, slot)` names each WRITE's pattern.
    func start(peer: SoakPeer, requester: QueuePair, targets: [Target],
               tag: @escaping @Sendable (_ region: Int, _ slot: Int) -> UInt64) -> Bool {
        guard let handle = WorkerStart.start({ [self] in
            defer { state.withLock { $0.finished = true } }
            for sequence in 0..<(targets.count * SoakPeer.slotsPerRegion) {
                guard !stopRequested.load(ordering: .acquiring) else { return }
                let target = targets[sequence % targets.count]
                let slot = sequence / targets.count
                let value = tag(target.region, slot)
                let completion = peer.write(tag: value, to: target.remote,
                                            offset: SoakPeer.firstSlotOffset + slot * SoakPeer.slotLength, on: requester)
                let now = ContinuousClock.now
                guard completion == .success else {
                    state.withLock { $0.failure = completion; $0.failedAt = now }
                    return
                }
                state.withLock { $0.acks.append(Ack(region: target.region, slot: slot, tag: value)) }
            }
        }) else {
            return false
        }
        thread = handle
        return true
    }

    var snapshot: State { state.withLock { $0 } }

    /// Waits (polling every millisecond, up to `timeout`) until `condition` holds; false on timeout.
    func wait(timeout: Duration, until condition: (State) -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition(snapshot) {
            guard ContinuousClock.now < deadline else { return false }
            usleep(1000)
        }
        return true
    }

    /// Asks the writer to stop after its current WRITE.
    func requestStop() { stopRequested.store(true, ordering: .releasing) }

    /// Joins the thread once it has finished; false (and the thread left running, detached)
    /// when it does not finish within `timeout`.
    func join(timeout: Duration) -> Bool {
        guard let handle = thread else { return true }
        thread = nil
        guard wait(timeout: timeout, until: \.finished) else {
            pthread_detach(handle)
            return false
        }
        pthread_join(handle, nil)
        return true
    }
}
