import SystemPackage

/// Every failure DaxPin reports. Each message names what was asked, what the kernel said
/// and what the caller can do instead; after any error the process holds nothing extra
/// (no fd, mapping, lease or memory registration) from the failed call.
public enum DaxPinError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The path does not exist.
    case fileNotFound(path: String)
    /// The kernel refused to open or lease the path for this user.
    case permissionDenied(path: String, errno: Errno)
    /// The path is not a regular file or a device-dax character device.
    case unsupportedFileType(path: String, type: String)
    /// Read-write access was requested on a read-only mount.
    case readOnlyFileSystem(path: String)
    /// The requested range cannot be pinned.
    case invalidRange(path: String, offset: Int, length: Int, problem: RangeProblem)
    /// The kernel refused the lease (`F_SETLEASE` returned EAGAIN) because the file is open
    /// through another descriptor: in another process, or in this one (an earlier `open`, or a
    /// writable shared mapping). `lease` is `write` or `read`; `existing` when `open(2)` itself
    /// returned EAGAIN because another process holds a lease the open has now started breaking.
    case fileInUse(path: String, lease: String)
    /// This process already holds a lease on the file (`existingPath`, taken for
    /// `existingAccess`; the same device and inode as `path`). Refused before opening: any
    /// `open(2)` of a leased file, even by the lease holder, breaks that lease. Pin more regions
    /// under the existing lease, or use ``LayoutLease/read(into:at:)`` and
    /// ``LayoutLease/write(_:at:)`` for file I/O; two read-only leases may coexist.
    case alreadyLeased(path: String, existingPath: String, existingAccess: Access)
    /// The kernel refused the lease for another reason (leases disabled, lease limit, ...).
    case leaseUnavailable(path: String, errno: Errno)
    /// No RDMA device is present on this machine.
    case noRDMADevice
    /// No RDMA device has this name.
    case unknownDevice(name: String, available: [String])
    /// A verbs call on a device failed.
    case deviceFailure(device: String, operation: String, errno: Errno)
    /// No strategy could register the memory; the refusal explains why and what to do.
    case registrationRefused(RegistrationRefusal)
    /// The lease was broken or released and its regions were revoked.
    case revoked(path: String)
    /// No region with this identifier is pinned under the lease.
    case regionNotFound(path: String, region: Int)
    /// The operation needs a region with another strategy (for example copies on a staged region).
    case wrongStrategy(operation: String, strategy: Strategy)
    /// A system call failed.
    case systemCall(operation: String, path: String, errno: Errno)
    /// An rdma_cm connection step failed or timed out (`rdma_resolve_addr`, `rdma_connect`, ...).
    case connectionFailed(peer: String, operation: String, reason: String)
    /// The peer refused the connection; `reason` is the private data it sent with `rdma_reject`.
    case connectionRejected(peer: String, reason: [UInt8])
    /// The peer disconnected or the connection's queue pair is in the error state.
    case disconnected(peer: String)
    /// A verbs feature this build, device or peer does not offer (for example RDMA FLUSH);
    /// `reason` says which and what to do. Nothing weaker was done instead.
    case featureUnavailable(feature: String, reason: String)

    /// What is wrong with a requested range.
    public enum RangeProblem: Sendable, Equatable, CustomStringConvertible {
        /// Nothing to pin.
        case zeroLength
        /// A negative offset or length.
        case negative
        /// The range ends past the end of the file or device of `size` bytes.
        case beyondEnd(size: Int)
        /// Offset or length is not a multiple of the page size or the device-dax alignment.
        case misaligned(alignment: Int)

        /// Human-readable text for messages and logs.
        public var description: String {
            switch self {
            case .zeroLength: "the length is zero"
            case .negative: "the offset or length is negative"
            case .beyondEnd(let size): "it ends beyond the end of the file or device (size \(size) bytes); extend the file first or pin a smaller range"
            case .misaligned(let alignment): "offset and length must be multiples of \(alignment) bytes"
            }
        }
    }

    /// Human-readable text for messages and logs.
    public var description: String {
        switch self {
        case .fileNotFound(let path):
            "\(path): no such file; create it first or check the path"
        case .permissionDenied(let path, let errno):
            "\(path): permission denied (\(errno.daxName)); the lease needs the file's owner or CAP_LEASE, and read-write pins need write permission"
        case .unsupportedFileType(let path, let type):
            "\(path) is a \(type); DaxPin pins regular files (fs-dax, tmpfs, page cache) and device-dax character devices (/dev/daxX.Y)"
        case .readOnlyFileSystem(let path):
            "\(path) is on a read-only mount; pin it with access .readOnly or remount read-write"
        case .invalidRange(let path, let offset, let length, let problem):
            "\(path): cannot pin \(length) bytes at offset \(offset): \(problem)"
        case .fileInUse(let path, "existing"):
            "\(path): open(2) returned EAGAIN: another process holds a lease on the file, and this open has started breaking it; try again once that process has released it"
        case .fileInUse(let path, let lease):
            "\(path): the kernel refused the \(lease) lease (EAGAIN from F_SETLEASE): the file is open through another descriptor, in another process or in this one (an earlier open, or a writable shared mapping); close those descriptors, or pin with access .readOnly if only readers hold it"
        case .alreadyLeased(let path, let existingPath, let existingAccess):
            "\(path): this process already holds a \(existingAccess) lease on this file (taken as \(existingPath)); a second lease would open the file, and any open of a leased file breaks the lease, even in the process that holds it. Pin more regions under the existing lease, use its read(into:at:) and write(_:at:) for file I/O, or release it first"
        case .leaseUnavailable(let path, let errno):
            "\(path): the kernel refused the lease (\(errno.daxName)); check /proc/sys/fs/leases-enable and that the file system supports leases"
        case .noRDMADevice:
            "no RDMA device found; install and load the driver of an RDMA NIC (for example mlx5_ib), or add Soft-RoCE on an Ethernet interface: `modprobe rdma_rxe` then `rdma link add rxe0 type rxe netdev IFACE`"
        case .unknownDevice(let name, let available):
            "no RDMA device named \(name); available: \(available.isEmpty ? "none" : available.joined(separator: ", "))"
        case .deviceFailure(let device, let operation, let errno):
            "\(device): \(operation) failed (\(errno.daxName))"
        case .registrationRefused(let refusal):
            refusal.description
        case .revoked(let path):
            "\(path): the lease was broken or released; its regions were revoked and their memory registrations are gone"
        case .regionNotFound(let path, let region):
            "\(path): no pinned region \(region) under this lease"
        case .wrongStrategy(let operation, let strategy):
            "\(operation) needs a staged region; this region is \(strategy)"
        case .systemCall(let operation, let path, let errno):
            "\(path): \(operation) failed (\(errno.daxName))"
        case .connectionFailed(let peer, let operation, let reason):
            "\(peer): \(operation) failed: \(reason)"
        case .connectionRejected(let peer, let reason):
            "\(peer) rejected the connection: \(String(decoding: reason.prefix { $0 != 0 }, as: UTF8.self))"
        case .disconnected(let peer):
            "\(peer): the connection is closed (the peer disconnected or the queue pair is in the error state)"
        case .featureUnavailable(let feature, let reason):
            "\(feature) is not available: \(reason)"
        }
    }
}

/// Why memory could not be registered, with every strategy tried and what to do instead.
public struct RegistrationRefusal: Sendable, Equatable, CustomStringConvertible {
    /// One strategy that was tried and what the kernel (or DaxPin) answered.
    public struct Attempt: Sendable, Equatable {
        /// The strategy that was tried or skipped.
        public let strategy: Strategy
        /// The kernel's errno, or nil when DaxPin skipped the strategy without asking the kernel.
        public let errno: Errno?
        /// Why it failed, in words a user can act on.
        public let reason: String
    }

    /// The path whose memory was to be registered.
    public let path: String
    /// What backs that memory.
    public let memory: MemoryKind
    /// The RDMA device name.
    public let device: String
    /// Every strategy tried (in order) or skipped.
    public let attempts: [Attempt]
    /// What the caller can do instead, most useful first.
    public let advice: [String]

    /// Human-readable text for messages and logs.
    public var description: String {
        let tried = attempts.map { attempt in
            let said = attempt.errno.map { " (kernel: \($0.daxName))" } ?? ""
            return "\(attempt.strategy)\(said): \(attempt.reason)"
        }.joined(separator: "; ")
        return "cannot register \(memory) \(path) for RDMA on \(device): \(tried). Instead: \(advice.joined(separator: "; "))"
    }
}

extension Errno {
    /// "EOPNOTSUPP: Operation not supported" style text for messages.
    var daxName: String {
        let symbolic: String = switch self {
        case .notSupported: "EOPNOTSUPP"
        case .invalidArgument: "EINVAL"
        case .resourceTemporarilyUnavailable: "EAGAIN"
        case .permissionDenied: "EACCES"
        case .notPermitted: "EPERM"
        case .noSuchFileOrDirectory: "ENOENT"
        case .badAddress: "EFAULT"
        case .noMemory: "ENOMEM"
        case .noLocks: "ENOLCK"
        case .resourceBusy: "EBUSY"
        case .readOnlyFileSystem: "EROFS"
        case .tooManyOpenFiles: "EMFILE"
        default: "errno \(rawValue)"
        }
        return "\(symbolic): \(self.description)"
    }
}
