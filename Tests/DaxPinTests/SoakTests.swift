@testable import DaxPin
import Foundation
import Testing

extension DaxPin {
    /// The reliability soak (Tests/Soak, `daxpin-soak`), shortened: holder processes with
    /// several threads take, pin, write, break (truncate, open, hole punch) or release, and
    /// re-take leases under a watchdog that fails on the first stalled thread. In the testbed a
    /// peer RDMA WRITEs into the pinned regions while the breaks arrive; its acknowledged WRITEs
    /// are looked for in the file after every cycle. The full counts (100,000 cycles on the
    /// host, 20,000 per testbed kernel) run in `Scripts/reliability --soak`.
    @Suite struct SoakRuns {
        static var path: String {
            let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
            return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("daxpin-soak").path
        }

        static func soak(_ arguments: [String], timeout: Double) throws -> DaxPinBinary.Result {
            try #require(FileManager.default.isExecutableFile(atPath: path), "swift build builds \(path)")
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("daxpin-soak-\(getpid())").path
            return try DaxPinBinary.run(["run", "--output", output] + arguments, executable: path,
                                        environment: ProcessInfo.processInfo.environment, timeout: timeout)
        }

        @Test("host: 2000 cycles with the registration stand-in, no hang, nothing lost or leaked")
        func hostSoak() throws {
            let result = try Self.soak(["--processes", "2", "--threads", "2", "--cycles", "500", "--bound", "30",
                                        "--directory", HostDirs.tmpfs], timeout: 300)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr.suffix(2000))")
            #expect(result.stdout.contains("soak: 2000 cycles"), "\(result.stdout)")
            #expect(result.stdout.contains("no RDMA peer (the registration stand-in moves no bytes"), "\(result.stdout)")
        }

        /// The peer's counts from a summary line: acknowledged WRITEs checked in the file, and
        /// WRITEs at or after a revocation that were refused; nil without them.
        static func peerCounts(_ summary: Substring) -> (checked: Int, refused: Int)? {
            guard let match = summary.firstMatch(of: /(\d+) acknowledged peer RDMA WRITEs checked, 0 lost, (\d+) peer WRITEs at or after revocation refused/),
                  let checked = Int(match.1), let refused = Int(match.2) else { return nil }
            return (checked, refused)
        }

        @Test("testbed: cycles on rxe0 over tmpfs and ext4-dax, no hang, nothing lost or leaked (VmPin back to 0)",
              .enabled(if: Testbed.isActive, Testbed.skipReason))
        func testbedSoak() throws {
            let device = try Testbed.required("DAXPIN_RDMA_DEVICE")
            let cycles = Testbed.env["DAXPIN_SOAK_CYCLES"] ?? "50"
            for directory in [HostDirs.tmpfs, try Testbed.required("DAXPIN_FSDAX_EXT4_DIR")] {
                let result = try Self.soak(["--processes", "2", "--threads", "2", "--cycles", cycles, "--bound", "120",
                                            "--device", device, "--directory", directory], timeout: 3000)
                #expect(result.status == 0, "\(directory): \(result.stdout)\(result.stderr.suffix(2000))")
                #expect(result.stdout.contains("0 hangs, 0 lost acknowledged writes, 0 leaks"), "\(result.stdout)")
                let summary = try #require(result.stdout.split(separator: "\n").last { $0.hasPrefix("soak:") }, "\(result.stdout)")
                print(summary)
                // The peer moved bytes: acknowledged WRITEs were found in the file, and every
                // cycle's WRITE after the revocation was refused.
                let peer = try #require(Self.peerCounts(summary), "\(summary)")
                #expect(peer.checked > 0, "\(directory): no acknowledged peer WRITE was checked: \(summary)")
                #expect(peer.refused >= 2 * 2 * (Int(cycles) ?? 0), "\(directory): one refused probe per cycle at least: \(summary)")

            }
            Testbed.ran(.movedBytes)
        }
    }
}
