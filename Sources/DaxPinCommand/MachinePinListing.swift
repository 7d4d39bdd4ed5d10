import DaxPin
import Glibc

/// One process holding long-term pins in `daxpin ls --all`; an element of `processes` in
/// the `--json` output (schema in TheDaxpinCommand.md).
struct ListedProcess: Codable, Equatable {
    var pid: Int32
    var process: String
    var uid: UInt32
    /// Whether it publishes DaxPin leases (its exact rows are in `pins`).
    var daxpin: Bool
    /// `VmPin` in bytes, absent when unreadable.
    var vmPinBytes: Int?
    var memoryRegions: [DeviceRegions]
    var ioUring: [Ring]
    var mappings: [Mapping]
    var warnings: [Warning]

    /// The MRs of one device.
    struct DeviceRegions: Codable, Equatable {
        var device: String
        var count: Int
        var bytes: UInt64
        var regions: [Region]
    }

    /// One MR; `rkey` and `lkey` only for root (the kernel sends them only with CAP_NET_ADMIN).
    struct Region: Codable, Equatable {
        var mrn: UInt32?
        var length: UInt64?
        var pdn: UInt32?
        var rkey: UInt32?
        var lkey: UInt32?
    }

    /// One io_uring instance with registered buffers.
    struct Ring: Codable, Equatable {
        var fd: Int32
        var bufferCount: Int
        /// False when the kernel listed the count but not the addresses (its lock was busy).
        var addressesListed: Bool
        var buffers: [Buffer]
    }

    /// One registered buffer.
    struct Buffer: Codable, Equatable {
        var index: Int
        var address: UInt64
        var length: UInt64
    }

    /// One shared file mapping (all ranges of one file).
    struct Mapping: Codable, Equatable {
        var path: String
        var device: String
        var inode: UInt64
        var writable: Bool
        var bytes: UInt64
        var ranges: [MappedRange]
        /// `MemoryKind` in words (`tmpfs file`), absent when it could not be inspected.
        var memory: String?
        /// `device-dax`, `fs-dax`, `tmpfs`, `page-cache`, `other` or `unknown`.
        var kind: String
        /// `write lease`, `read lease`, `none`, or `... of pid N` when another process holds it.
        var lease: String
        /// `leased`, `AT RISK`, `read-only`, `not pinned`, `no long-term pin (fs-dax)`,
        /// `cannot be truncated` or `unknown`.
        var state: String
        /// Why the memory kind is unknown.
        var problem: String?
    }

    /// One mapped range.
    struct MappedRange: Codable, Equatable {
        var start: UInt64
        var end: UInt64
        var offset: UInt64
        var writable: Bool
    }

    /// A warning: `evidence` is `exact` or `circumstantial`.
    struct Warning: Codable, Equatable {
        var path: String
        var evidence: String
        var reason: String
    }
}

/// The `--json` document of `daxpin ls --all`: the registry view of `daxpin ls` (`pins`,
/// `rejected`) and every process the kernel shows holding long-term pins.
struct MachinePinList: Codable {
    var pins: [ListedPin]
    var rejected: [PinList.Rejected]
    var processes: [ListedProcess]
    /// MRs no process is named for, per device and owner (root only): kernel modules', and user
    /// MRs whose registering thread has exited (the kernel then reports no pid).
    var unattributedMemoryRegions: [UnattributedRegions]
    /// Sources that could not be read, with why.
    var problems: [String]
    var viewer: Viewer

    /// MRs of one owner on one device: a kernel module's name, or `exited thread`.
    struct UnattributedRegions: Codable, Equatable {
        var device: String
        var owner: String
        var count: Int
        var bytes: UInt64
    }

    /// Who looked: root sees every process and the MR keys.
    struct Viewer: Codable, Equatable {
        var uid: UInt32
        var allUsers: Bool
        var keysShown: Bool
    }

    /// Collects the registry view and the kernel's view for the calling user.
    static func collect() -> MachinePinList {
        let viewer = geteuid()
        let registry = PinCollector().collect()
        let registryPIDs = Set(registry.pins.filter { $0.source == "registry" }.map(\.pid))
        let survey = PinSurvey.collect(viewerUID: viewer, registryPIDs: registryPIDs)
        let leases = KernelLease.current()
        let processes = survey.processes.map { ListedProcess(PinRiskAssessment.assess($0, leases: leases), keysShown: viewer == 0) }
        var kernel: [String: UnattributedRegions] = [:]
        for entry in survey.unattributedMemoryRegions {
            let owner = entry.kernelOwner ?? "exited thread"
            kernel["\(entry.device) \(owner)", default: UnattributedRegions(device: entry.device, owner: owner, count: 0, bytes: 0)].count += 1
            kernel["\(entry.device) \(owner)"]?.bytes += entry.length ?? 0
        }
        return MachinePinList(pins: registry.pins, rejected: registry.rejected, processes: processes,
                              unattributedMemoryRegions: kernel.values.sorted { ($0.device, $0.owner) < ($1.device, $1.owner) },
                              problems: survey.problems, viewer: Viewer(uid: viewer, allUsers: viewer == 0, keysShown: viewer == 0))
    }
}

extension ListedProcess {
    /// The JSON shape of an assessed process; MR keys only when `keysShown`.
    init(_ assessed: AssessedProcess, keysShown: Bool) {
        let facts = assessed.facts
        var devices: [String: DeviceRegions] = [:]
        for entry in facts.memoryRegions {
            let region = Region(mrn: entry.number, length: entry.length, pdn: entry.protectionDomain,
                                rkey: keysShown ? entry.rkey : nil, lkey: keysShown ? entry.lkey : nil)
            devices[entry.device, default: DeviceRegions(device: entry.device, count: 0, bytes: 0, regions: [])].regions.append(region)
            devices[entry.device]?.count += 1
            devices[entry.device]?.bytes += entry.length ?? 0
        }
        self.init(
            pid: facts.pid, process: facts.name, uid: facts.uid, daxpin: facts.publishesRegistry, vmPinBytes: facts.pinnedBytes,
            memoryRegions: devices.values.sorted { $0.device < $1.device },
            ioUring: facts.rings.map { ring in
                Ring(fd: ring.fd, bufferCount: ring.bufferCount, addressesListed: ring.addressesListed,
                     buffers: ring.buffers.map { Buffer(index: $0.index, address: $0.address, length: $0.length) })
            },
            mappings: assessed.files.map { judged in
                let file = judged.file
                return Mapping(path: file.path, device: file.device.description, inode: file.inode, writable: file.writable,
                               bytes: file.mappedBytes,
                               ranges: file.ranges.map { MappedRange(start: $0.start, end: $0.end, offset: $0.offset, writable: $0.writable) },
                               memory: file.kind.map { "\($0)" }, kind: file.kind?.probeKind ?? "unknown",
                               lease: judged.leaseText, state: judged.verdict.label, problem: file.inspectionProblem)
            },
            warnings: assessed.warnings.map { Warning(path: $0.path, evidence: $0.evidence.rawValue, reason: $0.reason) })
    }
}
