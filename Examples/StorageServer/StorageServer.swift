// daxpin-server: exports a pinned file range over RDMA (rdma_cm) to daxpin-client processes.
// Clients WRITE and READ the range directly; control messages (persist, checksum, stop) are
// SENDs. When the kernel breaks the file lease (truncate, open by another process), the
// server tells every client to stop, waits for them up to the deadline, and DaxPin revokes.
import ArgumentParser
import DaxPin
import Foundation
import Logging
import ServiceLifecycle
import StorageProtocol
import Synchronization

@main
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daxpin-server",
        abstract: "Export a pinned file range over RDMA; revoke in order when the file's lease breaks.",
        discussion: """
        Prints "ready port=N ..." once clients may connect. When another process truncates,
        punches or opens the file, the server tells its clients to stop, DaxPin revokes in
        order (queue pairs, MRs, mappings, then the lease) and the server exits 0.

        Examples:
          daxpin-server --file /dev/shm/export --size 67108864 --address 192.0.2.1
          daxpin-server --file /mnt/pmem/export --length 1048576 --port 0
          daxpin-server --file /dev/dax0.0 --direct-write-to-pmem --max-clients 4
          daxpin-server --file /dev/shm/export --metrics-file /var/lib/node_exporter/textfile/daxpin-server.prom
        """)

    @Option(help: "The file to export (tmpfs, fs-dax, page cache or /dev/daxX.Y).")
    var file: String
    @Option(help: "Create or resize the file to this many bytes first.")
    var size: Int?
    @Option(help: "Address of the RDMA interface to listen on.")
    var address: String = ProcessInfo.processInfo.environment["DAXPIN_RDMA_ADDR"] ?? "192.0.2.1"
    @Option(help: "Port (0: any free port; the ready line names it).")
    var port: UInt16 = 7471
    @Option(help: "Bytes to export from offset 0 (default: the whole file).")
    var length: Int?
    @Option(help: "Milliseconds clients get to stop when the lease breaks.")
    var quiesceBudget: Int = 5000
    @Option(help: "Most clients served at once.")
    var maxClients: Int = 16
    @Option(help: "Refuse to start when the export would pin more than this many bytes (default: no limit).")
    var maxExportBytes: Int?
    @Option(help: "Log level (trace, debug, info, notice, warning, error).")
    var logLevel: String = "info"
    @Option(help: "Keep this file in node_exporter's textfile format (*.prom) up to date with the server's leases, rewritten atomically on every change.")
    var metricsFile: String?
    @Flag(help: ArgumentHelp(
        "Declare that RDMA WRITEs to the export reach the persistence domain once placed, and advertise it to clients, who may then make writes durable with an RDMA READ after them instead of asking this server to flush (--persist-method read).",
        discussion: "Only correct on platforms where the NIC's writes go straight to persistent memory: ADR with DDIO off for the NIC's port, or eADR. Otherwise acknowledged writes can be lost on power failure. Refused unless the export is persistent memory (device-dax or fs-dax). Like librpma's rpma_peer_cfg_set_direct_write_to_pmem."))
    var directWriteToPmem = false
    @Option(help: ArgumentHelp(
        "Which durability methods to offer besides clients' persist requests: auto (offer native RDMA FLUSH when the export is persistent memory and this build, the device and the kernel allow it), flush (the same, and refuse to start when FLUSH cannot be offered), send (persist requests only).",
        valueName: "auto|flush|send"))
    var persistMethod: ServerPersistMethod = .auto

    func validate() throws {
        if let size, size <= 0 { throw ValidationError("--size must be positive") }
        if let length, length <= 0 { throw ValidationError("--length must be positive") }
        guard maxClients > 0 else { throw ValidationError("--max-clients must be positive") }
        guard quiesceBudget > 0 else { throw ValidationError("--quiesce-budget must be positive") }
        if let maxExportBytes {
            guard maxExportBytes > 0 else { throw ValidationError("--max-export-bytes must be positive") }
            // Checked before the file is created or resized and before anything is pinned.
            if let bytes = length ?? size, bytes > maxExportBytes {
                throw ValidationError(ExportLimit.message(bytes: bytes, limit: maxExportBytes))
            }
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "daxpin-server")
        if let size {
            do throws(Errno) {
                let fd = try Syscalls.open(file, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
                defer { try? Syscalls.close(fd) }
                try Syscalls.ftruncate(fd, off_t(size))
            } catch {
                throw ValidationError("cannot create \(file) with \(size) bytes: \(error)")
            }
        }
        // The whole regular file is exported when --length is absent: check its size before pinning.
        if let maxExportBytes, length == nil, let bytes = ExportLimit.regularFileSize(file), bytes > maxExportBytes {
            logger.error("cannot start: \(ExportLimit.message(bytes: bytes, limit: maxExportBytes))")
            throw ExitCode(2)
        }
        if let metricsFile {
            do {
                try PinTextfile.keepWritten(to: metricsFile)
            } catch {
                logger.error("cannot start: --metrics-file: \(error)")
                throw ExitCode(2)
            }
        }
        let server: StorageServer
        do {
            server = try StorageServer(file: file, address: address, port: port, length: length,
                                       quiesceBudget: .milliseconds(quiesceBudget), maxClients: maxClients,
                                       maxExportBytes: maxExportBytes, directWriteToPMem: directWriteToPmem,
                                       persistMethod: persistMethod, logger: logger)
        } catch {
            logger.error("cannot start: \(error)")
            throw ExitCode(2)
        }
        // The service returns after a revocation too: that ends the group gracefully, not as a failure.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        if metricsFile != nil { PinTextfile.flush() }
    }
}

/// `--max-export-bytes`: the most memory the server pins for its export. Clients cannot change
/// what is pinned (the export is pinned once, at startup); this bounds what the operator's
/// arguments (or a file grown by someone else) can make it pin.
enum ExportLimit {
    static func message(bytes: Int, limit: Int) -> String {
        "the export would pin \(bytes) bytes, more than --max-export-bytes \(limit); export less with --length or raise the limit"
    }

    /// The size of `path` when it is a regular file (device-dax sizes are known only after pinning).
    static func regularFileSize(_ path: String) -> Int? {
        guard let info = try? Syscalls.stat(path), info.st_mode & S_IFMT == S_IFREG else { return nil }
        return Int(info.st_size)
    }

    struct Exceeded: Error, CustomStringConvertible {
        let bytes: Int, limit: Int
        var description: String { ExportLimit.message(bytes: bytes, limit: limit) }
    }
}

/// `--persist-method` of the server: whether it offers native RDMA FLUSH.
enum ServerPersistMethod: String, ExpressibleByArgument, CaseIterable {
    case auto, flush, send
}

/// `--persist-method flush` when FLUSH cannot be offered for the export.
struct FlushRefused: Error, CustomStringConvertible {
    let reason: String
    var description: String { "--persist-method flush: RDMA FLUSH cannot be offered: \(reason)" }
}

/// `--direct-write-to-pmem` on an export that is not persistent memory: RDMA WRITEs to it are
/// never durable by themselves, so the promise would be false on any platform.
struct DirectWriteRefused: Error, CustomStringConvertible {
    let file: String, memory: String
    var description: String {
        "--direct-write-to-pmem needs a persistent-memory export (device-dax or fs-dax); \(file) is \(memory)"
    }
}

/// The exported region: the lease (shared by the connection threads) and the region's keys.
final class Export: Sendable {
    let lease: Mutex<LayoutLease?>
    let region: PinnedRegion.ID
    let remote: MemoryRegion.RemoteAccess
    let path: String

    init(lease: consuming sending LayoutLease, region: PinnedRegion.ID, remote: MemoryRegion.RemoteAccess) {
        self.path = lease.path
        self.region = region
        self.remote = remote
        self.lease = Mutex(Optional(lease))
    }

    func persist(offset: UInt64, length: UInt64) throws {
        try lease.withLock { lease throws in
            guard lease != nil else { throw DaxPinError.revoked(path: path) }
            try lease?.withRegion(region) { try $0.persist(offset: Int(offset), length: Int(length)) }
        }
    }

    func checksum(offset: UInt64, length: UInt64) throws -> UInt64 {
        try lease.withLock { lease throws -> UInt64 in
            guard lease != nil else { throw DaxPinError.revoked(path: path) }
            return try lease?.withRegion(region) { region in
                try region.withBytes { span in
                    span.withUnsafeBytes { bytes in
                        StorageProtocol.checksum(UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<Int(offset + length)]))
                    }
                }
            } ?? 0
        }
    }

    func attach(_ stop: @escaping @Sendable () -> Void) -> AttachmentToken? {
        lease.withLock { $0?.attach(stop: stop) }
    }

    func detach(_ token: AttachmentToken) { lease.withLock { $0?.detach(token) } }

    var events: AsyncStream<LeaseEvent>? { lease.withLock { $0?.events } }

    /// Tears down in DaxPin's order (graceful shutdown).
    func release() -> RevocationTrace? {
        lease.withLock { lease -> RevocationTrace? in
            switch lease.take() {
            case .some(let held): return held.release()
            case .none: return nil
            }
        }
    }
}

/// One connected client.
final class Client: Sendable {
    let id: UInt32
    let connection: RDMAConnection
    let token = Mutex<AttachmentToken?>(nil)
    let stopped = Atomic<Bool>(false)
    let gone = Atomic<Bool>(false)
    init(id: UInt32, connection: RDMAConnection) { self.id = id; self.connection = connection }
}

final class StorageServer: Service, Sendable {
    enum Phase: Sendable { case serving, quiescing, revoked, stopping }

    let listener: RDMAListener
    let export: Export
    let logger: Logger
    let maxClients: Int
    /// Advertised in every ``ServerHello``.
    let helloFlags: ServerHello.Flags
    /// The export is registered for RDMA FLUSH, and clients' queue pairs are made to admit it.
    let offersFlush: Bool
    let clients = Mutex<[UInt32: Client]>([:])
    let phase = Mutex(Phase.serving)
    let nextClient = Atomic<UInt32>(0)
    let threads = Atomic<Int>(0)
    private let bridge = QuiesceBridge()
    private let done: AsyncStream<Void>
    private let doneContinuation: AsyncStream<Void>.Continuation

    init(file: String, address: String, port: UInt16, length: Int?, quiesceBudget: Duration,
         maxClients: Int, maxExportBytes: Int?, directWriteToPMem: Bool, persistMethod: ServerPersistMethod,
         logger: Logger) throws {
        self.logger = logger
        self.maxClients = maxClients
        let bridge = self.bridge
        // The lease first: its memory kind decides whether --direct-write-to-pmem may be declared,
        // before any RDMA resource exists.
        var lease = try LayoutLease(path: file, options: LeaseOptions(quiesceBudget: quiesceBudget) { request in
            bridge.handler.withLock { $0 }?(request)
        })
        if directWriteToPMem, !lease.memory.isPersistentMemory {
            let memory = lease.memory
            _ = lease.release()
            throw DirectWriteRefused(file: file, memory: "\(memory)")
        }
        listener = try RDMAListener(address: address, port: port)
        // FLUSH is offered only once the kernel accepted the export's registration with FLUSH
        // access; otherwise the export is pinned without it and the reason is logged.
        var flushUnavailable: String?
        var pinned: PinnedRegion.ID?
        if persistMethod == .send {
            flushUnavailable = "--persist-method send"
        } else if let refusal = RDMABuildFeatures.current.flushRefusal {
            flushUnavailable = "\(refusal)"
        } else if !lease.memory.isPersistentMemory {
            flushUnavailable = "the export is \(lease.memory), not persistent memory"
        } else {
            do {
                pinned = try lease.pin(offset: 0, length: length, on: listener.device, remoteFlush: true)
            } catch {
                flushUnavailable = "\(error)"
            }
        }
        if persistMethod == .flush, let flushUnavailable {
            _ = lease.release()
            throw FlushRefused(reason: flushUnavailable)
        }
        let id = try pinned ?? lease.pin(offset: 0, length: length, on: listener.device)
        offersFlush = flushUnavailable == nil
        helloFlags = ServerHello.Flags(directWriteToPMem ? [.directWriteToPMem] : []).union(offersFlush ? [.remoteFlush] : [])
        let (strategy, remote) = try lease.withRegion(id) { ($0.strategy, $0.memoryRegion.remote) }
        // Backstop for exports whose size was unknown before pinning (device-dax, a file that grew).
        if let maxExportBytes, remote.length > maxExportBytes {
            _ = lease.release()
            throw ExportLimit.Exceeded(bytes: remote.length, limit: maxExportBytes)
        }
        logger.info("exporting", metadata: ["file": "\(file)", "memory": "\(lease.memory)", "lease": "\(lease.kind)",
                                            "strategy": "\(strategy)", "bytes": "\(remote.length)", "device": "\(listener.device.name)",
                                            "direct-write-to-pmem": "\(directWriteToPMem)",
                                            "rdma-flush": "\(flushUnavailable.map { "not offered: \($0)" } ?? "offered")"])
        export = Export(lease: lease, region: id, remote: remote)
        (done, doneContinuation) = AsyncStream<Void>.makeStream()
        bridge.handler.withLock { $0 = { [weak self] request in self?.quiesce(request) } }
        // The ready line tests and scripts wait for.
        print("ready address=\(listener.address) port=\(listener.port) length=\(remote.length) rkey=0x\(String(remote.rkey, radix: 16))")
        fflush(nil)
    }

    func run() async throws {
        if let events = export.events {
            Task.detached { [self] in
                for await event in events {
                    if case .revoked(let trace) = event { self.revoked(trace) }
                }
            }
        }
        let acceptor = Thread { [self] in acceptLoop() }
        acceptor.start()
        await withGracefulShutdownHandler {
            for await _ in done { break }
        } onGracefulShutdown: { [self] in
            shutdown()
        }
        // Let the threads notice (each waits at most 250 ms), then exit.
        let deadline = ContinuousClock.now + .seconds(3)
        while threads.load(ordering: .acquiring) > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private var isServing: Bool { phase.withLock { $0 == .serving } }

    private func acceptLoop() {
        threads.add(1, ordering: .relaxed)
        defer { threads.subtract(1, ordering: .relaxed) }
        logger.info("listening", metadata: ["address": "\(listener.address)", "port": "\(listener.port)"])
        while phase.withLock({ $0 == .serving || $0 == .quiescing }) {
            var assigned: UInt32 = 0
            let connection: RDMAConnection?
            do {
                connection = try listener.accept(timeout: .milliseconds(250),
                                                 options: RDMAConnection.Options(acceptsFlush: offersFlush)) { privateData in
                    guard let hello = ClientHello(decoding: privateData) else {
                        return .reject(reason: Array("not a daxpin storage client".utf8))
                    }
                    guard hello.version == StorageProtocol.version else {
                        return .reject(reason: Array("protocol version \(hello.version) unsupported; server speaks \(StorageProtocol.version)".utf8))
                    }
                    guard isServing else { return .reject(reason: Array("the export is being revoked".utf8)) }
                    guard clients.withLock({ $0.count }) < maxClients else {
                        return .reject(reason: Array("server full (\(maxClients) clients)".utf8))
                    }
                    assigned = nextClient.add(1, ordering: .relaxed).newValue
                    return .accept(privateData: ServerHello(flags: helloFlags, clientID: assigned, address: export.remote.address,
                                                            length: UInt64(export.remote.length), rkey: export.remote.rkey).encoded)
                }
            } catch {
                logger.warning("connection attempt failed", metadata: ["error": "\(error)"])
                continue
            }
            guard let connection else { continue }
            let client = Client(id: assigned, connection: connection)
            // A forced revocation moves the client's QP to error before the MR is deregistered.
            client.token.withLock { $0 = export.attach { connection.moveToError() } }
            clients.withLock { $0[assigned] = client }
            logger.info("client connected", metadata: ["client": "\(assigned)", "peer": "\(connection.peer)"])
            Thread { [self] in serve(client) }.start()
        }
    }

    private func serve(_ client: Client) {
        threads.add(1, ordering: .relaxed)
        defer { threads.subtract(1, ordering: .relaxed) }
        let connection = client.connection
        let exportLength = UInt64(export.remote.length)
        let meta: Logger.Metadata = ["client": "\(client.id)"]
        func answer(_ response: Response) -> Bool {
            (try? connection.send(response.encoded, timeout: .seconds(2))) != nil
        }
        loop: while phase.withLock({ $0 != .stopping && $0 != .revoked }), !connection.isClosed {
            let message: [UInt8]?
            do { message = try connection.receive(timeout: .milliseconds(250)) } catch { break }
            guard let message else { continue }
            switch StorageProtocol.decodeRequest(message, exportLength: exportLength) {
            case .failure(let problem):
                logger.warning("rejected request", metadata: meta.merging(["problem": "\(problem)"]) { $1 })
                guard answer(.error(id: problem.id, code: problem.code, message: problem.description)) else { break loop }
            case .success(.persist(let id, let offset, let length)):
                do {
                    try export.persist(offset: offset, length: length)
                    logger.debug("persisted", metadata: meta.merging(["offset": "\(offset)", "length": "\(length)"]) { $1 })
                    guard answer(.persisted(id: id, offset: offset, length: length)) else { break loop }
                } catch {
                    guard answer(.error(id: id, code: 100, message: "persist failed: \(error)")) else { break loop }
                }
            case .success(.checksum(let id, let offset, let length)):
                do {
                    let value = try export.checksum(offset: offset, length: length)
                    guard answer(.checksum(id: id, offset: offset, length: length, value: value)) else { break loop }
                } catch {
                    guard answer(.error(id: id, code: 100, message: "checksum failed: \(error)")) else { break loop }
                }
            case .success(.stopped):
                client.stopped.store(true, ordering: .releasing)
                logger.info("client stopped its RDMA", metadata: meta)
            case .success(.goodbye):
                break loop
            }
        }
        client.gone.store(true, ordering: .releasing)
        if let token = client.token.withLock({ $0 }) { export.detach(token) }
        connection.disconnect()
        clients.withLock { _ = $0.removeValue(forKey: client.id) }
        logger.info("client left", metadata: meta)
    }

    /// The lease's quiesce handler: tell every client to stop and wait for them (bounded).
    private func quiesce(_ request: QuiesceRequest) {
        let wasServing = phase.withLock { phase -> Bool in
            defer { if phase == .serving { phase = .quiescing } }
            return phase == .serving
        }
        let current = clients.withLock { Array($0.values) }
        logger.notice("lease breaking: telling clients to stop", metadata: [
            "path": "\(request.path)", "clients": "\(current.count)", "budget": "\(request.budget)"])
        let left = ContinuousClock.now.duration(to: request.deadline)
        let milliseconds = UInt32(clamping: max(0, left.wholeMilliseconds))
        let reason = wasServing ? "the exported file \(request.path) is being truncated or opened by another process"
                                : "the server is shutting down"
        for client in current where !client.gone.load(ordering: .acquiring) {
            if (try? client.connection.send(Response.stop(deadlineMilliseconds: milliseconds, reason: reason).encoded,
                                            timeout: .seconds(1))) == nil {
                client.gone.store(true, ordering: .releasing)
            }
        }
        let margin = ContinuousClock.now.duration(to: request.deadline) / 10
        let waitUntil = request.deadline - margin
        func pending() -> [Client] {
            current.filter { !$0.stopped.load(ordering: .acquiring) && !$0.gone.load(ordering: .acquiring) }
        }
        while !pending().isEmpty, ContinuousClock.now < waitUntil { Syscalls.sleep(microseconds: 5_000) }
        let late = pending()
        if late.isEmpty {
            logger.notice("every client stopped", metadata: ["clients": "\(current.count)"])
        } else {
            logger.warning("clients did not stop in time; their queue pairs go to error", metadata: [
                "late": "\(late.map(\.id))"])
        }
        // Completed WRITEs become durable too, before the region goes away.
        do {
            try export.persist(offset: 0, length: UInt64(export.remote.length))
        } catch {
            logger.warning("final persist failed", metadata: ["error": "\(error)"])
        }
    }

    private func revoked(_ trace: RevocationTrace) {
        let byKernel = phase.withLock { phase -> Bool in
            defer { phase = .revoked }
            return phase != .stopping
        }
        logger.notice(byKernel ? "export revoked by the kernel's lease break" : "export released",
                      metadata: ["steps": "\(trace.steps.count)"])
        print("revocation trace:\n\(trace)")
        fflush(nil)
        clients.withLock { $0.values.forEach { $0.connection.disconnect() } }
        doneContinuation.yield()
        doneContinuation.finish()
    }

    /// SIGINT/SIGTERM: stop clients, then release the lease in DaxPin's order.
    private func shutdown() {
        logger.notice("shutting down")
        let current = clients.withLock { Array($0.values) }
        phase.withLock { if $0 == .serving { $0 = .quiescing } }
        for client in current {
            _ = try? client.connection.send(Response.stop(deadlineMilliseconds: 2000, reason: "the server is shutting down").encoded,
                                            timeout: .seconds(1))
        }
        let deadline = ContinuousClock.now + .seconds(2)
        while current.contains(where: { !$0.stopped.load(ordering: .acquiring) && !$0.gone.load(ordering: .acquiring) }),
              ContinuousClock.now < deadline { Syscalls.sleep(microseconds: 5_000) }
        phase.withLock { $0 = .stopping }
        current.forEach { $0.connection.moveToError() }
        if let trace = export.release() {
            logger.notice("export released in order")
            print("release trace:\n\(trace)")
            fflush(nil)
        }
        doneContinuation.yield()
        doneContinuation.finish()
    }
}

/// Lets the lease's quiesce handler (set before the server exists) reach the server.
final class QuiesceBridge: Sendable {
    let handler = Mutex<(@Sendable (QuiesceRequest) -> Void)?>(nil)
}
