import ArgumentParser
import DaxPin
import Logging
import Glibc

/// The reliability soak (`Scripts/reliability --soak`, shortened in CI): holder processes take,
/// pin, write, break and re-take leases, cycle after cycle, under a watchdog.
@main
struct Soak: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daxpin-soak",
        abstract: "Lease take, pin, write, break or release, revoke, re-take: cycles under a watchdog.",
        discussion: """
            Example: daxpin-soak run --processes 4 --threads 4 --cycles 1000 --directory /dev/shm
            Fails on the first thread without progress for --bound seconds (after saving every
            thread's kernel and user stacks), on a lost acknowledged write, an out-of-order trace,
            or a leaked descriptor, mapping, lock or registration. With --device a peer RDMA
            WRITEs into the pinned regions while the breaks arrive: each WRITE acknowledged before
            the revocation must be in the file, and a WRITE after it must fail.
            """,
        subcommands: [Run.self, Hold.self],
        defaultSubcommand: Run.self)
}

/// Options both subcommands share.
struct SoakOptions: ParsableArguments {
    @Option(help: "Threads per holder process.") var threads = 2
    @Option(help: "Cycles per thread.") var cycles = 100
    @Option(help: "Seconds a thread may go without progress (a cycle's bound).") var bound = 30
    @Option(help: "Where the leased files go (tmpfs, ext4-dax, xfs-dax, page cache).") var directory = "/dev/shm"
    @Option(help: "RDMA device to register on; without it a stand-in counts registrations.") var device: String?
    @Option(help: ArgumentHelp("Thread 0 of holder 0 stops at this cycle (proves the watchdog).", visibility: .hidden))
    var stallAt: Int?
    @Option(help: ArgumentHelp("Names this run's files (run passes its pid), so that runs side by side never share one.",
                               visibility: .hidden))
    var runID = Int(getpid())

    var forwarded: [String] {
        ["--threads", String(threads), "--cycles", String(cycles), "--bound", String(bound), "--directory", directory,
         "--run-id", String(runID)]
            + (device.map { ["--device", $0] } ?? []) + (stallAt.map { ["--stall-at", String($0)] } ?? [])
    }
}

extension Soak {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Runs the holders under the watchdog (the default).")
        @OptionGroup var options: SoakOptions
        @Option(help: "Holder processes.") var processes = 2
        @Option(help: "Where a stall's stacks are saved.") var output = "soak-out"

        func run() throws {
            let executable = readLink("/proc/self/exe")
            let watchdog = SoakWatchdog(arguments: [executable, "hold"] + options.forwarded, processes: processes,
                                        threads: options.threads, bound: .seconds(options.bound), output: output)
            let start = ContinuousClock.now
            do {
                let totals = try watchdog.run()
                let total = processes * options.threads * options.cycles
                guard totals.cycles == total else {
                    throw SoakFailure("\(totals.cycles) of \(total) cycles completed")
                }
                // A lost peer WRITE fails its cycle, so a run that gets here lost none.
                let peer = options.device == nil
                    ? "no RDMA peer (the registration stand-in moves no bytes; with --device a peer WRITEs)"
                    : "\(totals.peerChecked) acknowledged peer RDMA WRITEs checked, 0 lost, \(totals.peerRefused) peer WRITEs at or after revocation refused"
                print("soak: \(totals.cycles) cycles (\(processes) processes x \(options.threads) threads x \(options.cycles)) on \(options.device ?? "the stand-in") in \(options.directory): 0 hangs, 0 lost acknowledged writes, 0 leaks, \(peer), \(start.duration(to: .now))")
            } catch let failure as SoakFailure {
                print("soak: FAILED: \(failure.reason)")
                throw ExitCode.failure
            }
        }
    }

    struct Hold: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One holder process (run starts them).", shouldDisplay: false)
        @OptionGroup var options: SoakOptions
        @Option var id: Int

        func run() throws {
            #if DAXPIN_TESTING  // the ledger exists in debug builds, which Scripts/reliability makes
            MappingLedger.start()
            #endif
            var logger = Logger(label: "DaxPin.soak")
            logger.logLevel = .warning  // a notice per break would flood the watchdog's terminal
            let standIn: SoakVerbs? = options.device == nil ? SoakVerbs() : nil
            let device = try options.device.map { try RDMADevice.open(named: $0) } ?? RDMADevice(provider: standIn!)
            let before = Resources.now()
            let failures = SoakHolder(runID: options.runID, id: id, threads: options.threads, cycles: options.cycles, directory: options.directory,
                                      device: device, standIn: standIn, bound: .seconds(options.bound),
                                      stallAt: options.stallAt, options: LeaseOptions(logger: logger)).run()
            var after = Resources.now()
            // The pin registry's writer opens a file for a moment after the last change.
            for _ in 0..<50 where after.fds != before.fds {
                usleep(20_000)
                after = Resources.now()
            }
            var leaks: [String] = []
            if after.fds != before.fds { leaks.append("descriptors \(before.fds) -> \(after.fds)") }
            #if DAXPIN_TESTING
            if MappingLedger.mappedBytes != 0 { leaks.append("\(MappingLedger.mappedBytes) bytes still mapped") }
            #endif
            if after.locks != 0 { leaks.append("\(after.locks) leases or locks held") }
            if after.pinnedKiB != 0 { leaks.append("VmPin \(after.pinnedKiB) kB") }
            if let live = standIn?.liveRegistrations, live != 0 { leaks.append("\(live) registrations") }
            for failure in failures { printError("holder \(id): \(failure)") }
            for leak in leaks { printError("holder \(id): LEAK: \(leak)") }
            if !failures.isEmpty || !leaks.isEmpty { throw ExitCode.failure }
        }
    }
}

/// What the process holds that the soak must give back.
struct Resources {
    let fds: Int
    let locks: Int
    let pinnedKiB: Int

    static func now() -> Resources {
        var fds = 0
        if let directory = opendir("/proc/self/fd") {
            while readdir(directory) != nil { fds += 1 }
            closedir(directory)
        }
        let me = " \(getpid()) "
        let locks = readFile("/proc/locks").split(separator: "\n").filter { $0.contains(me) }.count
        let pinned = readFile("/proc/self/status").split(separator: "\n").first { $0.hasPrefix("VmPin:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? 0
        return Resources(fds: fds, locks: locks, pinnedKiB: pinned)
    }
}

func readLink(_ path: String) -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink(path, &buffer, buffer.count - 1)
    return count > 0 ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : path
}

/// A line on standard error.
func printError(_ line: String) {
    _ = (line + "\n").utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}
