import ArgumentParser
import DaxPin
import Foundation

/// `daxpin probe PATH`: what pinning PATH for RDMA would do, without pinning anything.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Report what pinning a file for RDMA would do, without pinning it.",
        discussion: """
        Reports the memory kind (device-dax and its alignment, fs-dax, tmpfs, page cache, other),
        the file system and its mount options, the DAX attribute, the RDMA device's On-Demand
        Paging support per transport, whether a lease can be taken (it is taken on a fresh
        descriptor and released at once; never when another process holds one), the kernel's
        lease-break-time, and the strategy the policy would choose, and why.
        Exit status: 0 when the pin would work, 1 otherwise (the reasons are printed).

        Examples:
          daxpin probe /dev/shm/buffer
          daxpin probe /mnt/pmem/data --device rxe0 --access read
          daxpin probe /mnt/pmem/data --policy zero-copy     refuse rather than copy
          daxpin probe /dev/dax0.0 --json
        """
    )

    /// `--access`.
    enum AccessOption: String, ExpressibleByArgument, CaseIterable {
        case read, readWrite = "read-write"
        var access: Access { self == .read ? .readOnly : .readWrite }
    }

    /// `--policy`.
    enum PolicyOption: String, ExpressibleByArgument, CaseIterable {
        case auto, zeroCopy = "zero-copy"
        var policy: StrategyPolicy { self == .auto ? .auto : .zeroCopy }
    }

    @Argument(help: "The file or device-dax node to probe.")
    var path: String

    @Option(help: "The RDMA device (default: the first one present).")
    var device: String?

    @Option(help: "How peers would use the memory.")
    var access: AccessOption = .readWrite

    @Option(help: "The strategy policy to forecast: auto may stage (copy); zero-copy refuses instead.")
    var policy: PolicyOption = .auto

    @Flag(help: "Print JSON (schema in README.md).")
    var json = false

    func run() throws {
        let report = Prober(path: path, access: access.access, deviceName: device, policy: policy.policy).run()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(ProbeRenderer(report: report, terminal: .standardOutput).text)
        }
        if !report.wouldWork {
            if !json { printError("daxpin probe: a pin would not work: " + report.problems.joined(separator: "; ")) }
            throw ExitCode(1)
        }
    }
}
