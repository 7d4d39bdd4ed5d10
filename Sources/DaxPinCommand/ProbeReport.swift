import DaxPin
import Glibc

/// Everything `daxpin probe` finds out about a path; encoded as the `--json` output.
struct ProbeReport: Codable {
    /// The memory behind the path.
    struct Memory: Codable {
        /// `device-dax`, `fs-dax`, `tmpfs`, `page-cache` or `other`.
        var kind: String
        /// `MemoryKind.description`, e.g. `fs-dax file on ext4`.
        var description: String
        /// The file system type, nil for device-dax.
        var fileSystem: String?
        /// Mapping alignment of device-dax in bytes (offsets and lengths must be multiples).
        var alignment: Int?
        /// `STATX_ATTR_DAX`: true, false, or nil when not reported.
        var daxAttribute: Bool?
        /// Size in bytes.
        var size: Int
        /// `major:minor` of the file's device.
        var device: String
        /// The inode number.
        var inode: UInt64
    }

    /// ODP support of one transport.
    struct Transport: Codable {
        var send, receive, write, read, atomic: Bool
    }

    /// The RDMA device the pin would use.
    struct Device: Codable {
        /// Its name, or `none`.
        var name: String
        /// Every device present.
        var available: [String]
        /// Whether the device offers On-Demand Paging at all.
        var odp: Bool
        /// ODP per transport (reliable connected, unreliable connected, unreliable datagram).
        var odpRC, odpUC, odpUD: Transport
        /// DaxPin's verdict on the device's ODP for this access: `verified`, `not offered`, or
        /// `failed verification: ...` (why it is not trusted). Nil without a device.
        var odpVerdict: String?
        /// The largest registration in bytes.
        var maxMRSize: UInt64?
        /// The verbs this build of DaxPin has (``RDMABuildFeatures``): the rdma-core it was
        /// compiled against and whether RDMA FLUSH is compiled in.
        var verbsBuild: String = RDMABuildFeatures.current.description
    }

    /// The lease a pin would take.
    struct Lease: Codable {
        /// Whether `LayoutLease` can be opened now (true for device-dax, which needs none).
        var possible: Bool
        /// `write lease`, `read lease`, `layout lease`, or `none`.
        var kind: String
        /// What was tried and what the kernel said.
        var detail: String
    }

    /// What `pin` with the policy would do.
    struct Choice: Codable {
        /// `auto` or `zero-copy`.
        var policy: String
        /// The strategy, nil when the pin would be refused.
        var strategy: String?
        /// One line per strategy considered.
        var reasons: [String]
        /// The refusal text `DaxPinError.registrationRefused` would carry.
        var refusal: String?
    }

    var path: String
    var access: String
    var memory: Memory?
    var mount: MountEntry?
    var device: Device?
    var lease: Lease?
    /// `/proc/sys/fs/lease-break-time`: how long a breaker waits before the kernel drops the lease.
    var leaseBreakTimeSeconds: Int?
    var strategy: Choice?
    /// True when a pin with this access, device and policy would work now.
    var wouldWork: Bool
    /// Why not, one reason per entry (empty when `wouldWork`).
    var problems: [String]
}

extension MemoryKind {
    /// The short kind name `daxpin probe` reports.
    var probeKind: String {
        switch self {
        case .deviceDAX: "device-dax"
        case .fsDAX: "fs-dax"
        case .sharedMemory(let fs): fs == "tmpfs" ? "tmpfs" : "other"
        case .pageCache(let fs): ["ext4", "xfs", "btrfs", "ext3", "ext2"].contains(fs) ? "page-cache" : "other"
        case .anonymous: "other"
        }
    }

    var fileSystemName: String? {
        switch self {
        case .fsDAX(let fs), .sharedMemory(let fs), .pageCache(let fs): fs
        case .deviceDAX, .anonymous: nil
        }
    }

    var alignmentIfDeviceDAX: Int? {
        if case .deviceDAX(_, let alignment) = self { return alignment }
        return nil
    }
}

extension ProbeReport.Transport {
    init(_ support: DeviceCapabilities.ODPSupport) {
        self.init(send: support.send, receive: support.receive, write: support.write, read: support.read, atomic: support.atomic)
    }

    /// `write read` style list, or `none`.
    var summary: String {
        let names = [("send", send), ("recv", receive), ("write", write), ("read", read), ("atomic", atomic)]
            .filter(\.1).map(\.0)
        return names.isEmpty ? "none" : names.joined(separator: " ")
    }
}
