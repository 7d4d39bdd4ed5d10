import Foundation
import Glibc
import Testing

extension DaxPin {
    /// Bad arguments to the command-line tools: a usage error (exit 64) or a refusal (exit 1)
    /// with the message the BadInput article (DaxPin.docc) quotes, never a crash or a hang.
    @Suite struct BadCommandInput {
        static let cases: [(arguments: [String], status: Int32, message: String)] = [
            (["frobnicate"], 64, "Unexpected argument 'frobnicate'"),
            (["probe"], 64, "Missing expected argument '<path>'"),
            (["probe", "/dev/shm", "--access", "sideways"], 64, "The value 'sideways' is invalid for '--access <access>'"),
            (["probe", "/dev/shm", "--policy", "bogus"], 64, "The value 'bogus' is invalid for '--policy <policy>'"),
            (["ls", "--watch", "--interval", "0"], 64, "--interval must be positive"),
            (["ls", "--watch", "--count", "0"], 64, "--count must be at least 1"),
            (["probe", "/dev/null"], 1, "/dev/null is a character device that is not device-dax"),
            (["hold", "/nonexistent/daxpin", "--seconds", "1"], 1, "/nonexistent/daxpin: no such file; create it first"),
            (["ls", "--watch", "--format", "prometheus"], 64, "--format prometheus writes one snapshot for a collector; run it from a timer instead of --watch"),
            (["ls", "--json", "--format", "prometheus"], 64, "--json and --format prometheus contradict each other"),
            (["ls", "--format", "xml"], 64, "The value 'xml' is invalid for '--format <format>'"),
        ]

        @Test("daxpin refuses bad arguments with a message", arguments: 0..<cases.count)
        func daxpinRefuses(index: Int) throws {
            let (arguments, status, message) = Self.cases[index]
            let result = try DaxPinBinary.run(arguments)
            #expect(result.status == status, "daxpin \(arguments): \(result.stderr)")
            #expect(result.stderr.contains(message), "daxpin \(arguments): \(result.stderr)")
        }

        @Test("probe with an unknown RDMA device names the devices that exist")
        func probeUnknownDevice() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let result = try DaxPinBinary.run(["probe", file.path, "--device", "nosuch9"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("no RDMA device named nosuch9; available: "), "\(result.stderr)")
        }

        @Test("daxpin-server refuses a --metrics-file it cannot write, before any RDMA resource exists")
        func serverMetricsFileRefused() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let server = StorageProcess.binaries.appendingPathComponent("daxpin-server").path
            let process = try StorageProcess([server, "--file", file.path, "--metrics-file", "/nonexistent/daxpin/server.prom"])
            #expect(process.waitExit(timeout: .seconds(30)) == 2, "\(process.everything)")
            #expect(process.stderr.contains("cannot start: --metrics-file: /nonexistent/daxpin: open failed"), "\(process.everything)")
        }

        @Test("daxpin-client refuses bad options before connecting")
        func clientRefuses() throws {
            let client = StorageProcess.binaries.appendingPathComponent("daxpin-client").path
            for (arguments, message) in [(["--block-size", "100"], "--block-size must be a positive multiple of 64"),
                                         (["--queue-depth", "0"], "--queue-depth must be 1...128"),
                                         (["--passes", "0"], "--persist-every and --passes must be positive")] {
                let process = try StorageProcess([client] + arguments)
                #expect(process.waitExit(timeout: .seconds(30)) == 64, "\(process.everything)")
                #expect(process.stderr.contains(message), "\(process.everything)")
            }
        }
    }
}
