/// What one process publishes for `daxpin ls`: every lease it holds and the regions pinned
/// under each. Written by `PinRegistry` as `<pid>.json` in the run directory; the `daxpin`
/// command decodes it with `JSONDecoder` (the keys are the property names).
package struct ProcessPinRecord: Codable, Sendable, Equatable {
    /// Version of this layout; readers skip files with a version they do not know.
    package var version: Int
    /// The publishing process.
    package var pid: Int32
    /// The process start time in clock ticks since boot (`/proc/<pid>/stat` field 22), so a
    /// reader can tell a live publisher from a new process that reused its pid.
    package var processStartTicks: UInt64
    /// `/proc/<pid>/comm` of the publisher.
    package var processName: String
    /// The publisher's real user id.
    package var uid: UInt32
    /// When the file was last written, in seconds since the Unix epoch.
    package var updatedAt: Double
    /// Every lease the process holds, in the order they were taken.
    package var leases: [LeaseRecord]

    /// The layout version this library writes.
    package static let currentVersion = 1

    /// Creates a record; the library fills it from its live leases.
    package init(version: Int = ProcessPinRecord.currentVersion, pid: Int32, processStartTicks: UInt64,
                processName: String, uid: UInt32, updatedAt: Double, leases: [LeaseRecord]) {
        self.version = version; self.pid = pid; self.processStartTicks = processStartTicks
        self.processName = processName; self.uid = uid; self.updatedAt = updatedAt; self.leases = leases
    }
}

/// One lease as published: the file, what backs it, the lease the kernel granted and its state.
package struct LeaseRecord: Codable, Sendable, Equatable {
    /// Unique within the publishing process.
    package var serial: UInt64
    /// The path the lease was opened with.
    package var path: String
    /// The file's device as `major:minor` (decimal), as `stat` reports `st_dev`
    /// (for device-dax: the device node's `st_rdev`).
    package var device: String
    /// The file's inode number.
    package var inode: UInt64
    /// `read-only` or `read-write`.
    package var access: String
    /// What backs the memory, as `MemoryKind.description` says it (`fs-dax file on ext4`).
    package var memory: String
    /// The lease the kernel granted, as `LeaseKind.description` says it (`write lease`).
    package var lease: String
    /// `held`, `revoking` or `revoked`.
    package var state: String
    /// Why the lease is being revoked (`lease break`, `release`, `drop`), nil while held.
    package var reason: String?
    /// When the lease was taken, in seconds since the Unix epoch.
    package var createdAt: Double
    /// The regions pinned under the lease.
    package var regions: [RegionRecord]

    /// Creates a record.
    package init(serial: UInt64, path: String, device: String, inode: UInt64, access: String, memory: String,
                lease: String, state: String, reason: String?, createdAt: Double, regions: [RegionRecord]) {
        self.serial = serial; self.path = path; self.device = device; self.inode = inode
        self.access = access; self.memory = memory; self.lease = lease; self.state = state
        self.reason = reason; self.createdAt = createdAt; self.regions = regions
    }
}

/// One pinned region as published.
package struct RegionRecord: Codable, Sendable, Equatable {
    /// The region's identifier within its lease.
    package var id: Int
    /// Start of the range in the file, in bytes.
    package var offset: Int
    /// Length of the range, in bytes.
    package var length: Int
    /// `pinned`, `on-demand paging` or `staged`.
    package var strategy: String
    /// The memory registration's remote key (what peers use), from `ibv_reg_mr`.
    package var rkey: UInt32

    /// Creates a record.
    package init(id: Int, offset: Int, length: Int, strategy: String, rkey: UInt32) {
        self.id = id; self.offset = offset; self.length = length; self.strategy = strategy; self.rkey = rkey
    }
}

// MARK: JSON writing (the library links no Foundation encoders; readers use JSONDecoder)

extension ProcessPinRecord {
    /// The record as compact JSON with the same keys `Codable` synthesizes.
    package var jsonText: String {
        var out = JSONWriter()
        out.object { o in
            o.field("version", version)
            o.field("pid", Int(pid))
            o.field("processStartTicks", processStartTicks)
            o.field("processName", processName)
            o.field("uid", UInt64(uid))
            o.field("updatedAt", updatedAt)
            o.array("leases", leases) { o, lease in
                o.field("serial", lease.serial)
                o.field("path", lease.path)
                o.field("device", lease.device)
                o.field("inode", lease.inode)
                o.field("access", lease.access)
                o.field("memory", lease.memory)
                o.field("lease", lease.lease)
                o.field("state", lease.state)
                if let reason = lease.reason { o.field("reason", reason) }
                o.field("createdAt", lease.createdAt)
                o.array("regions", lease.regions) { o, region in
                    o.field("id", region.id)
                    o.field("offset", region.offset)
                    o.field("length", region.length)
                    o.field("strategy", region.strategy)
                    o.field("rkey", UInt64(region.rkey))
                }
            }
        }
        return out.text
    }
}

/// A minimal JSON object writer for the registry records.
struct JSONWriter {
    private(set) var text = ""
    private var needsComma = false

    mutating func object(_ body: (inout JSONWriter) -> Void) {
        text += "{"
        needsComma = false
        body(&self)
        text += "}"
        needsComma = true
    }

    private mutating func key(_ name: String) {
        if needsComma { text += "," }
        text += Self.quoted(name) + ":"
        needsComma = true
    }

    mutating func field(_ name: String, _ value: String) { key(name); text += Self.quoted(value) }
    mutating func field(_ name: String, _ value: Int) { key(name); text += String(value) }
    mutating func field(_ name: String, _ value: UInt64) { key(name); text += String(value) }
    mutating func field(_ name: String, _ value: Double) {
        key(name)
        text += value.isFinite ? "\(value)" : "0"
    }

    mutating func array<T>(_ name: String, _ items: [T], _ body: (inout JSONWriter, T) -> Void) {
        key(name)
        text += "["
        for (index, item) in items.enumerated() {
            if index > 0 { text += "," }
            object { body(&$0, item) }
        }
        text += "]"
        needsComma = true
    }

    static func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
