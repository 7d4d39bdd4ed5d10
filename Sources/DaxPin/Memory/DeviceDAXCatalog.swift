import CDaxctl

/// Device-dax instances as libdaxctl reports them (sysfs `/sys/bus/dax`).
package enum DeviceDAXCatalog {
    /// One device-dax instance.
    package struct Device: Sendable, Hashable {
        /// Kernel name, for example `dax0.0`.
        package let name: String
        /// Size in bytes.
        package let size: Int
        /// Mapping alignment in bytes (offsets and lengths must be multiples of it).
        package let alignment: Int
    }

    /// Every device-dax instance present (`daxctl_dev_get_first` / `_next` over all regions).
    package static func devices() -> [Device] {
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
    package static func device(named name: String) -> Device? {
        devices().first { $0.name == name }
    }
}
