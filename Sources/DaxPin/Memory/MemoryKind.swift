import Glibc

/// What backs the memory DaxPin is asked to pin; decides the strategy and whether a lease exists.
public enum MemoryKind: Sendable, Hashable, CustomStringConvertible {
    /// A device-dax character device (`/dev/daxX.Y`): persistent memory without a file
    /// system. Mappings must start and end on `alignment` bytes.
    case deviceDAX(name: String, alignment: Int)
    /// A file on a file system mounted with DAX (`STATX_ATTR_DAX`): loads and stores reach
    /// persistent memory directly. Long-term pins are refused by the kernel.
    case fsDAX(fileSystem: String)
    /// A tmpfs, shmem or hugetlbfs file: pinnable, and truncating it orphans pinned pages.
    case sharedMemory(fileSystem: String)
    /// An ordinary file on a block-backed file system, cached in the page cache.
    case pageCache(fileSystem: String)
    /// Anonymous process memory: no file, no lease.
    case anonymous

    /// Short name used in messages and the `daxpin` command.
    public var description: String {
        switch self {
        case .deviceDAX(let name, let alignment): "device-dax \(name) (alignment \(alignment) bytes)"
        case .fsDAX(let fs): "fs-dax file on \(fs)"
        case .sharedMemory(let fs): "\(fs) file"
        case .pageCache(let fs): "page-cache file on \(fs)"
        case .anonymous: "anonymous memory"
        }
    }

    /// Whether a file-system lease can protect this memory (device-dax and anonymous memory
    /// cannot be truncated, so there is nothing to lease).
    public var isLeasable: Bool {
        switch self {
        case .fsDAX, .sharedMemory, .pageCache: true
        case .deviceDAX, .anonymous: false
        }
    }

    /// Whether stores reach persistent memory directly (so durability is a cache flush).
    public var isPersistentMemory: Bool {
        switch self {
        case .fsDAX, .deviceDAX: true
        default: false
        }
    }

    /// The alignment mappings of this memory must honour.
    var mappingAlignment: Int {
        if case .deviceDAX(_, let alignment) = self { return alignment }
        return SystemPage.size
    }
}

/// The system page size, read once.
package enum SystemPage {
    package static let size: Int = Syscalls.pageSize()
}
