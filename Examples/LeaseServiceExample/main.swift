// A lease held by a swift-service-lifecycle ServiceGroup: released in order on SIGINT/SIGTERM.
// Run: swift run daxpin-lease-service [/dev/shm/data]
//   With a path: leases that file (made 1 MiB long if it does not exist) and pins all of it.
//   Without one: anonymous memory (no lease to break), 1 MiB pinned.
// Pinning needs an RDMA device (e.g. in Scripts/testbed); without one the lease is held
// unpinned, and the reason is printed. Ctrl-C (or kill -TERM) releases the lease and prints
// the trace; truncating the file from another process breaks the lease and ends the group.
import DaxPin
import DaxPinServiceLifecycle
import Glibc
import Logging
import ServiceLifecycle

LoggingSystem.bootstrap(StreamLogHandler.standardError)
let logger = Logger(label: "daxpin-lease-service")
let path = CommandLine.arguments.dropFirst().first

/// Makes `path` 1 MiB long if it does not exist yet (so there is something to pin).
func createIfMissing(_ path: String) {
    // Exists (or cannot be made: the lease will say why).
    guard let fd = try? Syscalls.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) else { return }
    try? Syscalls.ftruncate(fd, 1 << 20)
    try? Syscalls.close(fd)
}

/// Pins all of the file (1 MiB of anonymous memory) if there is an RDMA device; else says why not.
func pinIfPossible(_ lease: inout LayoutLease) throws {
    let device: RDMADevice
    do {
        device = try RDMADevice.openFirst()
    } catch {
        print("holding the lease without pinning: \(error)")
        return
    }
    let id = try lease.pin(length: path == nil ? 1 << 20 : nil, on: device)
    let (strategy, keys) = try lease.withRegion(id) { region in (region.strategy, region.memoryRegion.remote) }
    print("pinned \(keys.length) bytes on \(device.name): \(strategy), rkey 0x\(String(keys.rkey, radix: 16))")
}

do {
    let service: LeaseService
    if let path {
        createIfMissing(path)
        service = try LeaseService(path: path, logger: logger, setUp: pinIfPossible)
    } else {
        var lease = LayoutLease.anonymous()
        try pinIfPossible(&lease)
        service = LeaseService(lease: lease, logger: logger)
    }
    print("holding \(service.path); SIGINT or SIGTERM releases it")
    fflush(nil)
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    do {
        try await group.run()
        let steps = service.trace?.steps ?? []
        print(steps.isEmpty ? "released (nothing was pinned or leased)" : "released in order:")
        for step in steps { print("  \(step)") }
    } catch let broken as LeaseBrokenError {
        print("lease broken, revoked in order:")
        for step in broken.trace.steps { print("  \(step)") }
        exit(1)
    }
} catch {
    print("daxpin-lease-service: \(error)")
    exit(2)
}
