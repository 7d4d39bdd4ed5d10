import Synchronization

/// An opened RDMA device with its protection domain: what memory is registered on.
///
/// A class because queue pairs and memory registrations on many threads share it; the
/// device stays open while any of them holds it.
public final class RDMADevice: Sendable {
    package let provider: any VerbsProvider
    /// Set by tests only (``trustOnDemandPagingWithoutCheck()``).
    #if DAXPIN_TESTING
    private let odpTrustedWithoutCheck = Atomic<Bool>(false)
    #endif

    /// The device name (`ibv_get_device_name`), for example `rxe0`.
    public var name: String { provider.name }
    /// What the device can do (`ibv_query_device_ex`).
    public var capabilities: DeviceCapabilities { provider.capabilities }

    package init(provider: any VerbsProvider) { self.provider = provider }

    /// Opens the device called `name` (`ibv_open_device`, `ibv_alloc_pd`).
    /// - Throws: `.unknownDevice` with the names present, or `.noRDMADevice`.
    public static func open(named name: String) throws(DaxPinError) -> RDMADevice {
        RDMADevice(provider: try IbverbsProvider(named: name))
    }

    /// Opens the first device libibverbs lists.
    /// - Throws: `.noRDMADevice` when there is none.
    public static func openFirst() throws(DaxPinError) -> RDMADevice {
        RDMADevice(provider: try IbverbsProvider(named: nil))
    }

    /// Whether this device's On-Demand Paging may be relied on for `access`, judged on a memfd
    /// (tmpfs) target: ``onDemandPaging(for:memory:directory:remoteAtomics:remoteFlush:)`` for
    /// anonymous memory.
    public func onDemandPaging(for access: Access) -> OnDemandPagingVerdict {
        onDemandPaging(for: access, memory: .anonymous, directory: nil)
    }

    /// Whether this device's On-Demand Paging may be relied on for `access` to `memory`.
    ///
    /// ``DeviceCapabilities/odpUsable(for:)`` only says what the device advertises. The first
    /// call for a device, kind of memory and path MTU runs DaxPin's check on a scratch target of
    /// that kind: an unnamed (`O_TMPFILE`) file in `directory` for fs-dax (mapped `MAP_SYNC`)
    /// and page-cache files, a memfd otherwise. On loopback queue pairs at the device's own
    /// path MTU it RDMA WRITEs into pages nothing has touched, so that the device faults them
    /// in, READs, invalidates the target's pages (a punched hole, or `MADV_DONTNEED` for a
    /// memfd) and transfers again, so that it faults them in anew. Transfers are several
    /// packets long, some off page boundaries, and every byte and the bytes around it are
    /// compared. The verdict is cached per device (name and node GUID), kernel, kind of memory
    /// (with the file system's device for files) and path MTU for the life of the process. The
    /// check maps two buffers of 112 KiB (with 4 KiB pages) and moves less than 100 KiB.
    ///
    /// The check moves no atomics and no RDMA FLUSH: a registration that allows them
    /// (`remoteAtomics`, `remoteFlush`, read-write only) gets a failed verdict that says so.
    ///
    /// - Parameters:
    ///   - access: The access the registration gives peers.
    ///   - memory: What is being pinned.
    ///   - directory: The directory of the file being pinned, where the check's scratch file is
    ///     made for fs-dax and page-cache memory; nil checks on a memfd.
    ///   - remoteAtomics: Whether the registration allows remote atomics.
    ///   - remoteFlush: Whether the registration allows RDMA FLUSH.
    public func onDemandPaging(for access: Access, memory: MemoryKind, directory: String?,
                               remoteAtomics: Bool = false, remoteFlush: Bool = false) -> OnDemandPagingVerdict {
        guard capabilities.odpUsable(for: access) else { return .notOffered }
        #if DAXPIN_TESTING
        if odpTrustedWithoutCheck.load(ordering: .relaxed) { return .verified }
        #endif
        if access == .readWrite, remoteAtomics || remoteFlush {
            let what = [remoteAtomics ? "remote atomics" : nil, remoteFlush ? "RDMA FLUSH" : nil].compactMap { $0 }.joined(separator: " and ")
            return .failed(reason: "DaxPin's check does not cover \(what) (it moves RDMA WRITEs and READs only), and this registration allows them")
        }
        return OnDemandPagingVerdicts.shared.verdict(for: provider, target: OnDemandPagingTarget(memory: memory, directory: directory))
    }

#if DAXPIN_TESTING
    /// Testing only (`@_spi(Testing) import DaxPin`): trusts this device object's On-Demand
    /// Paging without the check, so that tests and benchmarks can exercise the ODP path on a
    /// device that fails it, under conditions where it is known to move bytes correctly.
    /// Never for production use: it is how acknowledged writes get lost.
    @_spi(Testing) public func trustOnDemandPagingWithoutCheck() {
        odpTrustedWithoutCheck.store(true, ordering: .relaxed)
    }
#endif

    /// The names of the RDMA devices present (`ibv_get_device_list`).
    public static func availableDevices() -> [String] { IbverbsProvider.deviceNames() }
}

extension RDMADevice {
    /// The libibverbs objects behind this device, or nil for a test double.
    var ibverbs: IbverbsProvider? { provider as? IbverbsProvider }
}
