import ArgumentParser
import DaxPin
import Glibc
import Synchronization

/// Set by SIGTERM or SIGINT: `hold` then releases in order and exits.
let holdStopRequested = Atomic<Bool>(false)

/// `daxpin hold PATH`: a test and demonstration helper that takes a lease on PATH, pins it
/// when an RDMA device is present (otherwise holds the lease only, so `daxpin ls` can be
/// exercised on machines without RDMA), publishes it, waits, and releases it (early on
/// SIGTERM or SIGINT, so the release and the registry withdrawal run).
struct HoldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold",
        abstract: "Hold a lease (and a pin when an RDMA device exists) on a file for a while.",
        shouldDisplay: false
    )

    @Argument(help: "The file or device-dax node to hold.")
    var path: String

    @Option(help: "How long to hold it, in seconds.")
    var seconds: Double = 60

    @Option(help: "The RDMA device (default: the first one present; none: lease only).")
    var device: String?

    @Option(help: "Bytes to pin from offset 0 (default: the whole file).")
    var length: Int?

    @Flag(help: "Take the lease only, even when an RDMA device exists.")
    var leaseOnly = false

    @Flag(help: "Once holding, fork a child that idles (what a forked child inherits is tested with it).")
    var forkChild = false

    func run() throws {
        // A parent may have left these blocked or ignored (both are inherited across exec).
        do {
            try Syscalls.handleSignals([SIGTERM, SIGINT]) { _ in holdStopRequested.store(true, ordering: .relaxed) }
        } catch {
            printError("daxpin hold: cannot handle SIGTERM and SIGINT (\(error))")
            throw ExitCode(1)
        }
        var lease: LayoutLease
        do {
            lease = try LayoutLease(path: path)
        } catch {
            printError("daxpin hold: \(error)")
            throw ExitCode(1)
        }
        var what = "lease only (\(lease.kind))"
        if !leaseOnly, device != nil || !RDMADevice.availableDevices().isEmpty {
            do {
                let rdma = if let device { try RDMADevice.open(named: device) } else { try RDMADevice.openFirst() }
                let id = try lease.pin(offset: 0, length: length, on: rdma)
                let (strategy, rkey) = try lease.withRegion(id) { ($0.strategy, $0.memoryRegion.remote.rkey) }
                what = "pinned (\(strategy), rkey 0x\(String(rkey, radix: 16))) under \(lease.kind)"
            } catch {
                printError("daxpin hold: \(error)")
                throw ExitCode(1)
            }
        }
        print("daxpin hold: pid \(Syscalls.processID()) holds \(path): \(what)")
        fflush(nil)
        if forkChild {
            let child: pid_t
            do { child = try Syscalls.fork() } catch {
                printError("daxpin hold: fork failed (\(error))")
                throw ExitCode(1)
            }
            if child == 0 { Syscalls.pauseForever() }  // async-signal-safe only: the parent has threads
            print("daxpin hold: forked child \(child)")
            fflush(nil)
        }
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline, !holdStopRequested.load(ordering: .relaxed) {
            if case .revoked = lease.state { break }
            Syscalls.sleep(microseconds: 20_000)
        }
        print("daxpin hold: \(lease.state == .held ? "releasing" : "revoked by a lease break")")
        let trace = lease.trace
        if trace.stagedBytesWrittenBack + trace.stagedBytesDropped > 0 {
            // A staged pin: say what the break did with the bounce buffer.
            print("daxpin hold: staged bytes written back \(trace.stagedBytesWrittenBack), dropped \(trace.stagedBytesDropped)")
        }
        fflush(nil)
        _ = lease.release()
    }
}
