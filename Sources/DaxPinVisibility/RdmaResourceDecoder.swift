// Decodes rdma netlink (`NETLINK_RDMA`, the nldev client) replies: the device list and the
// memory registration (MR) table, as `rdma resource show mr` gets them. Pure, with no import,
// so that Scripts/fuzz can compile it with NetlinkMessages.swift alone.

/// Numbers from <rdma/rdma_netlink.h> (linux-libc-dev); a host test checks them against the header.
package enum RdmaNetlink {
    /// `RDMA_NL_NLDEV`: the nldev client; message types are `client << 10 | command`.
    package static let nldevClient: UInt16 = 5
    /// `RDMA_NLDEV_CMD_GET` (dumps devices) and `RDMA_NLDEV_CMD_RES_MR_GET` (dumps one device's MRs).
    package static let getDevice: UInt16 = 1, getMemoryRegions: UInt16 = 13
    /// `RDMA_NLDEV_ATTR_*` used here.
    package enum Attribute {
        package static let deviceIndex: UInt16 = 1, deviceName: UInt16 = 2
        package static let pid: UInt16 = 28, kernelName: UInt16 = 29
        package static let memoryRegionTable: UInt16 = 40, memoryRegionEntry: UInt16 = 41
        package static let rkey: UInt16 = 42, lkey: UInt16 = 43, iova: UInt16 = 44, length: UInt16 = 45
        package static let protectionDomainNumber: UInt16 = 60, memoryRegionNumber: UInt16 = 62
    }

    /// The message type of an nldev command (`RDMA_NL_GET_TYPE`).
    package static func messageType(_ command: UInt16) -> UInt16 { nldevClient << 10 | command }
}

/// An RDMA device as rdma netlink names it.
package struct RdmaDeviceEntry: Sendable, Equatable {
    /// `RDMA_NLDEV_ATTR_DEV_INDEX`: what MR dumps are asked for.
    package var index: UInt32
    /// `RDMA_NLDEV_ATTR_DEV_NAME` (`rxe0`, `mlx5_0`).
    package var name: String

    /// Creates an entry.
    package init(index: UInt32, name: String) { self.index = index; self.name = name }
}

/// One memory registration as the kernel's resource tracker reports it. What the kernel leaves
/// out is nil: keys without `CAP_NET_ADMIN`, the owner pid for kernel-owned MRs (which carry
/// a kernel name instead), and the address (IOVA), which Linux 6.1 and 7.2 never report.
package struct RdmaMemoryRegionEntry: Sendable, Equatable {
    /// The device the MR is registered on.
    package var device: String
    /// `mrn`: the MR's number in the tracker.
    package var number: UInt32?
    /// `mrlen`: registered bytes.
    package var length: UInt64?
    /// `pdn`: its protection domain's number (user MRs only).
    package var protectionDomain: UInt32?
    /// The owning process, for MRs of user processes.
    package var pid: Int32?
    /// The kernel module owning the MR, for kernel MRs.
    package var kernelOwner: String?
    /// The remote and local keys (only with `CAP_NET_ADMIN`).
    package var rkey: UInt32?, lkey: UInt32?
    /// The MR's start address, when a kernel reports it.
    package var iova: UInt64?

    /// Creates an entry.
    package init(device: String, number: UInt32? = nil, length: UInt64? = nil, protectionDomain: UInt32? = nil,
                 pid: Int32? = nil, kernelOwner: String? = nil, rkey: UInt32? = nil, lkey: UInt32? = nil, iova: UInt64? = nil) {
        self.device = device; self.number = number; self.length = length; self.protectionDomain = protectionDomain
        self.pid = pid; self.kernelOwner = kernelOwner; self.rkey = rkey; self.lkey = lkey; self.iova = iova
    }
}

/// Decoding of nldev reply messages.
package enum RdmaResourceDecoder {
    /// The device a `RDMA_NLDEV_CMD_GET` dump message describes, or nil when it names none.
    package static func device(in message: NetlinkMessage) -> RdmaDeviceEntry? {
        var index: UInt32?, name: String?
        for attribute in NetlinkWire.attributes(in: message.payload) {
            switch attribute.type {
            case RdmaNetlink.Attribute.deviceIndex: index = attribute.uint32 ?? index
            case RdmaNetlink.Attribute.deviceName: name = attribute.string
            default: continue
            }
        }
        guard let index, let name, !name.isEmpty else { return nil }
        return RdmaDeviceEntry(index: index, name: name)
    }

    /// The MRs a `RDMA_NLDEV_CMD_RES_MR_GET` dump message lists. `device` names them when
    /// the message itself carries no device name.
    package static func memoryRegions(in message: NetlinkMessage, device: String) -> [RdmaMemoryRegionEntry] {
        let attributes = NetlinkWire.attributes(in: message.payload)
        let named = attributes.first { $0.type == RdmaNetlink.Attribute.deviceName }.map(\.string) ?? ""
        let deviceName = named.isEmpty ? device : named
        var entries: [RdmaMemoryRegionEntry] = []
        for table in attributes where table.type == RdmaNetlink.Attribute.memoryRegionTable {
            for entry in table.nested where entry.type == RdmaNetlink.Attribute.memoryRegionEntry {
                entries.append(memoryRegion(entry.nested, device: deviceName))
            }
        }
        return entries
    }

    /// One `RDMA_NLDEV_ATTR_RES_MR_ENTRY`'s attributes. Attributes of an unexpected size are
    /// left out rather than guessed at; unknown ones (driver details, newer kernels) are skipped.
    static func memoryRegion(_ attributes: [NetlinkAttribute], device: String) -> RdmaMemoryRegionEntry {
        var entry = RdmaMemoryRegionEntry(device: device)
        for attribute in attributes {
            switch attribute.type {
            case RdmaNetlink.Attribute.memoryRegionNumber: entry.number = attribute.uint32
            case RdmaNetlink.Attribute.length: entry.length = attribute.uint64
            case RdmaNetlink.Attribute.protectionDomainNumber: entry.protectionDomain = attribute.uint32
            case RdmaNetlink.Attribute.pid: entry.pid = attribute.uint32.map { Int32(bitPattern: $0) }
            case RdmaNetlink.Attribute.kernelName: entry.kernelOwner = attribute.string
            case RdmaNetlink.Attribute.rkey: entry.rkey = attribute.uint32
            case RdmaNetlink.Attribute.lkey: entry.lkey = attribute.uint32
            case RdmaNetlink.Attribute.iova: entry.iova = attribute.uint64
            default: continue
            }
        }
        return entry
    }
}
