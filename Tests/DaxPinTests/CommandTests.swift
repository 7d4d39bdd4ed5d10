@testable import DaxPin
import Foundation
import Glibc
import Testing

/// Runs the built `daxpin` binary, which sits next to the test binary.
enum DaxPinBinary {
    static var path: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("daxpin").path
    }

    struct Result { let status: Int32; let stdout: String; let stderr: String }

    static func environment(runDirectory: String?) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        if let runDirectory { env["DAXPIN_RUN_DIR"] = runDirectory }
        return env
    }

    /// Runs `daxpin ARGS` to completion (bounded by a watchdog).
    static func run(_ arguments: [String], runDirectory: String? = nil) throws -> Result {
        try run(arguments, executable: path, environment: environment(runDirectory: runDirectory), timeout: 60)
    }

    /// Runs `executable ARGS` to completion, killed after `timeout` seconds.
    static func run(_ arguments: [String], executable: String, environment: [String: String], timeout: Double) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let watchdog = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Starts `daxpin hold PATH` in the background.
    static func hold(_ path: String, seconds: Double, runDirectory: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.path)
        process.arguments = ["hold", path, "--seconds", String(seconds)]
        process.environment = environment(runDirectory: runDirectory)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }
}

/// JSON shapes of the command's output, decoded independently of the command's own types.
struct ProbeJSON: Decodable {
    struct Memory: Decodable { let kind: String; let alignment: Int?; let daxAttribute: Bool?; let device: String; let inode: UInt64 }
    struct Mount: Decodable { let fileSystem: String; let superOptions: String }
    struct Device: Decodable { let name: String; let odp: Bool; let odpVerdict: String? }
    struct Lease: Decodable { let possible: Bool; let kind: String; let detail: String }
    struct Choice: Decodable { let policy: String; let strategy: String?; let reasons: [String]; let refusal: String? }
    let path: String
    let memory: Memory?
    let mount: Mount?
    let device: Device?
    let lease: Lease?
    let leaseBreakTimeSeconds: Int?
    let strategy: Choice?
    let wouldWork: Bool
    let problems: [String]
}

struct ListJSON: Decodable {
    struct Pin: Decodable {
        let pid: Int32; let process: String; let path: String; let device: String; let inode: UInt64
        let lease: String; let state: String; let regions: [RegionRecord]; let source: String
    }
    let pins: [Pin]
}

/// A private run directory for one test.
final class ScratchRunDirectory {
    let path: String
    init() {
        path = "/tmp/daxpin-test-run-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(path, 0o700)
    }
    var files: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func probe(_ arguments: [String]) throws -> (DaxPinBinary.Result, ProbeJSON) {
    let result = try DaxPinBinary.run(["probe"] + arguments + ["--json"])
    let report = try JSONDecoder().decode(ProbeJSON.self, from: Data(result.stdout.utf8))
    return (result, report)
}

func statIdentity(_ path: String) -> (device: String, inode: UInt64) {
    var info = stat()
    stat(path, &info)
    return (DeviceNumber(info.st_dev).description, UInt64(info.st_ino))
}

extension DaxPin {
    @Suite struct Command {
        // MARK: probe on the host (and in the testbed, where a device exists)

        @Test("probe tmpfs: pinned, write lease taken and released; no device is reported as none")
        func probeTmpfs() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20)
            let (result, report) = try probe([file.path])
            #expect(report.memory?.kind == "tmpfs")
            #expect(report.strategy?.strategy == "pinned")
            #expect(report.lease?.possible == true)
            #expect(report.lease?.kind == "write lease")
            #expect(report.mount?.fileSystem == "tmpfs")
            #expect(report.leaseBreakTimeSeconds ?? 0 > 0)
            #expect(!readTextFile("/proc/locks").contains(":\(statIdentity(file.path).inode) "), "the trial lease was released")
            if Testbed.isActive {
                #expect(report.device?.name == (try Testbed.required("DAXPIN_RDMA_DEVICE")))
                #expect(result.status == 0 && report.wouldWork)
                Testbed.ran(.objectsOnly)
            } else {
                #expect(report.device?.name == "none")
                #expect(result.status == 1 && !report.wouldWork)
                #expect(report.problems.contains { $0.contains("no RDMA device") })
                let table = try DaxPinBinary.run(["probe", file.path])
                #expect(table.status == 1)
                #expect(table.stdout.contains("RDMA device       none"))
                #expect(table.stdout.contains("strategy (auto)   pinned"))
                #expect(table.stderr.contains("no RDMA device"))
            }
        }

        @Test("probe ext4 page cache: staged from kernel 6.5 (writable pins refused), zero-copy gives the library's refusal",
              .disabled(if: Testbed.isActive, "the host's /tmp is ext4; the testbed covers fs-dax instead"))
        func probePageCache() throws {
            let file = try ScratchFile(in: FileManager.default.temporaryDirectory.path, size: 1 << 16)
            let (_, report) = try probe([file.path])
            try #require(report.memory?.kind == "page-cache", "the host's /tmp should be ext4 or xfs")
            #expect(report.memory?.daxAttribute != true)
            #expect(report.lease?.kind == "write lease")
            let modern = !KernelBehaviour.running.pinsWritablePageCache
            #expect(report.strategy?.strategy == (modern ? "staged" : "pinned"))
            if modern {
                #expect(report.strategy?.reasons.first?.contains("refuses writable long-term pins of page-cache files") == true)
                let (_, strict) = try probe([file.path, "--policy", "zero-copy"])
                #expect(strict.strategy?.strategy == nil)
                let refusal = try #require(strict.strategy?.refusal)
                #expect(refusal.hasPrefix("cannot register page-cache file on"))
                #expect(refusal.contains("Instead: place the file on tmpfs"))
            }
            let (_, reading) = try probe([file.path, "--access", "read"])
            #expect(reading.lease?.kind == "read lease")
        }

        @Test("probe refuses a directory and a missing path with the library's explanation")
        func probeBadPaths() throws {
            let (directory, dirReport) = try probe(["/tmp"])
            #expect(directory.status == 1 && !dirReport.wouldWork && dirReport.memory == nil)
            #expect(dirReport.problems.first?.contains("/tmp is a directory") == true)
            let missing = try DaxPinBinary.run(["probe", "/nonexistent/daxpin-file"])
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("no such file; create it first"))
        }

        @Test("probe does not take (and so does not break) a lease another process holds")
        func probeLeavesOthersLeases() throws {
            let run = ScratchRunDirectory()
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20)
            let holder = try DaxPinBinary.hold(file.path, seconds: 30, runDirectory: run.path)
            defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
            #expect(eventually { run.files == ["\(holder.processIdentifier).json"] })
            let (result, report) = try probe([file.path])
            #expect(result.status == 1)
            #expect(report.lease?.possible == false)
            #expect(report.lease?.detail.contains("not tried: pid \(holder.processIdentifier)") == true)
            #expect(holder.isRunning, "the holder's lease was not broken")
            let listed = try DaxPinBinary.run(["ls", "--json"], runDirectory: run.path)
            let pins = try JSONDecoder().decode(ListJSON.self, from: Data(listed.stdout.utf8)).pins
            #expect(pins.first { $0.pid == holder.processIdentifier }?.state == "held")
        }

        // MARK: ls

        @Test("ls shows the pins of two other processes and drops them on exit and after kill -9")
        func listTwoProcesses() throws {
            let run = ScratchRunDirectory()
            let first = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20, name: "first")
            let second = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20, name: "second")
            let quitter = try DaxPinBinary.hold(first.path, seconds: 120, runDirectory: run.path)
            let victim = try DaxPinBinary.hold(second.path, seconds: 60, runDirectory: run.path)
            defer {
                for process in [quitter, victim] where process.isRunning { kill(process.processIdentifier, SIGKILL) }
                quitter.waitUntilExit(); victim.waitUntilExit()
            }
            let pids = [quitter.processIdentifier, victim.processIdentifier]
            func listed() throws -> [ListJSON.Pin] {
                let result = try DaxPinBinary.run(["ls", "--json"], runDirectory: run.path)
                return try JSONDecoder().decode(ListJSON.self, from: Data(result.stdout.utf8)).pins.filter { pids.contains($0.pid) }
            }
            #expect(eventually { ((try? listed()) ?? []).filter { $0.source == "registry" }.count == 2 })
            let pins = try listed()
            for (pin, file) in zip(pins.sorted { $0.pid < $1.pid }, [first, second]) {
                #expect(pin.path == file.path)
                #expect(pin.process == "daxpin")
                #expect(pin.state == "held")
                #expect(pin.lease == "write lease")
                let identity = statIdentity(file.path)
                #expect(pin.device == identity.device && pin.inode == identity.inode)
                if Testbed.isActive {
                    #expect(pin.regions.count == 1 && pin.regions.first?.strategy == "pinned" && pin.regions.first?.rkey != 0)
                } else {
                    #expect(pin.regions.isEmpty, "no RDMA device on the host: hold takes the lease only")
                }
            }
            // The table shows the same leases as the JSON.
            let table = try DaxPinBinary.run(["ls"], runDirectory: run.path)
            #expect(table.stdout.hasPrefix("PID "))
            for pin in pins {
                let row = table.stdout.split(separator: "\n").first { $0.hasPrefix("\(pin.pid) ") }
                #expect(row?.contains(pin.path) == true)
                #expect(row?.contains("\(pin.device):\(pin.inode)") == true)
                #expect(row?.contains(pin.state) == true)
                if let region = pin.regions.first { #expect(row?.contains("0x" + String(region.rkey, radix: 16)) == true) }
            }
            // The quitter releases and withdraws by itself (SIGTERM: hold releases and exits);
            // the victim is killed and cleaned by ls.
            quitter.terminate()
            quitter.waitUntilExit()
            #expect(quitter.terminationStatus == 0)
            #expect(run.files == ["\(victim.processIdentifier).json"])
            kill(victim.processIdentifier, SIGKILL)
            victim.waitUntilExit()
            #expect(run.files == ["\(victim.processIdentifier).json"], "kill -9 leaves the file behind")
            #expect(try listed().isEmpty)
            #expect(run.files.isEmpty, "ls removed the dead process's file")
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }

        @Test("ls shows a lease the registry does not know as lease only")
        func listLeaseOnly() throws {
            let run = ScratchRunDirectory()
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            // F_SETLEASE (1024) with F_WRLCK (1), by a process that does not use DaxPin.
            let script = "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR)\nfcntl.fcntl(fd, 1024, 1)\nprint('ok', flush=True)\ntime.sleep(30)"
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            python.arguments = ["-c", script, file.path]
            let out = Pipe()
            python.standardOutput = out
            try python.run()
            defer { kill(python.processIdentifier, SIGKILL); python.waitUntilExit() }
            _ = out.fileHandleForReading.availableData  // "ok": the lease is taken
            let result = try DaxPinBinary.run(["ls", "--json"], runDirectory: run.path)
            let pins = try JSONDecoder().decode(ListJSON.self, from: Data(result.stdout.utf8)).pins
            let pin = try #require(pins.first { $0.pid == python.processIdentifier })
            #expect(pin.state == "lease only" && pin.source == "proc-locks")
            #expect(pin.path == file.path)
            #expect(pin.lease == "write lease")
            #expect(pin.inode == statIdentity(file.path).inode)
        }

        @Test("ls --watch is bounded by --count, as tables or JSON lines")
        func listWatch() throws {
            let run = ScratchRunDirectory()
            let tables = try DaxPinBinary.run(["ls", "--watch", "--count", "3", "--interval", "0.05"], runDirectory: run.path)
            #expect(tables.status == 0)
            #expect(tables.stdout.split(separator: "\n").filter { $0.hasPrefix("PID ") }.count == 3)
            let lines = try DaxPinBinary.run(["ls", "--watch", "--json", "--count", "2", "--interval", "0.05"], runDirectory: run.path)
            let documents = lines.stdout.split(separator: "\n")
            #expect(documents.count == 2)
            for document in documents { _ = try JSONDecoder().decode(ListJSON.self, from: Data(document.utf8)) }
            #expect(try DaxPinBinary.run(["ls", "--count", "2"]).status != 0, "--count needs --watch")
        }

        @Test("--help shows examples, for daxpin, daxpin-server and daxpin-client")
        func helpShowsExamples() throws {
            for arguments in [["--help"], ["probe", "--help"], ["ls", "--help"]] {
                let result = try DaxPinBinary.run(arguments)
                #expect(result.status == 0)
                #expect(result.stdout.contains("Examples:"))
            }
            for command in ["daxpin-server", "daxpin-client"] {
                let result = try DaxPinBinary.run(["--help"], executable: StorageProcess.binaries.appendingPathComponent(command).path,
                                                  environment: ProcessInfo.processInfo.environment, timeout: 60)
                #expect(result.status == 0)
                #expect(result.stdout.contains("Examples:\n  \(command) --"), "\(command) --help: \(result.stdout)")
            }
        }

        // MARK: the registry, called directly

        @Test("a lease publishes itself, pins update the record, release removes the file")
        func registryPublishesAndWithdraws() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 16)
            var lease = try LayoutLease(path: file.path)
            let directory = try #require(PinRegistry.shared.directory)
            let own = "\(directory)/\(getpid()).json"
            func published() throws -> ProcessPinRecord {
                PinRegistry.shared.flush()
                return try JSONDecoder().decode(ProcessPinRecord.self, from: Data(contentsOf: URL(fileURLWithPath: own)))
            }
            var record = try published()
            #expect(record.pid == getpid() && record.processStartTicks == ProcessInfoReader.startTicks(of: getpid()))
            let mine = try #require(record.leases.first { $0.path == file.path })
            #expect(mine.state == "held" && mine.lease == "write lease" && mine.regions.isEmpty)
            #expect(mine.inode == statIdentity(file.path).inode)
            let id = try lease.pin(offset: 0, length: 8192, on: try testDevice())
            record = try published()
            let region = try #require(record.leases.first { $0.path == file.path }?.regions.first)
            #expect(region.id == id.rawValue && region.length == 8192 && region.strategy == "pinned")
            #expect(try lease.withRegion(id) { $0.memoryRegion.remote.rkey } == region.rkey)
            var info = stat()
            #expect(stat(own, &info) == 0 && info.st_mode & 0o777 == 0o600)
            lease.release()
            PinRegistry.shared.flush()
            #expect(!FileManager.default.fileExists(atPath: own), "no leases left: the file is removed")
        }

        @Test("records round-trip through JSONDecoder, escapes included")
        func recordJSONRoundTrip() throws {
            let record = ProcessPinRecord(
                pid: 42, processStartTicks: 123456789, processName: "a \"b\"\\c\n", uid: 1000, updatedAt: 1.7e9 + 0.25,
                leases: [LeaseRecord(serial: 7, path: "/dev/shm/ü\t\u{1}", device: "0:27", inode: 99, access: "read-write",
                                     memory: "tmpfs file", lease: "write lease", state: "revoking", reason: "lease break",
                                     createdAt: 1.7e9, regions: [RegionRecord(id: 1, offset: 4096, length: 8192, strategy: "staged", rkey: 0xdead)])])
            let decoded = try JSONDecoder().decode(ProcessPinRecord.self, from: Data(record.jsonText.utf8))
            #expect(decoded == record)
        }

        @Test("the reader removes files of dead or reused pids and rejects symlinks, links, FIFOs and big files")
        func readerIsSafe() throws {
            let run = ScratchRunDirectory()
            let decoder = JSONDecoder()
            let decode: ([UInt8]) -> ProcessPinRecord? = { try? decoder.decode(ProcessPinRecord.self, from: Data($0)) }
            let me = getpid()
            let start = try #require(ProcessInfoReader.startTicks(of: me))
            func record(pid: Int32, start: UInt64) -> String {
                ProcessPinRecord(pid: pid, processStartTicks: start, processName: "t", uid: getuid(), updatedAt: 0, leases: []).jsonText
            }
            // A live publisher (us) is read.
            try record(pid: me, start: start).write(toFile: "\(run.path)/\(me).json", atomically: true, encoding: .utf8)
            var scan = PinRegistryReader.scan(directories: [run.path], viewerUID: 0, decode: decode)
            #expect(scan.records.map(\.pid) == [me])
            // Our pid with another start time: a reused pid, so the file is stale and removed.
            try record(pid: me, start: start + 1).write(toFile: "\(run.path)/\(me).json", atomically: true, encoding: .utf8)
            scan = PinRegistryReader.scan(directories: [run.path], viewerUID: 0, decode: decode)
            #expect(scan.records.isEmpty && scan.removedStale == ["\(run.path)/\(me).json"])
            // A dead pid: reaped child.
            let child = try Breaker.start(["/bin/true"])
            _ = child.wait()
            try record(pid: child.pid, start: 1).write(toFile: "\(run.path)/\(child.pid).json", atomically: true, encoding: .utf8)
            scan = PinRegistryReader.scan(directories: [run.path], viewerUID: 0, decode: decode)
            #expect(scan.removedStale == ["\(run.path)/\(child.pid).json"] && run.files.isEmpty)
            // Hostile entries named after a live pid (ours): never followed, never read.
            let secret = "\(run.path)/secret"
            try record(pid: me, start: start).write(toFile: secret, atomically: true, encoding: .utf8)
            symlink(secret, "\(run.path)/\(me).json")
            scan = PinRegistryReader.scan(directories: [run.path], viewerUID: 0, decode: decode)
            #expect(scan.records.isEmpty && scan.rejected.map(\.reason) == ["symbolic link"])
            unlink("\(run.path)/\(me).json")
            link(secret, "\(run.path)/\(me).json")
            scan = PinRegistryReader.scan(directories: [run.path], viewerUID: 0, decode: decode)
            #expect(scan.records.isEmpty && scan.rejected.first?.reason == "has 2 hard links")
            unlink("\(run.path)/\(me).json")
            mkfifo("\(run.path)/\(me).json", 0o600)
            scan = PinRegistryReader.scan(directories: [run.path], viewerUID: 0, decode: decode)
            #expect(scan.records.isEmpty && scan.rejected.first?.reason == "not a regular file")
            unlink("\(run.path)/\(me).json")
            try String(repeating: " ", count: PinRegistryReader.maximumFileSize + 1).write(toFile: "\(run.path)/\(me).json", atomically: true, encoding: .utf8)
            scan = PinRegistryReader.scan(directories: [run.path], viewerUID: 0, decode: decode)
            #expect(scan.records.isEmpty && scan.rejected.first?.reason.hasPrefix("larger than") == true)
            unlink("\(run.path)/\(me).json")
            // A file owned by another uid than the process's.
            try record(pid: me, start: start).write(toFile: "\(run.path)/\(me).json", atomically: true, encoding: .utf8)
            chown("\(run.path)/\(me).json", 4242, 4242)
            scan = PinRegistryReader.scan(directories: [run.path], viewerUID: 0, decode: decode)
            #expect(scan.records.isEmpty && scan.rejected.first?.reason.hasPrefix("owned by uid 4242") == true)
            // A symlinked run directory is not followed.
            unlink("\(run.path)/\(me).json")
            let linked = run.path + "-link"
            symlink(run.path, linked)
            defer { unlink(linked) }
            scan = PinRegistryReader.scan(directories: [linked], viewerUID: 0, decode: decode)
            #expect(scan.records.isEmpty && scan.rejected.first?.reason.contains("symlink") == true)
            // An unprivileged viewer does not see other users' processes.
            try record(pid: me, start: start).write(toFile: "\(run.path)/\(me).json", atomically: true, encoding: .utf8)
            #expect(PinRegistryReader.scan(directories: [run.path], viewerUID: 4242, decode: decode).records.isEmpty)
        }

        @Test("/proc/locks leases are parsed, breaking ones and waiters included")
        func kernelLeaseParsing() {
            let text = """
            1: LEASE  ACTIVE    WRITE 1234 00:1b:5678 0 EOF
            1: -> LEASE  BREAKER   UNLCK 999 00:1b:5678 0 EOF
            2: LEASE  BREAKING  UNLCK 4321 fd:01:42 0 EOF
            3: POSIX  ADVISORY  WRITE 77 fe:00:1 0 EOF
            """
            let leases = KernelLease.parse(text)
            #expect(leases == [
                KernelLease(pid: 1234, device: DeviceNumber(major: 0, minor: 27), inode: 5678, type: "WRITE", breaking: false),
                KernelLease(pid: 4321, device: DeviceNumber(major: 253, minor: 1), inode: 42, type: "UNLCK", breaking: true),
            ])
        }

        @Test("the run directory: override, root, XDG_RUNTIME_DIR, /tmp fallback")
        func runDirectoryResolution() {
            #expect(RunDirectory.resolve(environment: { $0 == "DAXPIN_RUN_DIR" ? "/x" : nil }, uid: 0) == "/x")
            #expect(RunDirectory.resolve(environment: { _ in nil }, uid: 0) == "/run/daxpin")
            #expect(RunDirectory.resolve(environment: { $0 == "XDG_RUNTIME_DIR" ? "/run/user/1000" : nil }, uid: 1000) == "/run/user/1000/daxpin")
            #expect(RunDirectory.resolve(environment: { _ in nil }, uid: 1000) == "/tmp/daxpin-1000")
        }

        // MARK: testbed: fs-dax, device-dax, tmpfs with rxe0

        @Test("probe in the testbed: fs-dax stages on rxe0 unless its ODP passed the check, zero-copy refuses; device-dax pins without a lease",
              .enabled(if: Testbed.isActive, Testbed.skipReason))
        func probeTestbedMemoryKinds() throws {
            let device = try Testbed.required("DAXPIN_RDMA_DEVICE")
            for (variable, fileSystem) in [("DAXPIN_FSDAX_EXT4_DIR", "ext4"), ("DAXPIN_FSDAX_XFS_DIR", "xfs")] {
                let file = try ScratchFile(in: try Testbed.required(variable), size: 1 << 20)
                let (result, report) = try probe([file.path, "--device", device])
                #expect(result.status == 0 && report.wouldWork, "\(report.problems)")
                #expect(report.memory?.kind == "fs-dax" && report.memory?.daxAttribute == true)
                #expect(report.mount?.fileSystem == fileSystem)
                #expect(report.device?.name == device && report.device?.odp == KernelBehaviour.running.rxeAdvertisesOnDemandPaging)
                #expect(report.lease?.kind == "write lease")
                switch Testbed.expectedRXEVerdictIsFailure {
                case nil:
                    #expect(report.device?.odpVerdict == "not offered")
                    #expect(report.strategy?.reasons.contains { $0.contains("does not offer On-Demand Paging") } == true)
                case true?:
                    #expect(report.device?.odpVerdict?.hasPrefix("failed verification: ") == true, "\(report.device?.odpVerdict ?? "nil")")
                    #expect(report.strategy?.reasons.contains { $0.contains("failed DaxPin's check") } == true, "\(report.strategy?.reasons ?? [])")
                    let table = try DaxPinBinary.run(["probe", file.path, "--device", device])
                    #expect(table.stdout.contains("ODP check") && table.stdout.contains("failed verification"))
                case false?:
                    #expect(report.device?.odpVerdict == "verified")
                }
                let odp = Testbed.expectedRXEVerdictIsFailure == false
                #expect(report.strategy?.strategy == (odp ? "on-demand paging" : "staged"))
                if !odp { #expect(report.strategy?.reasons.first?.contains("EOPNOTSUPP") == true) }
                let strict = try DaxPinBinary.run(["probe", file.path, "--device", device, "--policy", "zero-copy"])
                if odp {
                    #expect(strict.status == 0, "\(strict.stderr)")
                    #expect(strict.stdout.contains("on-demand paging"), "\(strict.stdout)")
                } else {
                    #expect(strict.status == 1)
                    #expect(strict.stderr.contains("cannot register fs-dax file on \(fileSystem) \(file.path) for RDMA on \(device)"))
                    #expect(strict.stderr.contains("Instead: export a device-dax namespace"))
                }
            }
            let dax = try Testbed.required("DAXPIN_DEVDAX_PATH")
            let (result, report) = try probe([dax, "--device", device])
            #expect(result.status == 0 && report.wouldWork, "\(report.problems)")
            #expect(report.memory?.kind == "device-dax" && report.memory?.alignment == 2 << 20)
            #expect(report.lease?.possible == true && report.lease?.kind == "none")
            #expect(report.strategy?.strategy == "pinned")
            let tmpfs = try ScratchFile(in: try Testbed.required("DAXPIN_TMPFS_DIR"), size: 1 << 20)
            let (tmpfsResult, tmpfsReport) = try probe([tmpfs.path, "--device", device])
            #expect(tmpfsResult.status == 0 && tmpfsReport.strategy?.strategy == "pinned" && tmpfsReport.memory?.kind == "tmpfs")
            Testbed.ran(.objectsOnly)
        }
    }
}
