import DaxPin

/// What `/proc` and rdma netlink say about one process that holds long-term pins (or
/// publishes DaxPin leases): the raw facts ``PinRiskAssessment`` judges.
package struct ProcessPinFacts: Sendable {
    /// The process (thread group) id.
    package var pid: Int32
    /// `/proc/<pid>/comm`.
    package var name: String
    /// The owner of `/proc/<pid>`: the process's effective uid.
    package var uid: UInt32
    /// `VmPin` in bytes, nil when unreadable.
    package var pinnedBytes: Int?
    /// Its memory registrations, on every device.
    package var memoryRegions: [RdmaMemoryRegionEntry]
    /// Its io_uring instances with registered buffers.
    package var rings: [IoUringRegistration]
    /// Its shared file mappings, one entry per file.
    package var files: [MappedFile]
    /// Whether it publishes a DaxPin registry record.
    package var publishesRegistry: Bool

    /// Creates facts.
    package init(pid: Int32, name: String, uid: UInt32, pinnedBytes: Int?, memoryRegions: [RdmaMemoryRegionEntry] = [],
                 rings: [IoUringRegistration] = [], files: [MappedFile] = [], publishesRegistry: Bool = false) {
        self.pid = pid; self.name = name; self.uid = uid; self.pinnedBytes = pinnedBytes
        self.memoryRegions = memoryRegions; self.rings = rings; self.files = files; self.publishesRegistry = publishesRegistry
    }

    /// Whether it holds long-term pins of any kind the kernel shows.
    package var pinsMemory: Bool {
        !memoryRegions.isEmpty || (pinnedBytes ?? 0) > 0 || rings.contains { $0.bufferCount > 0 }
    }
}

/// A file a process maps shared, with every range it maps and what backs it.
package struct MappedFile: Sendable {
    /// The path `maps` shows (a deleted file's ends with ` (deleted)`).
    package var path: String
    /// The file's device and inode, as `maps` and `/proc/locks` show them.
    package var device: DeviceNumber, inode: UInt64
    /// The mapped ranges (VMAs) of this file.
    package var ranges: [ProcessMapping]
    /// The memory kind, from the library's classifier; nil when it could not be inspected.
    package var kind: MemoryKind?
    /// Why the kind is unknown.
    package var inspectionProblem: String?

    /// Creates a mapped file.
    package init(path: String, device: DeviceNumber, inode: UInt64, ranges: [ProcessMapping], kind: MemoryKind?,
                 inspectionProblem: String? = nil) {
        self.path = path; self.device = device; self.inode = inode; self.ranges = ranges
        self.kind = kind; self.inspectionProblem = inspectionProblem
    }

    /// Whether any range is writable.
    package var writable: Bool { ranges.contains { $0.writable } }

    /// Mapped bytes, over all ranges.
    package var mappedBytes: UInt64 { ranges.reduce(0) { $0 + $1.length } }

    /// Groups a process's shared file mappings by file, in address order.
    package static func group(_ mappings: [ProcessMapping]) -> [MappedFile] {
        var files: [MappedFile] = []
        var index: [String: Int] = [:]
        for mapping in mappings where mapping.isSharedFileMapping {
            let key = "\(mapping.device):\(mapping.inode)"
            if let at = index[key] {
                files[at].ranges.append(mapping)
            } else {
                index[key] = files.count
                files.append(MappedFile(path: mapping.path, device: mapping.device, inode: mapping.inode,
                                        ranges: [mapping], kind: nil))
            }
        }
        return files
    }
}
