import DaxPin
import DaxPinVisibility
import Glibc

/// One process holding long-term pins in `daxpin ls --all`; an element of `processes` in
/// the `--json` output (schema in TheDaxpinCommand.md).
struct ListedProcess: Codable, Equatable {
    /// The process id.
    var pid: Int32
    /// Its `/proc/<pid>/comm`.
    var process: String
    /// Its effective uid (the owner of `/proc/<pid>`).
    var uid: UInt32
    /// Whether it publishes DaxPin leases (its exact rows are in `pins`).
    var daxpin: Bool
    /// `VmPin` in bytes, absent when unreadable.
    var vmPinBytes: Int?
    /// Its MRs, per device (rdma netlink).
    var memoryRegions: [DeviceRegions]
    /// Its io_uring instances with registered buffers.
    var ioUring: [Ring]
    /// Its shared file mappings, one per file.
    var mappings: [Mapping]
    /// One per mapping at risk.
    var warnings: [Warning]

    /// The MRs of one device.
    struct DeviceRegions: Codable, Equatable {
        /// The RDMA device (`rxe0`).
        var device: String
        /// How many MRs, and their bytes.
        var count: Int, bytes: UInt64
        /// Each MR.
        var regions: [Region]
    }

    /// One MR; `rkey` and `lkey` only for root (the kernel sends them only with CAP_NET_ADMIN).
    struct Region: Codable, Equatable {
        /// The MR's number, its bytes and its protection domain's number.
        var mrn: UInt32?, length: UInt64?, pdn: UInt32?
        /// Its keys.
        var rkey: UInt32?, lkey: UInt32?
    }

    /// One io_uring instance with registered buffers.
    struct Ring: Codable, Equatable {
        /// The ring's descriptor in its process.
        var fd: Int32
        /// Registered buffers (empty slots not counted).
        var bufferCount: Int
        /// False when the kernel listed the count but not the addresses (its lock was busy).
        var addressesListed: Bool
        /// The buffers with their addresses.
        var buffers: [Buffer]
    }

    /// One registered buffer.
    struct Buffer: Codable, Equatable {
        /// Its slot, user address and bytes.
        var index: Int, address: UInt64, length: UInt64
    }

    /// One shared file mapping (all ranges of one file).
    struct Mapping: Codable, Equatable {
        /// The path `maps` shows.
        var path: String
        /// The file's `major:minor` and inode.
        var device: String, inode: UInt64
        /// Whether any range is writable, and the bytes mapped over all ranges.
        var writable: Bool, bytes: UInt64
        /// Each mapped range (VMA).
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
        /// `[start, end)` in the process, the file offset of `start`, and its access.
        var start: UInt64, end: UInt64, offset: UInt64, writable: Bool
    }

    /// A warning: `evidence` is `exact` or `circumstantial`.
    struct Warning: Codable, Equatable {
        /// The mapped file at risk.
        var path: String
        /// `exact` or `circumstantial`, and why, in words.
        var evidence: String, reason: String
    }
}

/// The `--json` document of `daxpin ls --all`: the registry view of `daxpin ls` (`pins`,
/// `rejected`) and every process the kernel shows holding long-term pins.
struct MachinePinList: Codable {
    /// The registry view, as `daxpin ls` shows it.
    var pins: [ListedPin]
    /// Registry files skipped for safety.
    var rejected: [PinList.Rejected]
    /// Every pinning process (and DaxPin publisher) the viewer may see, by pid.
    var processes: [ListedProcess]
    /// MRs no process is named for, per device and owner (root only): kernel modules', and user
    /// MRs whose registering thread has exited (the kernel then reports no pid).
    var unattributedMemoryRegions: [UnattributedRegions]
    /// Sources that could not be read, with why.
    var problems: [String]
    /// Who looked.
    var viewer: Viewer

    /// MRs of one owner on one device: a kernel module's name, or `exited thread`.
    struct UnattributedRegions: Codable, Equatable {
        /// The device and the owner.
        var device: String, owner: String
        /// How many MRs, and their bytes.
        var count: Int, bytes: UInt64
    }

    /// Who looked: root sees every process and the MR keys.
    struct Viewer: Codable, Equatable {
        /// The viewer's effective uid; whether every user's processes and the MR keys are shown.
        var uid: UInt32, allUsers: Bool, keysShown: Bool
    }

    /// Collects the registry view and the kernel's view for the calling user.
    static func collect() -> MachinePinList {
        let viewer = Syscalls.effectiveUserID()
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
