import CDaxctl

/// Device-dax instances as libdaxctl reports them (sysfs `/sys/bus/dax`).
public enum DeviceDAXCatalog {
    /// One device-dax instance.
    public struct Device: Sendable, Hashable {
        /// Kernel name, for example `dax0.0`.
        public let name: String
        /// Size in bytes.
        public let size: Int
        /// Mapping alignment in bytes (offsets and lengths must be multiples of it).
        public let alignment: Int
    }

    /// Every device-dax instance present (`daxctl_dev_get_first` / `_next` over all regions).
    public static func devices() -> [Device] {
        var context: OpaquePointer?
        guard daxctl_new(&context) == 0, let context else { return [] }
        defer { daxctl_unref(context) }
        var found: [Device] = []
        var region = daxctl_region_get_first(context)
        while let currentRegion = region {
            var device = daxctl_dev_get_first(currentRegion)
            while let current = device {
                if let name = daxctl_dev_get_devname(current) {
                    found.append(Device(name: String(cString: name),
                                        size: Int(daxctl_dev_get_size(current)),
                                        alignment: Int(daxctl_dev_get_align(current))))
                }
                device = daxctl_dev_get_next(current)
            }
            region = daxctl_region_get_next(currentRegion)
        }
        return found
    }

    /// The device called `name` (`dax0.0`), if present.
    public static func device(named name: String) -> Device? {
        devices().first { $0.name == name }
    }
}
