import Glibc

/// What a kernel release allows for RDMA on file memory: the one table, by version, that the
/// strategy forecast, the refusal texts and the tests read. Each row was measured in the
/// testbed on Linux 6.1 and 7.2 unless it says "release notes".
package struct KernelBehaviour: Sendable, Hashable {
    /// The kernel release, as `(major, minor)`.
    public let version: KernelVersion

    /// The table for `version`.
    public init(version: KernelVersion) { self.version = version }

    /// The table for the running kernel (`uname(2)`).
    public static var running: KernelBehaviour { KernelBehaviour(version: .running) }

    /// Long-term pins of fs-dax pages: refused (`EOPNOTSUPP`) on every kernel so far, since a
    /// truncate could hand a pinned block to another file under the NIC.
    public var pinsFSDAX: Bool { false }

    /// Read-only long-term pins of shared file mappings. Before 6.2 the kernel pinned them with
    /// `FOLL_FORCE|FOLL_WRITE`, which a read-only shared mapping refuses (`EFAULT`).
    public var pinsReadOnlySharedFileMappings: Bool { version >= KernelVersion(6, 2) }

    /// Writable long-term pins of page-cache files (ext4/xfs without DAX): refused (`EFAULT`)
    /// from 6.5. tmpfs, shmem and hugetlbfs files stay pinnable.
    public var pinsWritablePageCache: Bool { version < KernelVersion(6, 5) }

    /// Soft-RoCE (rxe) advertises On-Demand Paging (from 6.15, release notes; seen on 7.2).
    public var rxeAdvertisesOnDemandPaging: Bool { version >= KernelVersion(6, 15) }

    /// rxe's On-Demand Paging misplaces RDMA WRITE payloads: each packet lands at the start of
    /// the page holding its target address, while the WRITE completes successfully (seen on
    /// 7.2.13; `Tools/rxe-odp-write-repro`). DaxPin's verification catches it on any kernel;
    /// this row is what the tests expect the verification to find. Update it when a kernel
    /// that fixes it is measured.
    public var rxeOnDemandPagingMisplacesWrites: Bool { rxeAdvertisesOnDemandPaging }

    /// The registration access flag for RDMA FLUSH to persistent memory
    /// (`IBV_ACCESS_FLUSH_PERSISTENT`) is accepted by rxe (from 6.2, release notes; 6.1: EINVAL).
    public var rxeAcceptsFlushAccess: Bool { version >= KernelVersion(6, 2) }

    /// rxe places RDMA ATOMIC WRITEs (from 6.2, release notes; measured: 7.2 places the 8 bytes
    /// whole, 6.1 fails the work request locally with `IBV_WC_LOC_QP_OP_ERR` although rdma-core
    /// 44's headers and provider accept the queue pair).
    public var rxePlacesAtomicWrite: Bool { version >= KernelVersion(6, 2) }

    /// An rxe device made inside a network namespace sends and receives through that namespace,
    /// so a server and a client in two namespaces can talk over a veth between them (from 7.1,
    /// release notes; measured on 7.2). On 6.1 rxe sends and receives only through the initial
    /// namespace: such a peer is unreachable.
    public var rxeWorksAcrossNetworkNamespaces: Bool { version >= KernelVersion(7, 1) }

    /// The errno and reason the kernel gives when it refuses `strategy` for `memory` and
    /// `access`, or nil when it allows it (as far as this table knows: `pin` remains the proof).
    public func refusal(of strategy: Strategy, memory: MemoryKind, access: Access) -> (errno: Int32, reason: String)? {
        switch (strategy, memory) {
        case (.pinned, .fsDAX) where !pinsFSDAX:
            return (EOPNOTSUPP, "the kernel does not allow long-term pins of fs-dax pages (a truncate could hand them to another file under the NIC)")
        case (.pinned, .pageCache) where access == .readWrite && !pinsWritablePageCache:
            return (EFAULT, "the kernel (6.5 and later) refuses writable long-term pins of page-cache files")
        case (.pinned, _) where access == .readOnly && memory.isLeasable && !pinsReadOnlySharedFileMappings:
            return (EFAULT, "kernels before 6.2 pin read-only registrations with FOLL_FORCE|FOLL_WRITE, which a read-only shared file mapping refuses")
        default:
            return nil
        }
    }
}

/// A kernel release's `major.minor`, comparable.
package struct KernelVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The major and minor numbers, e.g. 7 and 2 for `7.2.13+deb14-amd64`.
    public let major: Int, minor: Int

    /// `major.minor`.
    public init(_ major: Int, _ minor: Int) { self.major = major; self.minor = minor }

    /// Parses the leading `major.minor` of a release string such as `6.1.0-57-amd64`.
    public init?(release: String) {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return nil }
        self.init(parts[0], parts[1])
    }

    /// The running kernel's version (`uname(2)`).
    public static var running: KernelVersion { KernelVersion(release: runningKernelRelease()) ?? KernelVersion(0, 0) }

    /// Orders by major, then minor.
    public static func < (a: KernelVersion, b: KernelVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

    /// `major.minor`.
    public var description: String { "\(major).\(minor)" }
}
