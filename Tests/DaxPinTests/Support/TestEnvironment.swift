@testable import DaxPin
import Foundation
import Glibc
import Synchronization
import Testing

/// Where the suite runs: on a plain host (real leases, recorded verbs) or inside the testbed
/// VM (`Scripts/testbed`), which publishes its devices through DAXPIN_* variables.
enum Testbed {
    static let env = ProcessInfo.processInfo.environment
    /// True inside the testbed, where RDMA and DAX tests must run, never skip.
    static let isActive = env["DAXPIN_TESTBED"] == "1"
    static let skipReason: Comment = "needs the testbed's Soft-RoCE device and emulated pmem (run Scripts/testbed or Scripts/test)"

    /// A published path or name; a missing one inside the testbed is a failure, not a skip.
    static func required(_ name: String) throws -> String {
        guard let value = env[name], !value.isEmpty else {
            Issue.record("testbed variable \(name) is not set: the testbed is incomplete")
            throw TestbedIncomplete(variable: name)
        }
        return value
    }

    struct TestbedIncomplete: Error { let variable: String }

    /// What a testbed test case showed, as Scripts/test counts it per leg and
    /// Tests/TestbedExpected/LEG.txt records it per test: a case that stops moving bytes (a
    /// kernel, build or branch that now only refuses) then fails the gate by name.
    enum Evidence: String {
        /// Bytes went through an RDMA transfer, or through a registered or DAX mapping into the
        /// file, and the test checked them.
        case movedBytes = "moved"
        /// The test only checked that something was refused or failed: a registration, an
        /// RDMA access, a request, a forced system call.
        case refusalOnly = "refusal"
        /// Real kernel objects (registrations, leases and their breaks, netlink dumps, device
        /// attributes) were made and checked, and no bytes were checked moved.
        case objectsOnly = "objects"
    }

    /// Records that a test needing RDMA or DAX really ran, once per test case, as
    /// `FILE:FUNCTION EVIDENCE` (Scripts/test compares the counts with Tests/TestbedExpected/LEG.txt).
    static func ran(_ evidence: Evidence, _ test: String = #function, file: String = #fileID) {
        guard let out = env["DAXPIN_TESTBED_OUT"] else { return }
        let line = "\(file.split(separator: "/").last ?? Substring(file)):\(test) \(evidence.rawValue)\n"
        let fd = open(out + "/testbed-tests-ran.txt", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        _ = line.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// The real rxe device inside the testbed.
    static func rdmaDevice() throws -> RDMADevice {
        try RDMADevice.open(named: required("DAXPIN_RDMA_DEVICE"))
    }

    /// rxe3, on a 9000-byte-MTU dummy: path MTU 4096, so a page-aligned 4 KiB WRITE is one packet.
    static func jumboDevice() throws -> RDMADevice {
        try RDMADevice.open(named: required("DAXPIN_JUMBO_DEVICE"))
    }

    /// Whether the testbed loaded the rdma_rxe patched by Tools/rxe-odp-fix (`Scripts/testbed
    /// --rxe fixed`), rather than the kernel's own.
    static var rxeIsFixed: Bool { env["DAXPIN_RXE"] == "fixed" }

    /// What DaxPin's On-Demand Paging check must conclude on the testbed's rxe under the
    /// running kernel, from the library's kernel table and which rxe module is loaded.
    static var expectedRXEVerdictIsFailure: Bool? {
        let kernel = KernelBehaviour.running
        guard kernel.rxeAdvertisesOnDemandPaging else { return nil }  // not offered
        return kernel.rxeOnDemandPagingMisplacesWrites && !rxeIsFixed
    }

    /// Records that a test moved a peer's bytes through a verified On-Demand Paging
    /// registration (counted per leg by Scripts/test, which fails the fixed-rxe leg without any).
    static func movedBytesThroughODP(_ test: String = #function) {
        guard let out = env["DAXPIN_TESTBED_OUT"] else { return }
        let line = test + "\n"
        let fd = open(out + "/testbed-odp-moved.txt", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        _ = line.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
}

/// A device for tests that run in both places: the testbed's rxe0, or the recording double.
func testDevice(_ recording: RecordingVerbs = RecordingVerbs()) throws -> RDMADevice {
    Testbed.isActive ? try Testbed.rdmaDevice() : RDMADevice(provider: recording)
}

/// Scratch files in a given directory, removed at the end of the test.
final class ScratchFile {
    let path: String
    init(in directory: String, size: Int, fill: UInt8 = 0xA5, name: String = #function) throws {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = "\(directory)/daxpin-\(safe)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
        defer { close(fd) }
        var chunk = [UInt8](repeating: fill, count: 1 << 16)
        var left = size
        while left > 0 {
            let n = min(left, chunk.count)
            guard write(fd, &chunk, n) == n else { throw POSIXError(.EIO) }
            left -= n
        }
    }
    var size: Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : -1
    }
    deinit { unlink(path) }
}

/// Directories for host tests: a tmpfs and a block-backed file system.
enum HostDirs {
    static var tmpfs: String { Testbed.env["DAXPIN_TMPFS_DIR"] ?? "/dev/shm" }
    /// Host: a block-backed directory (/tmp on the build machines is ext4).
    /// Testbed: the fs-dax ext4 and xfs mounts, where `auto` stages because rxe has no ODP.
    static var others: [String] {
        if Testbed.isActive {
            return ["DAXPIN_FSDAX_EXT4_DIR", "DAXPIN_FSDAX_XFS_DIR"].compactMap { Testbed.env[$0] }
        }
        return [FileManager.default.temporaryDirectory.path]
    }
}

/// Another process, as the file system's other users are: a breaker of leases.
struct Breaker {
    let pid: pid_t
    let started: ContinuousClock.Instant

    static func start(_ arguments: [String]) throws -> Breaker {
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let rc = posix_spawn(&pid, arguments[0], nil, nil, argv, environ)
        guard rc == 0 else { throw POSIXError(.init(rawValue: rc)!) }
        return Breaker(pid: pid, started: .now)
    }

    /// Waits up to `timeout`; returns the exit status and how long the process lived,
    /// or nil (after killing it) when it did not finish in time.
    func wait(timeout: Duration = .seconds(30)) -> (status: Int32, blocked: Duration)? {
        let deadline = started + timeout
        var status: Int32 = 0
        while ContinuousClock.now < deadline {
            let rc = waitpid(pid, &status, WNOHANG)
            if rc == pid { return ((status >> 8) & 0xff, started.duration(to: .now)) }
            usleep(2_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        return nil
    }

    /// truncate(2) by path, which waits for the lease break (coreutils' truncate opens
    /// with O_NONBLOCK and gives up with EAGAIN instead).
    static func truncate(_ path: String, to size: Int = 0) throws -> Breaker {
        try start(["/usr/bin/python3", "-c", "import os, sys; os.truncate(sys.argv[1], int(sys.argv[2]))", path, String(size)])
    }
    /// truncate(2) once `trigger` exists (polled every millisecond, for at most 30 s); creates
    /// `trigger.ready` first. Python takes seconds to start under the testbed's emulation: start
    /// it early, wait for `.ready`, then create `trigger` to truncate at a moment of the test's choosing.
    static func truncateWhenTold(_ path: String, to size: Int, trigger: String) throws -> Breaker {
        let script = """
            import os, sys, time
            open(sys.argv[3] + ".ready", "w").close()
            for _ in range(30000):
                if os.path.exists(sys.argv[3]): break
                time.sleep(0.001)
            os.truncate(sys.argv[1], int(sys.argv[2]))
            """
        return try start(["/usr/bin/python3", "-c", script, path, String(size), trigger])
    }
    /// `cat FILE > COPY`: a plain read open, which breaks a write lease; the copy is what the
    /// breaker read once the lease was released.
    static func readCopy(_ path: String, into copy: String) throws -> Breaker {
        try start(["/bin/sh", "-c", "cat \"$0\" > \"$1\"", path, copy])
    }
    static func openForWrite(_ path: String) throws -> Breaker { try start(["/bin/sh", "-c", ": >> \"$0\"", path]) }
    static func punchHole(_ path: String) throws -> Breaker {
        try start(["/usr/bin/fallocate", "--punch-hole", "--offset", "0", "--length", "4096", path])
    }
}

/// What the process holds: counted before and after a failing call to prove nothing leaked.
/// Mappings are the file-backed ones in /proc/self/maps plus the bytes DaxPin's own mmap calls
/// hold (the seam's ledger): thread stacks that Dispatch adds and removes would make a raw count flaky.
struct ResourceCount: Equatable, CustomStringConvertible {
    let fds: Int, mappings: Int, locks: Int
    /// What each descriptor refers to, to name a leak (not compared).
    var fdTargets: [String] = []

    static func == (a: ResourceCount, b: ResourceCount) -> Bool {
        a.fds == b.fds && a.mappings == b.mappings && a.locks == b.locks
    }

    static func now() -> ResourceCount {
        PinRegistry.shared.flush()  // its writer opens files for a moment
        MappingLedger.start()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        let targets = names.sorted().map { name in
            "\(name)->" + ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)")) ?? "?")
        }
        // Pipes and sockets are not counted: DaxPin makes neither, and Foundation's Process (an
        // earlier test's child) closes its pipes whenever it gets to it.
        // Nor is a descriptor closed before its target could be read ("30->?"): another thread's
        // for a moment (the registry's writer, woken by an earlier test's revocation, opens its
        // directory and a temporary file), not one held.
        let fds = names.isEmpty ? -1 : targets.filter { !$0.contains("->pipe:") && !$0.contains("->socket:") && !$0.hasSuffix("->?") }.count
        let fileBacked = readTextFile("/proc/self/maps").split(separator: "\n").filter { $0.contains(" /") }.count
        let me = " \(getpid()) "
        let locks = readTextFile("/proc/locks").split(separator: "\n").filter { $0.contains(me) }.count
        return ResourceCount(fds: fds, mappings: fileBacked + MappingLedger.mappedBytes, locks: locks,
                             fdTargets: targets)
    }

    /// The count after an operation that must leave `before` unchanged: counted again every
    /// 2 ms, up to 1 s, while it differs. A descriptor another thread opens and closes for a
    /// moment (seen as "58->?": gone before its target could be read) is then not taken for a
    /// leak; a real leak stays and is reported.
    static func after(expecting before: ResourceCount) -> ResourceCount {
        var count = now()
        _ = count == before || eventually(timeout: .seconds(1)) {
            count = now()
            return count == before
        }
        return count
    }

    var description: String { "fds \(fds), mappings \(mappings), locks \(locks)" }

    /// The descriptors that differ from `other`'s, both ways.
    func fdDifference(from other: ResourceCount) -> String {
        let mine = Set(fdTargets), theirs = Set(other.fdTargets)
        return "gone: \(theirs.subtracting(mine).sorted()), new: \(mine.subtracting(theirs).sorted())"
    }
}

/// Polls `condition` every 2 ms until `timeout`; bounded so CI never hangs.
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(2_000)
    }
    return condition()
}

extension LeaseState {
    var isRevoked: Bool { if case .revoked = self { true } else { false } }
}



/// Where this process's descriptors point.
func openFileTargets() -> [String] {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }
}
