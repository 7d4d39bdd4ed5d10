import Synchronization

/// An opened RDMA device with its protection domain: what memory is registered on.
///
/// A class because queue pairs and memory registrations on many threads share it; the
/// device stays open while any of them holds it.
public final class RDMADevice: Sendable {
    package let provider: any VerbsProvider
    /// Set by tests only (``trustOnDemandPagingWithoutCheck()``).
    private let odpTrustedWithoutCheck = Atomic<Bool>(false)

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

    /// Whether this device's On-Demand Paging may be relied on for `access`.
    ///
    /// ``DeviceCapabilities/odpUsable(for:)`` only says what the device advertises. The first
    /// call on a device that advertises ODP runs DaxPin's check (RDMA WRITEs and READs on
    /// loopback queue pairs through an ODP registration, several packets long, some off page
    /// boundaries, every byte and the bytes around it compared); the verdict is cached per
    /// device and kernel for the life of the process. The check takes the device's own path
    /// MTU and about 112 KiB of memory.
    public func onDemandPaging(for access: Access) -> OnDemandPagingVerdict {
        guard capabilities.odpUsable(for: access) else { return .notOffered }
        if odpTrustedWithoutCheck.load(ordering: .relaxed) { return .verified }
        return OnDemandPagingVerdicts.shared.verdict(for: provider)
    }

    /// Testing only (`@_spi(Testing) import DaxPin`): trusts this device object's On-Demand
    /// Paging without the check, so that tests and benchmarks can exercise the ODP path on a
    /// device that fails it, under conditions where it is known to move bytes correctly.
    /// Never for production use: it is how acknowledged writes get lost.
    @_spi(Testing) public func trustOnDemandPagingWithoutCheck() {
        odpTrustedWithoutCheck.store(true, ordering: .relaxed)
    }

    /// The names of the RDMA devices present (`ibv_get_device_list`).
    public static func availableDevices() -> [String] { IbverbsProvider.deviceNames() }
}

extension RDMADevice {
    /// The libibverbs objects behind this device, or nil for a test double.
    var ibverbs: IbverbsProvider? { provider as? IbverbsProvider }
}
