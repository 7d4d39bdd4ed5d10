import Glibc

/// The memory DaxPin's On-Demand Paging check moves data through: scratch memory of the kind
/// being pinned, because a device's page faults differ by kind (a tmpfs page, a page-cache page
/// over file-system blocks, a persistent-memory block behind a DAX mapping).
package enum OnDemandPagingTarget: Sendable, Hashable, CustomStringConvertible {
    /// A memfd (tmpfs) mapped shared: for tmpfs, anonymous memory, device-dax, and any pin
    /// whose directory is not known.
    case memory
    /// An unnamed (`O_TMPFILE`) file in `directory`, on the file system being pinned. `dax`
    /// maps it `MAP_SHARED_VALIDATE | MAP_SYNC` as an fs-dax pin is mapped.
    case file(directory: String, dax: Bool)

    /// The target for pinning `memory`; a file in `directory` for fs-dax and page-cache files.
    package init(memory: MemoryKind, directory: String?) {
        switch (memory, directory) {
        case (.fsDAX, let directory?): self = .file(directory: directory, dax: true)
        case (.pageCache, let directory?): self = .file(directory: directory, dax: false)
        default: self = .memory
        }
    }

    /// What the check's verdict depends on besides the device, kernel and path MTU: the kind,
    /// and for files the file system (its device, `st_dev` of the directory).
    var cacheKey: String {
        switch self {
        case .memory: return "tmpfs"
        case .file(let directory, let dax):
            let kind = dax ? "fs-dax" : "page cache"
            guard let info = try? Syscalls.stat(directory) else { return "\(kind) in \(directory)" }
            return "\(kind) on st_dev \(info.st_dev)"
        }
    }

    /// Names the target in verdicts and errors.
    package var description: String {
        switch self {
        case .memory: "a memfd"
        case .file(let directory, let dax): "an unnamed \(dax ? "fs-dax" : "page-cache") file in \(directory)"
        }
    }
}
