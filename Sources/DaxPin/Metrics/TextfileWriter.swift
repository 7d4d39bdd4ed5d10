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
        let dirfd: Int32
        do throws(Errno) { dirfd = try Syscalls.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) } catch {
            throw .systemCall(operation: "open", path: directory, errno: error)
        }
        defer { try? Syscalls.close(dirfd) }
        // A dot name: node_exporter reads only *.prom, so it skips the temporary file.
        let temporary = ".\(name).\(Syscalls.processID()).tmp"
        try? Syscalls.unlinkat(dirfd, temporary, 0)
        let fd: Int32
        do throws(Errno) { fd = try Syscalls.openat(dirfd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644) } catch {
            throw .systemCall(operation: "open", path: "\(directory)/\(temporary)", errno: error)
        }
        let failure = Errno.of { () throws(Errno) in
            defer { try? Syscalls.close(fd) }
            try Syscalls.writeAll(fd, Array(text.utf8))
        } ?? Errno.of { () throws(Errno) in try Syscalls.renameat(dirfd, temporary, dirfd, name) }
        if let failure {
            try? Syscalls.unlinkat(dirfd, temporary, 0)
            throw .systemCall(operation: "write", path: path, errno: failure)
        }
    }
}
