import DaxPin
import Foundation
import Glibc

/// One lease in `daxpin ls`, joined from a process's registry file and `/proc/locks`;
/// encoded as an element of `pins` in the `--json` output.
struct ListedPin: Codable, Equatable {
    /// The holder.
    var pid: Int32
    /// Its `/proc/<pid>/comm`.
    var process: String
    /// Its uid.
    var uid: UInt32
    /// The leased path (for a lease the registry does not know: found through /proc/<pid>/fd, or "?").
    var path: String
    /// `major:minor` of the file's device.
    var device: String
    /// The inode.
    var inode: UInt64
    /// `read-only`, `read-write`, or nil for a lease only the kernel knows.
    var access: String?
    /// What backs the memory, nil for a lease only the kernel knows.
    var memory: String?
    /// The lease the kernel granted (`write lease`, `read lease`, `no lease (...)`).
    var lease: String
    /// `held`, `breaking`, `revoking`, `revoked`, `lease only` or `lease lost`.
    var state: String
    /// Seconds since the lease was taken, nil when unknown.
    var ageSeconds: Double?
    /// The pinned regions (empty for a lease without pins).
    var regions: [RegionRecord]
    /// `registry` or `proc-locks`.
    var source: String
}

/// The `--json` document of `daxpin ls`.
struct PinList: Codable {
    /// Every visible lease, by pid.
    var pins: [ListedPin]
    /// Registry files skipped for safety (symlinks, wrong owner, too large), with the reason.
    var rejected: [Rejected]
    /// One skipped file.
    struct Rejected: Codable { var path: String; var reason: String }
}

/// Collects the pins visible to the caller.
struct PinCollector {
    /// Directories to scan: `DAXPIN_RUN_DIR` alone when set in a debug build, else the
    /// caller's own run directory, or every user's when root.
    static func directories() -> [String] {
        if let explicit = RunDirectory.override(environment: { ProcessInfo.processInfo.environment[$0] }) {
            return [explicit]
        }
        return Syscalls.effectiveUserID() == 0 ? RunDirectory.allCandidates() : [RunDirectory.forCurrentProcess()]
    }

    func collect() -> PinList {
        let viewer = Syscalls.effectiveUserID()
        let decoder = JSONDecoder()
        let scan = PinRegistryReader.scan(directories: Self.directories(), viewerUID: viewer) { bytes in
            try? decoder.decode(ProcessPinRecord.self, from: Data(bytes))
        }
        let now = wallClockSeconds()
        var kernelLeases = KernelLease.current()
        var pins: [ListedPin] = []
        for record in scan.records {
            for lease in record.leases {
                let match = kernelLeases.firstIndex {
                    $0.pid == record.pid && $0.device.description == lease.device && $0.inode == lease.inode
                }
                let kernel = match.map { kernelLeases.remove(at: $0) }
                pins.append(ListedPin(
                    pid: record.pid, process: record.processName, uid: record.uid, path: lease.path,
                    device: lease.device, inode: lease.inode, access: lease.access, memory: lease.memory,
                    lease: lease.lease, state: Self.state(of: lease, kernel: kernel), ageSeconds: now - lease.createdAt,
                    regions: lease.regions, source: "registry"))
            }
        }
        for kernel in kernelLeases {
            guard let owner = ProcessInfoReader.ownerUID(of: kernel.pid), viewer == 0 || owner == viewer else { continue }
            pins.append(ListedPin(
                pid: kernel.pid, process: ProcessInfoReader.name(of: kernel.pid) ?? "?", uid: owner,
                path: Self.openPath(pid: kernel.pid, device: kernel.device, inode: kernel.inode) ?? "?",
                device: kernel.device.description, inode: kernel.inode, access: nil, memory: nil,
                lease: "\(kernel.type.lowercased()) lease", state: kernel.breaking ? "breaking (lease only)" : "lease only",
                ageSeconds: nil, regions: [], source: "proc-locks"))
        }
        pins.sort { ($0.pid, $0.path) < ($1.pid, $1.path) }
        return PinList(pins: pins, rejected: scan.rejected.map { .init(path: $0.path, reason: $0.reason) })
    }

    /// The registry's phase refined by what the kernel says about the lease.
    static func state(of lease: LeaseRecord, kernel: KernelLease?) -> String {
        switch lease.state {
        case "held":
            if let kernel { return kernel.breaking ? "breaking" : "held" }
            // No lease to find for device-dax ("no lease (...)"); otherwise the kernel dropped it.
            return lease.lease.hasPrefix("no lease") ? "held" : "lease lost"
        case "revoking":
            return lease.reason == "lease break" ? "revoking (lease break)" : "revoking"
        default:
            return lease.state
        }
    }

    /// The path under which `pid` has the file open, from /proc/<pid>/fd.
    static func openPath(pid: Int32, device: DeviceNumber, inode: UInt64) -> String? {
        let directory = "/proc/\(pid)/fd"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        for name in names {
            let link = "\(directory)/\(name)"
            guard let info = try? Syscalls.stat(link), DeviceNumber(info.st_dev) == device, UInt64(info.st_ino) == inode else { continue }
            return try? FileManager.default.destinationOfSymbolicLink(atPath: link)
        }
        return nil
    }
}
