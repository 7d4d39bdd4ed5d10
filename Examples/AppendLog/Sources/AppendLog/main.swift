// append-log PATH [RECORDS_PER_SECOND]: a durable append log on a leased, pinned file.
// Holds a LayoutLease on PATH (made 1 MiB long if it does not exist) in a swift-service-lifecycle
// ServiceGroup, pins the whole file on the first RDMA device (so a peer could READ the log; none
// is needed to write it), and appends 16-byte records. SIGTERM or SIGINT stops the appender,
// then releases the lease in order (exit 0); a lease break (another process opens, truncates or
// punches the file) revokes it, and the log ends with the trace (exit 1).
import DaxPin
import DaxPinServiceLifecycle
import Glibc
import Logging
import ServiceLifecycle
import Synchronization

LoggingSystem.bootstrap(StreamLogHandler.standardError)
let logger = Logger(label: "append-log")
let arguments = CommandLine.arguments.dropFirst()
guard let path = arguments.first else {
    print("usage: append-log PATH [RECORDS_PER_SECOND]")
    exit(2)
}
let rate = arguments.dropFirst().first.flatMap(Int.init) ?? 20

/// Makes `path` 1 MiB long if it does not exist yet: a fresh log. Before the lease, because any
/// open of a leased file breaks the lease, even this process's own.
func createIfMissing(_ path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return }
    _ = ftruncate(fd, 1 << 20)
    close(fd)
}

let pinned = Mutex<PinnedRegion.ID?>(nil)
do {
    createIfMissing(path)
    let leases = try LeaseService(path: path, logger: logger) { lease in
        do {
            let device = try RDMADevice.openFirst()
            let id = try lease.pin(on: device)  // the whole file
            let strategy = try lease.withRegion(id) { region in region.strategy }
            pinned.withLock { $0 = id }
            print("pinned \(path) on \(device.name): \(strategy)")
        } catch DaxPinError.noRDMADevice {
            print("no RDMA device: appending through the lease's descriptor")
        }
    }
    let region = pinned.withLock { $0 }
    let size = try region.flatMap { id in try leases.withLease { lease in try lease.withRegion(id) { $0.length } } }
    let appender = Appender(leases: leases, region: region, capacity: size ?? (1 << 20),
                            interval: .milliseconds(1000 / max(1, rate)), acknowledged: Acknowledged())
    print("appending to \(path); SIGTERM or SIGINT stops")
    fflush(nil)
    // Graceful shutdown runs in reverse order: the appender stops first, then the lease goes.
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: [.init(service: leases),
                   .init(service: appender, successTerminationBehavior: .ignore)],
        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    do {
        try await group.run()
        print("released in order after \(appender.acknowledged.count.load(ordering: .relaxed)) records:")
        for step in leases.trace?.steps ?? [] { print("  \(step)") }
    } catch let broken as LeaseBrokenError {
        print("lease broken after \(appender.acknowledged.count.load(ordering: .relaxed)) records, revoked in order:")
        for step in broken.trace.steps { print("  \(step)") }
        exit(1)
    }
} catch {
    print("append-log: \(error)")
    exit(2)
}
