@testable import DaxPin
import Foundation
import Glibc
import Testing

/// A process started for a test that must never outlive it: output goes to a scratch file,
/// `stop()` (or deinit, as the backstop) sends SIGTERM, then SIGKILL after a bounded wait,
/// and reaps it.
final class ChildProcess {
    let process = Process()
    let outputPath: String

    /// Starts `executable ARGS` (stdout and stderr to a scratch file).
    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        outputPath = "/tmp/daxpin-child-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        defer { try? output.close() }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Waits (bounded) until the output has a line starting with `prefix`; nil if the process
    /// exited or the time ran out first.
    func line(startingWith prefix: String, timeout: Duration = .seconds(60)) -> String? {
        var found: String?
        _ = eventually(timeout: timeout) {
            found = output.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init)
            return found != nil || !process.isRunning
        }
        return found ?? output.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init)
    }

    /// SIGTERM, up to 10 s to exit, then SIGKILL; always reaped. Returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning {
            kill(pid, SIGTERM)
            if !eventually(timeout: .seconds(10), { !process.isRunning }) { kill(pid, SIGKILL) }
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
        unlink(outputPath)
    }
}

/// Tools/unleased-pin: pins a file (RDMA MR or io_uring buffers) without a lease.
enum UnleasedPin {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Tools/unleased-pin/unleased_pin.c").path

    /// Next to the test binary, where Scripts/test builds it; built here when missing (a plain
    /// `swift test`), the way Scripts/test does.
    static func path() throws -> String {
        let path = URL(fileURLWithPath: DaxPinBinary.path).deletingLastPathComponent().appendingPathComponent("unleased_pin").path
        if !FileManager.default.isExecutableFile(atPath: path) {
            let build = try DaxPinBinary.run(["-O2", "-Wall", "-Wextra", "-Werror", "-o", path, source, "-libverbs"],
                                             executable: "/usr/bin/cc", environment: ProcessInfo.processInfo.environment, timeout: 120)
            try #require(build.status == 0, "cc \(source): \(build.stderr)")
        }
        return path
    }

    /// What the program printed once pinning: its pid, the file mapping's address and length,
    /// and (rdma) the MR's rkey or (io-uring) the anonymous buffer's address.
    struct Ready {
        let pid: Int32
        let address: UInt64
        let length: UInt64
        let rkey: UInt32?
        let anonymousAddress: UInt64?

        init(_ line: String) throws {
            let words = line.split(separator: " ").map(String.init)
            func value(after key: String, occurrence: Int = 0) -> String? {
                let indices = words.indices.filter { words[$0] == key }
                guard indices.count > occurrence, indices[occurrence] + 1 < words.count else { return nil }
                return words[indices[occurrence] + 1]
            }
            func hex(_ text: String?) -> UInt64? { text.flatMap { UInt64($0.dropFirst(2), radix: 16) } }
            pid = try #require(value(after: "pid").flatMap { Int32($0) })
            address = try #require(hex(value(after: "address")))
            length = try #require(value(after: "length").flatMap { UInt64($0) })
            rkey = hex(value(after: "rkey")).map { UInt32($0) }
            anonymousAddress = hex(value(after: "anonymous"))
        }
    }

    /// Starts it (optionally through `wrapper`, e.g. setpriv) and waits for its ready line.
    static func start(_ arguments: [String], wrapper: [String] = []) throws -> (ChildProcess, Ready) {
        let program = try path()
        let child = try wrapper.isEmpty ? ChildProcess(program, arguments)
            : ChildProcess(wrapper[0], Array(wrapper.dropFirst()) + [program] + arguments)
        guard let line = child.line(startingWith: "ready ") else {
            child.stop()
            Issue.record("unleased_pin \(arguments) did not get ready: \(child.output)")
            throw TestbedIncompleteRun()
        }
        return (child, try Ready(line))
    }

    struct TestbedIncompleteRun: Error {}
}

/// `setpriv` arguments that run a command as nobody.
let asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

/// `daxpin ls --all --json`, decoded independently of the command's own types.
struct AllJSON: Decodable {
    struct Process: Decodable {
        struct Device: Decodable {
            struct Region: Decodable { let mrn: UInt32?; let length: UInt64?; let pdn: UInt32?; let rkey: UInt32?; let lkey: UInt32? }
            let device: String; let count: Int; let bytes: UInt64; let regions: [Region]
        }
        struct Ring: Decodable {
            struct Buffer: Decodable { let index: Int; let address: UInt64; let length: UInt64 }
            let fd: Int32; let bufferCount: Int; let addressesListed: Bool; let buffers: [Buffer]
        }
        struct Mapping: Decodable {
            let path: String; let device: String; let inode: UInt64; let writable: Bool; let bytes: UInt64
            let memory: String?; let kind: String; let lease: String; let state: String
        }
        struct Warning: Decodable { let path: String; let evidence: String; let reason: String }
        let pid: Int32; let process: String; let uid: UInt32; let daxpin: Bool; let vmPinBytes: Int?
        let memoryRegions: [Device]; let ioUring: [Ring]; let mappings: [Mapping]; let warnings: [Warning]
    }
    struct Viewer: Decodable { let uid: UInt32; let allUsers: Bool; let keysShown: Bool }
    let pins: [ListJSON.Pin]
    let processes: [Process]
    let problems: [String]
    let viewer: Viewer

    func process(_ pid: Int32) -> Process? { processes.first { $0.pid == pid } }
}

/// Runs `daxpin ls --all` as JSON and as a table (the same moment, as far as two runs allow)
/// and checks that every process, MR device, ring, mapping and warning of the JSON has its row.
func listAll(wrapper: [String] = [], runDirectory: String? = nil) throws -> (json: AllJSON, text: String, table: String) {
    let arguments = ["ls", "--all", "--json"]
    let environment = DaxPinBinary.environment(runDirectory: runDirectory)
    func run(_ arguments: [String]) throws -> DaxPinBinary.Result {
        if wrapper.isEmpty { return try DaxPinBinary.run(arguments, runDirectory: runDirectory) }
        return try DaxPinBinary.run(Array(wrapper.dropFirst()) + [DaxPinBinary.path] + arguments, executable: wrapper[0],
                                    environment: environment, timeout: 60)
    }
    let json = try run(arguments)
    try #require(json.status == 0, "daxpin ls --all --json: \(json.stderr)")
    let decoded = try JSONDecoder().decode(AllJSON.self, from: Data(json.stdout.utf8))
    let table = try run(["ls", "--all"])
    try #require(table.status == 0, "daxpin ls --all: \(table.stderr)")
    return (decoded, json.stdout, table.stdout)
}

/// Checks that the table shows `process` as its JSON does.
func expectTableMatches(_ process: AllJSON.Process, table: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let rows = table.split(separator: "\n").filter { $0.hasPrefix("\(process.pid) ") }
    #expect(!rows.isEmpty, "no table row for pid \(process.pid):\n\(table)", sourceLocation: sourceLocation)
    for device in process.memoryRegions {
        #expect(rows.contains { $0.contains(" MRs ") && $0.contains("\(device.device): \(device.count) MR(s)") },
                "MRs of \(device.device)", sourceLocation: sourceLocation)
    }
    for ring in process.ioUring where ring.bufferCount > 0 {
        #expect(rows.contains { $0.contains(" io_uring ") && $0.contains("fd \(ring.fd): \(ring.bufferCount) buffer(s)") },
                "ring fd \(ring.fd)", sourceLocation: sourceLocation)
    }
    for mapping in process.mappings {
        #expect(rows.contains { $0.contains(" mapping ") && $0.contains(mapping.path) && $0.contains(mapping.state)
                    && $0.contains("\(mapping.device):\(mapping.inode)") }, "mapping \(mapping.path)", sourceLocation: sourceLocation)
    }
    for warning in process.warnings {
        #expect(rows.contains { $0.contains(" WARNING ") && $0.contains(warning.path) && $0.contains("(\(warning.evidence))") },
                "warning on \(warning.path)", sourceLocation: sourceLocation)
    }
    #expect(rows.filter { $0.contains(" WARNING ") }.count == process.warnings.count, sourceLocation: sourceLocation)
}
