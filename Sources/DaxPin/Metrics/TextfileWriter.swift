import Glibc
import SystemPackage

/// Replaces a file atomically: the text goes to a temporary file beside it, which is then
/// renamed over it, so a collector (node_exporter's textfile collector) never reads half a file.
package enum TextfileWriter {
    /// Writes `text` to `path` through a temporary file in the same directory.
    package static func replace(_ path: String, with text: String) throws(DaxPinError) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else { throw .systemCall(operation: "open", path: path, errno: .isDirectory) }
        let dirfd = Syscalls.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirfd >= 0 else { throw .systemCall(operation: "open", path: directory, errno: Errno(rawValue: errno)) }
        defer { _ = Syscalls.close(dirfd) }
        // A dot name: node_exporter reads only *.prom, so it skips the temporary file.
        let temporary = ".\(name).\(getpid()).tmp"
        _ = Syscalls.unlinkat(dirfd, temporary, 0)
        let fd = Syscalls.openat(dirfd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .systemCall(operation: "open", path: "\(directory)/\(temporary)", errno: Errno(rawValue: errno)) }
        let bytes = Array(text.utf8)
        var written = 0
        var failure: Errno?
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Syscalls.write(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { failure = Errno(rawValue: count < 0 ? errno : ENOSPC); break }
            written += count
        }
        _ = Syscalls.close(fd)
        if failure == nil, Syscalls.renameat(dirfd, temporary, dirfd, name) != 0 { failure = Errno(rawValue: errno) }
        if let failure {
            _ = Syscalls.unlinkat(dirfd, temporary, 0)
            throw .systemCall(operation: "write", path: path, errno: failure)
        }
    }
}
