@testable import DaxPin
import Foundation
import Testing

extension DaxPin {
    /// One reading of kernel release strings: the library's ``KernelVersion`` and the scripts'
    /// `Scripts/lib/kernel-release.sh` agree on every form Debian ships, and the script's copies
    /// of ``KernelBehaviour`` rows agree with the table.
    @Suite struct KernelReleases {
        static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Scripts/lib/kernel-release.sh").path

        /// Runs `FUNCTION RELEASE` from the script; its stdout and exit status.
        static func shell(_ function: String, _ release: String) throws -> (status: Int32, stdout: String) {
            let result = try DaxPinBinary.run(["-c", "source \"$0\"; \(function) \"$1\"", script, release],
                                              executable: "/bin/bash", environment: [:], timeout: 10)
            return (result.status, result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }

        @Test("release strings parse the same in Swift and in the scripts",
              arguments: [("7.3-amd64", 7, 3), ("7.2.13+deb14-amd64", 7, 2), ("6.1.0-57-amd64", 6, 1),
                          ("6.15.0-rc2-amd64", 6, 15), ("10.0.1", 10, 0)])
        func parsesDebianReleases(release: String, major: Int, minor: Int) throws {
            #expect(KernelVersion(release: release) == KernelVersion(major, minor))
            let parsed = try Self.shell("kernel_major_minor", release)
            #expect(parsed.status == 0 && parsed.stdout == "\(major) \(minor)", "\(release): \(parsed)")
        }

        @Test("strings without major.minor are refused by the scripts", arguments: ["", "7", "amd64", "x.y-amd64"])
        func refusesNonReleases(release: String) throws {
            #expect(try Self.shell("kernel_major_minor", release).status != 0)
        }

        @Test("the scripts' kernel rows match KernelBehaviour",
              arguments: ["6.1.0-57-amd64", "6.14.0-amd64", "6.15.0-amd64", "7.0.1-amd64", "7.1-amd64", "7.2.13+deb14-amd64", "7.3-amd64"])
        func rowsMatchTheTable(release: String) throws {
            let table = KernelBehaviour(version: try #require(KernelVersion(release: release)))
            #expect((try Self.shell("kernel_rxe_works_across_netns", release).status == 0) == table.rxeWorksAcrossNetworkNamespaces)
            #expect((try Self.shell("kernel_rxe_advertises_odp", release).status == 0) == table.rxeAdvertisesOnDemandPaging)
        }
    }
}
