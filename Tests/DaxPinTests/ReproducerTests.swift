@testable import DaxPin
import Foundation
import Testing

extension DaxPin {
    /// Tools/rxe-odp-write-repro, the standalone C reproducer of rxe's ODP misplacement, run on
    /// every testbed kernel (Scripts/test builds it next to the test binary): its verdict must
    /// match the library's kernel table, so a kernel that fixes the bug (or breaks pinned MRs)
    /// shows up as a failing test here, with the reproducer's output.
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason)) struct KernelReproducer {
        static var path: String {
            let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
            return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("rxe_odp_write").path
        }

        static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
            let result = try DaxPinBinary.run(arguments, executable: path, environment: ProcessInfo.processInfo.environment,
                                              timeout: 120)
            return (result.status, result.stdout + result.stderr)
        }

        @Test("the rxe ODP reproducer agrees with the kernel table on rxe0 and rxe3; pinned MRs are exact")
        func reproducerMatchesTheTable() throws {
            try #require(FileManager.default.isExecutableFile(atPath: Self.path), "Scripts/test builds \(Self.path)")
            let kernel = KernelBehaviour.running
            for device in [try Testbed.required("DAXPIN_RDMA_DEVICE"), try Testbed.required("DAXPIN_JUMBO_DEVICE")] {
                let odp = try Self.run([device])
                // The fixed rxe (Scripts/testbed --rxe fixed) must place every byte: exit 0.
                let misplaces = kernel.rxeOnDemandPagingMisplacesWrites && !Testbed.rxeIsFixed
                let expected: Int32 = !kernel.rxeAdvertisesOnDemandPaging ? 2 : misplaces ? 1 : 0
                #expect(odp.status == expected, "\(device): \(odp.output)")
                #expect(odp.output.contains("RESULT: "), "\(odp.output)")
                let pinned = try Self.run([device, "--pinned"])
                #expect(pinned.status == 0, "\(device) --pinned: \(pinned.output)")
                #expect(pinned.output.contains("RESULT: 0 of "), "\(pinned.output)")
            }
            Testbed.ran(.movedBytes)
        }
    }
}
