// daxpin-client: connects to daxpin-server with rdma_cm, writes and reads the exported range
// directly with RDMA WRITE and READ (configurable block size and queue depth), asks for
// durability, verifies with checksums, and stops cleanly when the server revokes the export.
import ArgumentParser
import DaxPin
import Foundation
import Logging
import StorageProtocol
import Synchronization

/// Set by SIGINT/SIGTERM: finish in-flight work, say goodbye, print the totals.
let interrupted = Atomic<Bool>(false)

/// Exit statuses (documented in the StorageServerProtocol article).
enum Status {
    static let revoked: Int32 = 3        // the server stopped us: its export is being revoked
    static let failed: Int32 = 4         // an RDMA operation failed (forced revocation, disconnect)
    static let mismatch: Int32 = 5       // verification found wrong bytes
    static let rejected: Int32 = 6       // the server refused the connection
}

@main
struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daxpin-client",
        abstract: "Write, persist, read and verify a daxpin-server export with one-sided RDMA.",
        discussion: """
        Examples:
          daxpin-client --address 192.0.2.1 --verify           write the export once, persist, read back, compare
          daxpin-client --address 192.0.2.1 --block-size 65536 --queue-depth 8 --loop
                                                               write until the server stops the client
          daxpin-client --address 192.0.2.1 --port 7471 --offset 1048576 --blocks 16 --persist-every 4
        """)

    @Option(help: "Server address.")
    var address: String = ProcessInfo.processInfo.environment["DAXPIN_RDMA_ADDR"] ?? "192.0.2.1"
    @Option(help: "Server port.")
    var port: UInt16 = 7471
    @Option(help: "Local address to connect from: picks the RDMA device that owns it (default: the route's).")
    var source: String?
    @Option(help: "Bytes per RDMA WRITE/READ.")
    var blockSize: Int = 4096
    @Option(help: "RDMA operations in flight.")
    var queueDepth: Int = 8
    @Option(help: "Start of this client's range in the export.")
    var offset: UInt64 = 0
    @Option(help: "Blocks to write per pass (default: to the end of the export).")
    var blocks: Int?
    @Option(help: "Ask for durability every this many blocks.")
    var persistEvery: Int = 16
    @Option(help: ArgumentHelp(
        "How a batch is made durable: flush (a native RDMA FLUSH after the WRITEs; the server must offer it), send (ask the server to flush), read (an RDMA READ after the WRITEs; the server must advertise direct-write-to-pmem), auto (flush if both ends and the device offer it, else read if the server advertises direct-write-to-pmem, else send).",
        valueName: "auto|flush|send|read"))
    var persistMethod: PersistMethod = .auto
    @Option(help: "Passes over the range.")
    var passes: Int = 1
    @Flag(help: "Keep making passes until stopped (server stop, SIGINT).")
    var loop = false
    @Flag(help: "Read the range back and compare, then compare the server's checksum.")
    var verify = false
    @Flag(help: "Fill each queue slot's buffer once instead of before every WRITE (throughput runs: measures the RDMA path, not pattern generation; not with --verify).")
    var staticData = false
    @Flag(help: "First send malformed requests and expect each to be rejected.")
    var malformed = false
    @Flag(help: .hidden)  // tests: a misbehaving client that ignores stop messages
    var ignoreStop = false
    @Option(help: "Pattern seed (default: the client id the server assigns).")
    var seed: UInt32?
    @Option(help: "Log level.")
    var logLevel: String = "info"

    func validate() throws {
        guard blockSize > 0, blockSize % 64 == 0 else { throw ValidationError("--block-size must be a positive multiple of 64") }
        guard (1...128).contains(queueDepth) else { throw ValidationError("--queue-depth must be 1...128") }
        guard persistEvery > 0, passes > 0 else { throw ValidationError("--persist-every and --passes must be positive") }
        guard !(staticData && verify) else { throw ValidationError("--static-data writes the same bytes to every block: it cannot be combined with --verify") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        try? Syscalls.handleSignals([SIGINT, SIGTERM]) { _ in interrupted.store(true, ordering: .relaxed) }
        let logger = Logger(label: "daxpin-client")
        // A queue pair that posts FLUSH must be asked for before connecting, before the server's
        // hello says whether it offers FLUSH: auto asks when this build has it, and connects
        // again without it when the device refuses such a queue pair.
        if persistMethod == .flush, let refusal = RDMABuildFeatures.current.flushRefusal {
            fail(Status.failed, "--persist-method flush: \(refusal)")
        }
        var postsFlush = (persistMethod == .flush || persistMethod == .auto) && RDMABuildFeatures.current.flush
        var connection: RDMAConnection?
        while connection == nil {
            do {
                connection = try RDMAConnection.connect(to: address, port: port, source: source, privateData: ClientHello().encoded,
                                                        options: .init(depth: queueDepth, postsFlush: postsFlush))
            } catch let DaxPinError.connectionRejected(_, reason) {
                fail(Status.rejected, "the server refused the connection: \(String(decoding: reason, as: UTF8.self))")
            } catch DaxPinError.featureUnavailable(let feature, let reason) where postsFlush && persistMethod == .auto {
                logger.notice("no \(feature) from this side; connecting without it", metadata: ["reason": "\(reason)"])
                postsFlush = false
            } catch {
                fail(Status.failed, "cannot connect to \(address):\(port): \(persistMethod == .flush ? "--persist-method flush: " : "")\(error)")
            }
        }
        guard let connection else { fail(Status.failed, "not connected") }
        guard let hello = ServerHello(decoding: connection.peerPrivateData) else {
            fail(Status.failed, "the server's hello is malformed")
        }
        let remote = MemoryRegion.RemoteAccess(address: hello.address, length: Int(hello.length), rkey: hello.rkey)
        let pmem = hello.flags.contains(.directWriteToPMem)
        let flush = hello.flags.contains(.remoteFlush) && postsFlush
        let durability: Durability
        switch persistMethod {
        case .send: durability = .send
        case .auto: durability = flush ? .flush : pmem ? .read : .send
        case .flush:
            // The server offers FLUSH only for a persistent-memory export registered for it, on
            // a device and kernel that accepted that registration and its queue pairs' access.
            guard hello.flags.contains(.remoteFlush) else {
                connection.disconnect()
                fail(Status.failed, "--persist-method flush needs a server that offers RDMA FLUSH for its export; this one does not (an older server, an export that is not persistent memory, or a device or kernel without FLUSH; its log says which): use send or auto")
            }
            durability = .flush
        case .read:
            // A READ only proves the WRITEs were placed; without the server's promise that placed
            // means persistent, calling that durable would be a lie.
            guard pmem else {
                connection.disconnect()
                fail(Status.failed, "--persist-method read needs a server started with --direct-write-to-pmem; this one does not advertise it (use send or auto)")
            }
            durability = .read
        }
        print("connected client=\(hello.clientID) export=\(hello.length) rkey=0x\(String(hello.rkey, radix: 16)) device=\(connection.device.name) persist-method=\(durability)")
        // Local buffers: one block per queue slot, registered on the connection's device, and
        // one more block whose start receives the persist READs (never a WRITE's source).
        var local = LayoutLease.anonymous()
        let localID = try local.pin(length: (queueDepth + 1) * blockSize, on: connection.device)
        let (localAddress, localKey) = try local.withRegion(localID) { ($0.memoryRegion.remote.address, $0.memoryRegion.localKey) }
        var session = Session(connection: connection, remote: remote, options: ClientSettings(self), durability: durability,
                              seed: seed ?? hello.clientID, logger: logger, local: local, localID: localID, localAddress: localAddress, localKey: localKey)
        Foundation.exit(session.run())
    }
}

func fail(_ status: Int32, _ message: String) -> Never {
    printError("daxpin-client: \(message)\n")
    Foundation.exit(status)
}

/// Writes to standard error unbuffered (after flushing standard output, so lines keep their order).
func printError(_ text: String) {
    fflush(nil)
    FileHandle.standardError.write(Data(text.utf8))
}

/// `--persist-method`.
enum PersistMethod: String, ExpressibleByArgument, CaseIterable {
    case auto, flush, send, read
}

/// How a batch of WRITEs is made durable (the resolved `--persist-method`).
enum Durability: String, CustomStringConvertible {
    /// SEND a persist request right after the batch's WRITEs; the server flushes the range
    /// and answers (SNIA's general-purpose server persistency method; always correct).
    case send
    /// Post an 8-byte RDMA READ of the batch's last block right after its WRITEs: the
    /// responder executes it after them, so its completion means they were placed, which on
    /// a server that declared direct-write-to-pmem means persistent (the appliance method,
    /// librpma's rpma_flush).
    case read
    /// Post a native RDMA FLUSH (persistent placement) of the batch's range right after its
    /// WRITEs: the responder executes it after them and completes it once they are in the
    /// persistence domain (IBTA 1.5's FLUSH; the server offers it for persistent memory only).
    case flush
    var description: String { rawValue }
}

/// Why a pass ended early.
enum Interruption: Error {
    case stop(reason: String, deadlineMilliseconds: UInt32)
    case rdmaFailed(String)
}

/// The command's option values, read once: reading an ArgumentParser property wrapper goes
/// through its generic `wrappedValue` on every access, which the per-block loop must not pay.
struct ClientSettings {
    let blockSize: Int, queueDepth: Int, persistEvery: Int, passes: Int, blocks: Int?
    let offset: UInt64
    let loop: Bool, verify: Bool, malformed: Bool, ignoreStop: Bool, staticData: Bool

    init(_ command: ClientCommand) {
        blockSize = command.blockSize; queueDepth = command.queueDepth; persistEvery = command.persistEvery
        passes = command.passes; blocks = command.blocks; offset = command.offset
        loop = command.loop; verify = command.verify; malformed = command.malformed
        ignoreStop = command.ignoreStop; staticData = command.staticData
    }
}

struct Session: ~Copyable {
    let connection: RDMAConnection
    let remote: MemoryRegion.RemoteAccess
    let options: ClientSettings
    let durability: Durability
    let seed: UInt32
    let logger: Logger
    var local: LayoutLease
    let localID: PinnedRegion.ID
    let localAddress: UInt64
    let localKey: UInt32
    let blocks: Int
    var nextRequest: UInt32 = 0
    /// Answers that arrived while a transfer was draining (a pipelined persist's), by request id.
    var early: [UInt32: Response] = [:]
    /// Storage ``transfer(blocks:pass:write:persist:)`` reuses from call to call (at queue depth 1
    /// with a persist per block it runs once per block: it must not allocate each time).
    var slotScratch: [Int] = []
    var inFlightScratch = InFlightTable()
    var completionScratch: [RDMAConnection.WorkCompletion] = []
    var durableAcks = 0
    var bytesWritten = 0
    var bytesRead = 0
    var writeTime: Duration = .zero
    var readTime: Duration = .zero
    /// CoarseClock nanoseconds of the last progress line (a per-batch check must not cost a system call).
    var lastProgress = CoarseClock.nanoseconds

    init(connection: RDMAConnection, remote: MemoryRegion.RemoteAccess, options: ClientSettings, durability: Durability,
         seed: UInt32, logger: Logger, local: consuming LayoutLease, localID: PinnedRegion.ID,
         localAddress: UInt64, localKey: UInt32) {
        self.connection = connection
        self.remote = remote
        self.options = options
        self.durability = durability
        self.seed = seed
        self.logger = logger
        let available = (UInt64(remote.length) - min(options.offset, UInt64(remote.length))) / UInt64(options.blockSize)
        blocks = options.blocks ?? Int(available)
        self.local = local
        self.localID = localID
        self.localAddress = localAddress
        self.localKey = localKey
    }

    func passSeed(_ pass: Int) -> UInt32 { seed &+ UInt32(truncatingIfNeeded: pass) &* 7919 }
    func blockOffset(_ block: Int) -> UInt64 { options.offset + UInt64(block * options.blockSize) }
    func slotBuffer(_ slot: Int) -> QueuePair.LocalBuffer {
        QueuePair.LocalBuffer(address: localAddress + UInt64(slot * options.blockSize), length: options.blockSize, localKey: localKey)
    }

    mutating func run() -> Int32 {
        do {
            if options.malformed { try sendMalformed() }
            if options.staticData {
                for slot in 0..<options.queueDepth { try fill(slot: slot, block: slot, pass: 0) }
            }
            var pass = 0
            while (options.loop || pass < options.passes), !interrupted.load(ordering: .relaxed), blocks > 0 {
                try writePass(pass)
                if options.verify { try verifyPass(pass) }
                pass += 1
            }
            _ = try? connection.send(Request.goodbye(id: 0).encoded)
            printThroughput()
            return 0
        } catch Interruption.stop(let reason, let deadline) {
            // Everything posted has completed (drained); tell the server and leave.
            _ = try? connection.send(Request.stopped(id: 0).encoded)
            printThroughput()
            printError("daxpin-client: the server is revoking its export: \(reason). Stopped all RDMA within the \(deadline) ms deadline; \(durableAcks) durable acknowledgements received, none lost.\n")
            return Status.revoked
        } catch Interruption.rdmaFailed(let what) {
            printThroughput()
            printError("daxpin-client: RDMA to the export failed: \(what) (the server revoked the export or went away)\n")
            return Status.failed
        } catch let error as VerifyError {
            printError("daxpin-client: verification failed: \(error.message)\n")
            return Status.mismatch
        } catch {
            printError("daxpin-client: \(error)\n")
            return Status.failed
        }
    }

    // MARK: Control messages

    /// Handles a stop if one arrived; returns other responses.
    mutating func checkMessages(timeout: Duration) throws -> Response? {
        let message: [UInt8]?
        do { message = try connection.receive(timeout: timeout) } catch {
            throw Interruption.rdmaFailed("the connection closed (\(error))")
        }
        guard let message else { return nil }
        guard let response = StorageProtocol.decodeResponse(message) else {
            logger.warning("malformed message from the server", metadata: ["bytes": "\(message.count)"])
            return nil
        }
        if case .stop(let deadline, let reason) = response {
            if options.ignoreStop {
                logger.warning("ignoring the server's stop message (--ignore-stop)")
                return nil
            }
            throw Interruption.stop(reason: reason, deadlineMilliseconds: deadline)
        }
        return response
    }

    /// Sends `request` and waits (bounded) for the answer with its id.
    mutating func call(_ make: (UInt32) -> Request, timeout: Duration = .seconds(10)) throws -> Response {
        let id = try request(make)
        return try answer(to: id, timeout: timeout)
    }

    /// Sends `request` without waiting for its answer; returns its id.
    mutating func request(_ make: (UInt32) -> Request) throws -> UInt32 {
        nextRequest += 1
        let id = nextRequest
        do { try connection.send(make(id).encoded) } catch { throw Interruption.rdmaFailed("SEND: \(error)") }
        return id
    }

    /// The id a response answers, if it answers a request.
    static func answerID(_ response: Response) -> UInt32? {
        switch response {
        case .persisted(let id, _, _), .checksum(let id, _, _, _), .error(let id, _, _): id
        case .stop: nil
        }
    }

    /// Waits (bounded) for the answer to request `id`; a stop notice throws as usual.
    mutating func answer(to id: UInt32, timeout: Duration = .seconds(10)) throws -> Response {
        if let response = early.removeValue(forKey: id) { return response }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let response = try checkMessages(timeout: .milliseconds(100)) else { continue }
            if Self.answerID(response) == id { return response }
        }
        throw Interruption.rdmaFailed("no answer to request \(id) within \(timeout)")
    }

    mutating func sendMalformed() throws {
        let length = UInt64(remote.length)
        let cases: [(String, [UInt8])] = [
            ("3-byte message", [1, 1, 0]),
            ("unknown opcode", [0x7f, StorageProtocol.version, 0, 0, 1, 0, 0, 0]),
            ("persist beyond the export", Request.persist(id: 2, offset: length, length: 4096).encoded),
            ("persist with an overflowing range", Request.persist(id: 3, offset: UInt64.max - 10, length: 4096).encoded),
        ]
        for (name, bytes) in cases {
            do { try connection.send(bytes) } catch { throw Interruption.rdmaFailed("SEND: \(error)") }
            let deadline = ContinuousClock.now + .seconds(10)
            var answered = false
            while !answered, ContinuousClock.now < deadline {
                if case .error(_, let code, let message) = try checkMessages(timeout: .milliseconds(100)) {
                    print("rejected \(name): code \(code): \(message)")
                    answered = true
                }
            }
            guard answered else { throw Interruption.rdmaFailed("the server did not reject the \(name)") }
        }
    }

    // MARK: Data

    func fill(slot: Int, block: Int, pass: Int) throws {
        let base = blockOffset(block), seed = passSeed(pass), size = options.blockSize
        try local.withRegion(localID) { region in
            try region.withMutableBytes { span in
                span.withUnsafeMutableBytes { bytes in
                    for index in 0..<size {
                        bytes[slot * size + index] = StorageProtocol.patternByte(seed: seed, offset: base + UInt64(index))
                    }
                }
            }
        }
    }

    /// Writes every block with up to `queueDepth` WRITEs in flight; persists every `persistEvery`
    /// blocks. The persist request (or READ) is posted right after the batch's last WRITE, not
    /// after their completions: the responder executes work of one RC queue pair in order, so it
    /// acts on the request only once the WRITEs are placed. An ack is claimed only when every
    /// WRITE of the batch completed successfully as well.
    ///
    /// Its time counts towards the write throughput, except waits for persist answers: the
    /// clock is read per pass and per answer wait, not per batch (at queue depth 1 with a
    /// persist per block, two clock reads per block cost more than the block's RDMA).
    mutating func writePass(_ pass: Int) throws {
        let passStarted = ContinuousClock.now
        var answerWaits: Duration = .zero
        defer { writeTime += passStarted.duration(to: .now) - answerWaits }
        var block = 0
        let oneBlockAtATime = options.queueDepth == 1 && options.persistEvery == 1 && (durability == .read || durability == .flush)
        while block < blocks {
            if oneBlockAtATime {
                try writeDurably(block: block, pass: pass)
                durableAcks += 1
                AckLine.durable(pass: pass, seed: passSeed(pass), offset: blockOffset(block), length: UInt64(options.blockSize))
                block += 1
                progress(pass)
                if interrupted.load(ordering: .relaxed) { return }
                continue
            }
            let batchEnd = min(blocks, block + options.persistEvery)
            let offset = blockOffset(block), length = UInt64((batchEnd - block) * options.blockSize)
            let pending = try transfer(blocks: block..<batchEnd, pass: pass, write: true, persist: (offset, length))
            let response: Response
            switch pending {
            case .read: response = .persisted(id: 0, offset: offset, length: length)  // the READ completed
            case .request(let id):
                let waitStarted = ContinuousClock.now
                response = try answer(to: id)
                answerWaits += waitStarted.duration(to: .now)
            case nil: throw Interruption.rdmaFailed("the persist of the batch at \(offset) was never posted")  // not reached: transfer throws first
            }
            switch response {
            case .persisted:
                durableAcks += 1
                AckLine.durable(pass: pass, seed: passSeed(pass), offset: offset, length: length)
            case .error(_, let code, let message):
                throw Interruption.rdmaFailed("persist refused (\(code)): \(message)")
            default: break
            }
            block = batchEnd
            progress(pass)
            if interrupted.load(ordering: .relaxed) { return }
        }
    }

    /// Queue depth 1 with a persist READ or FLUSH after every block (`--queue-depth 1
    /// --persist-every 1`, persist method read or flush): one post of the WRITE and its READ or
    /// FLUSH, one completion, and none of
    /// ``transfer(blocks:pass:write:persist:)``'s window bookkeeping, which cost more
    /// instructions than the block's own verbs calls. Returns once the block is durable.
    mutating func writeDurably(block: Int, pass: Int) throws {
        // Nothing is in flight here, so a stop needs no draining.
        if let stop = try checkMessagesOrStop() { throw stop }
        if !options.staticData { try fill(slot: 0, block: block, pass: pass) }
        let offset = Int(blockOffset(block))
        do {
            // The WRITE unsignaled: the READ's or FLUSH's successful completion means it completed
            // (RC completes in order), and a failed WRITE still reports.
            let id = InFlightTable.id(block: block, slot: 0)
            if durability == .flush {
                try connection.postWrite(slotBuffer(0), to: remote, offset: offset, id: id, signaled: false,
                                         thenFlush: offset, length: options.blockSize, flushID: Self.persistReadID)
            } else {
                try connection.postWrite(slotBuffer(0), to: remote, offset: offset, id: id,
                                         signaled: false, thenRead: persistReadTarget, at: offset, readID: Self.persistReadID)
            }
        } catch {
            throw Interruption.rdmaFailed("post: \(error)")
        }
        while true {
            completionScratch.removeAll(keepingCapacity: true)
            do { try connection.completions(into: &completionScratch, timeout: .seconds(10)) } catch { throw Interruption.rdmaFailed("\(error)") }
            if completionScratch.isEmpty { throw Interruption.rdmaFailed("no completion within 10 s (block \(block))") }
            for completion in completionScratch {
                let isRead = completion.id == Self.persistReadID
                guard completion.status == .success else {
                    throw Interruption.rdmaFailed(isRead ? "\(durability == .flush ? "FLUSH" : "persist READ") after block \(block): \(completion.status)"
                                                         : "WRITE of block \(block): \(completion.status)")
                }
                if isRead {
                    bytesWritten += options.blockSize
                    return
                }
            }
        }
    }

    mutating func verifyPass(_ pass: Int) throws {
        let started = ContinuousClock.now
        try transfer(blocks: 0..<blocks, pass: pass, write: false)
        readTime += started.duration(to: .now)
        let length = UInt64(blocks * options.blockSize)
        let seed = passSeed(pass), base = options.offset
        let expected = StorageProtocol.checksum((0..<length).lazy.map { StorageProtocol.patternByte(seed: seed, offset: base + $0) })
        switch try call({ .checksum(id: $0, offset: base, length: length) }) {
        case .checksum(_, _, _, let value):
            guard value == expected else {
                throw VerifyError(message: "server checksum 0x\(String(value, radix: 16)) != expected 0x\(String(expected, radix: 16))")
            }
            print("verified pass=\(pass) blocks=\(blocks) checksum=0x\(String(value, radix: 16))")
        case .error(_, let code, let message):
            throw Interruption.rdmaFailed("checksum refused (\(code)): \(message)")
        default: break
        }
    }

    /// How a batch's durability is being established once ``transfer(blocks:pass:write:persist:)`` returns.
    enum PendingPersist {
        /// The persist READ or FLUSH completed after every WRITE: durable.
        case read
        /// The persist request with this id was sent; its answer is still to come (or in `early`).
        case request(UInt32)
    }

    /// Where persist READs land: 8 bytes suffice, the READ's place in the queue, not its data,
    /// is the point; the extra block past the slots is never a WRITE's source.
    var persistReadTarget: QueuePair.LocalBuffer {
        QueuePair.LocalBuffer(address: localAddress + UInt64(options.queueDepth * options.blockSize), length: 8, localKey: localKey)
    }

    /// The work request id of a persist READ (block ids are far below).
    static let persistReadID: UInt64 = 1 << 62

    /// Moves `range` with a window of `queueDepth` operations; READs are compared with the pattern.
    /// With `persist` (a range, writes only), posts the batch's persist SEND or READ right after its
    /// last WRITE and returns how durability is pending; nil without `persist`.
    @discardableResult
    mutating func transfer(blocks range: Range<Int>, pass: Int, write: Bool,
                           persist: (offset: UInt64, length: UInt64)? = nil) throws -> PendingPersist? {
        // Taken out of self (so that they stay uniquely referenced) and put back at the end.
        var freeSlots = slotScratch, inFlight = inFlightScratch, done = completionScratch
        slotScratch = []; inFlightScratch = InFlightTable(); completionScratch = []
        freeSlots.removeAll(keepingCapacity: true)
        freeSlots.append(contentsOf: 0..<options.queueDepth)
        inFlight.reset(slots: options.queueDepth)
        defer { slotScratch = freeSlots; inFlightScratch = inFlight; completionScratch = done }
        var next = range.lowerBound
        var stop: Interruption?
        var pending: PendingPersist?
        var persistInFlight = false  // the persist READ or FLUSH
        // A failed persist SEND is reported only after draining: a failed WRITE (its cause) goes first.
        var sendFailure: Interruption?
        // The batch's last WRITE goes unsignaled when the persist SEND or READ follows it at once:
        // that request's successful completion means every earlier WRITE completed (RC completes in
        // order; a failed WRITE still reports), so each block costs one completion, as in librpma.
        var unsignaled: UInt64?
        func settleAll() {
            inFlight.drain { slot in bytesWritten += options.blockSize; freeSlots.append(slot) }
        }
        while next < range.upperBound || !inFlight.isEmpty || persistInFlight {
            if stop == nil, let message = try? checkMessagesOrStop() { stop = message }
            while stop == nil, next < range.upperBound, let slot = freeSlots.popLast() {
                if write, !options.staticData { try fill(slot: slot, block: next, pass: pass) }
                let id = InFlightTable.id(block: next, slot: slot)
                let signaled = !(write && persist != nil && next == range.upperBound - 1)
                do {
                    if write, !signaled, durability == .read {
                        // The batch's last WRITE and its persist READ, in one post.
                        try connection.postWrite(slotBuffer(slot), to: remote, offset: Int(blockOffset(next)), id: id,
                                                 signaled: false, thenRead: persistReadTarget, at: Int(blockOffset(next)),
                                                 readID: Self.persistReadID)
                        persistInFlight = true
                        pending = .read
                    } else if write, !signaled, durability == .flush, let persist {
                        // The batch's last WRITE and a FLUSH of the whole batch behind it, in one post.
                        try connection.postWrite(slotBuffer(slot), to: remote, offset: Int(blockOffset(next)), id: id, signaled: false,
                                                 thenFlush: Int(persist.offset), length: Int(persist.length), flushID: Self.persistReadID)
                        persistInFlight = true
                        pending = .read
                    } else if write {
                        try connection.postWrite(slotBuffer(slot), to: remote, offset: Int(blockOffset(next)), id: id,
                                                 signaled: signaled)
                    } else {
                        try connection.postRead(into: slotBuffer(slot), from: remote, offset: Int(blockOffset(next)), id: id)
                    }
                } catch {
                    throw Interruption.rdmaFailed("post: \(error)")
                }
                inFlight.insert(block: next, slot: slot)
                if !signaled { unsignaled = id }
                next += 1
            }
            // The persist READ went out with the batch's last WRITE; a persist SEND follows it here.
            if stop == nil, next == range.upperBound, pending == nil, sendFailure == nil, durability == .send, let persist {
                do {
                    pending = .request(try request { .persist(id: $0, offset: persist.offset, length: persist.length) })
                    settleAll()  // the SEND completed successfully: so did every WRITE before it
                } catch let failure as Interruption {
                    sendFailure = failure
                    // Its completion may never come (only a failure reports); the others still drain.
                    if let unsignaled { _ = inFlight.remove(id: unsignaled) }
                }
            }
            if stop != nil || sendFailure != nil, inFlight.isEmpty, !persistInFlight { break }
            if next == range.upperBound, inFlight.isEmpty, !persistInFlight { continue }  // settled by the persist SEND
            done.removeAll(keepingCapacity: true)
            do { try connection.completions(into: &done, timeout: .seconds(10)) } catch { throw Interruption.rdmaFailed("\(error)") }
            if done.isEmpty { throw Interruption.rdmaFailed("no completion within 10 s (\(inFlight.count) in flight)") }
            for completion in done {
                if completion.id == Self.persistReadID, persistInFlight {
                    guard completion.status == .success else {
                        throw Interruption.rdmaFailed("\(durability == .flush ? "FLUSH" : "persist READ") after block \(range.upperBound - 1): \(completion.status)")
                    }
                    persistInFlight = false
                    settleAll()  // the READ completed after them: every WRITE before it did too
                    continue
                }
                guard let entry = inFlight.remove(id: completion.id) else { continue }
                guard completion.status == .success else {
                    throw Interruption.rdmaFailed("\(write ? "WRITE" : "READ") of block \(entry.block): \(completion.status)")
                }
                if write { bytesWritten += options.blockSize } else {
                    bytesRead += options.blockSize
                    try compare(slot: entry.slot, block: entry.block, pass: pass)
                }
                freeSlots.append(entry.slot)
            }
        }
        if let stop { throw stop }
        if let sendFailure { throw sendFailure }
        return pending
    }

    /// A stop notice (as a value, to finish draining first), or nil. An answer that arrives
    /// meanwhile (to a pipelined persist request) is kept for ``answer(to:timeout:)``.
    mutating func checkMessagesOrStop() throws -> Interruption? {
        do {
            if let response = try checkMessages(timeout: .zero), let id = Self.answerID(response) { early[id] = response }
        } catch let stop as Interruption {
            if case .stop = stop { return stop }
            throw stop
        }
        return nil
    }

    func compare(slot: Int, block: Int, pass: Int) throws {
        let base = blockOffset(block), seed = passSeed(pass), size = options.blockSize
        let bad: Int? = try local.withRegion(localID) { region in
            try region.withBytes { span in
                span.withUnsafeBytes { bytes in
                    (0..<size).first { bytes[slot * size + $0] != StorageProtocol.patternByte(seed: seed, offset: base + UInt64($0)) }
                }
            }
        }
        if let bad { throw VerifyError(message: "byte \(base + UInt64(bad)) read back differs from what was written") }
    }

    mutating func progress(_ pass: Int) {
        let now = CoarseClock.nanoseconds
        guard now - lastProgress >= 1_000_000_000 else { return }
        lastProgress = now
        print("progress pass=\(pass) written=\(bytesWritten) durable-acks=\(durableAcks)")
        fflush(nil)
    }

    func printThroughput() {
        func rate(_ bytes: Int, _ time: Duration) -> String {
            let seconds = Double(time.components.seconds) + Double(time.components.attoseconds) / 1e18
            return seconds > 0 ? String(format: "%.2f MiB/s", Double(bytes) / 1_048_576 / seconds) : "n/a"
        }
        print("throughput: wrote \(bytesWritten) bytes (\(rate(bytesWritten, writeTime))), read \(bytesRead) bytes (\(rate(bytesRead, readTime))), block \(options.blockSize), depth \(options.queueDepth), \(durableAcks) durable acks")
        fflush(nil)
    }
}

struct VerifyError: Error { let message: String }

/// The WRITEs and READs of a transfer in flight, by queue slot. A work request id carries its
/// slot in the low 8 bits (queue depth is at most 128) and its block above them, so a
/// completion finds its entry without hashing, and the table never allocates after `reset`.
struct InFlightTable {
    /// The block in flight in each slot, or -1.
    private var blocks: [Int] = []
    private(set) var count = 0

    static func id(block: Int, slot: Int) -> UInt64 { UInt64(block) << 8 | UInt64(slot) }

    var isEmpty: Bool { count == 0 }

    mutating func reset(slots: Int) {
        blocks.removeAll(keepingCapacity: true)
        for _ in 0..<slots { blocks.append(-1) }
        count = 0
    }

    mutating func insert(block: Int, slot: Int) {
        precondition(blocks[slot] < 0, "slot \(slot) is already in flight")
        blocks[slot] = block
        count += 1
    }

    /// The slot and block of the work request `id`, removed; nil for an id not in flight.
    mutating func remove(id: UInt64) -> (slot: Int, block: Int)? {
        let slot = Int(id & 0xff), block = Int(truncatingIfNeeded: id >> 8)
        guard slot < blocks.count, blocks[slot] == block, block >= 0 else { return nil }
        blocks[slot] = -1
        count -= 1
        return (slot, block)
    }

    /// Empties the table, handing each slot that was in flight to `body`.
    mutating func drain(_ body: (Int) -> Void) {
        for slot in blocks.indices where blocks[slot] >= 0 {
            blocks[slot] = -1
            body(slot)
        }
        count = 0
    }
}

/// The per-acknowledgement line, "durable pass=P seed=S offset=O length=L", formatted in a
/// stack buffer and written with `puts` to standard output, the stdio stream `print` uses, so
/// lines keep their order. Per line, string interpolation plus `print` cost about 6,000
/// instructions, appending to a reused array about 1,000, nested functions that capture the
/// write position about 800 (every access to a captured variable is checked for exclusivity
/// at run time): more than the rest of a durable block at queue depth 1 (callgrind,
/// Benchmarks/suites/profile.sh). Hence plain pointer arithmetic.
enum AckLine {
    static func durable(pass: Int, seed: UInt32, offset: UInt64, length: UInt64) {
        // 4 labels (35 bytes) + 4 numbers of at most 20 digits + NUL.
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 128) { line in
            let start = line.baseAddress!
            var end = put("durable pass=", at: start)
            end = put(UInt64(pass), at: end)
            end = put(" seed=", at: end)
            end = put(UInt64(seed), at: end)
            end = put(" offset=", at: end)
            end = put(offset, at: end)
            end = put(" length=", at: end)
            end = put(length, at: end)
            end.pointee = 0
            _ = puts(start)  // puts adds the newline
        }
    }

    private static func put(_ text: StaticString, at position: UnsafeMutablePointer<CChar>) -> UnsafeMutablePointer<CChar> {
        let count = text.utf8CodeUnitCount
        UnsafeMutableRawPointer(position).copyMemory(from: text.utf8Start, byteCount: count)
        return position + count
    }

    /// Decimal digits, written from the last one.
    private static func put(_ value: UInt64, at position: UnsafeMutablePointer<CChar>) -> UnsafeMutablePointer<CChar> {
        var digits = 1, probe = value
        while probe >= 10 { probe /= 10; digits += 1 }
        var index = digits - 1, rest = value
        repeat {
            position[index] = CChar(truncatingIfNeeded: 48 &+ rest % 10)  // 48: "0"
            rest /= 10
            index -= 1
        } while rest > 0
        return position + digits
    }
}
