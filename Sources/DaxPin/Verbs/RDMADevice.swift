/// An opened RDMA device with its protection domain: what memory is registered on.
///
/// A class because queue pairs and memory registrations on many threads share it; the
/// device stays open while any of them holds it.
public final class RDMADevice: Sendable {
    package let provider: any VerbsProvider

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

    /// The names of the RDMA devices present (`ibv_get_device_list`).
    public static func availableDevices() -> [String] { IbverbsProvider.deviceNames() }
}

extension RDMADevice {
    /// The libibverbs objects behind this device, or nil for a test double.
    var ibverbs: IbverbsProvider? { provider as? IbverbsProvider }
}
