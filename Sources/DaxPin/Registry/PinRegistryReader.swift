import Glibc

/// Reads the per-process pin files that ``RunDirectory`` holds, safely enough for a
/// privileged reader: directories and files are opened with `O_NOFOLLOW`, only regular
/// files with one link, owned by the uid that owns the publishing process (and the user
/// the directory belongs to), at most ``maximumFileSize`` bytes, are read. Files of dead
/// processes, or of processes whose pid was reused (another start time), are removed.
package enum PinRegistryReader {
    /// The largest registry file read; larger files are rejected.
    package static let maximumFileSize = 256 * 1024

    /// What a scan found.
    package struct Scan: Sendable {
        /// Records of live processes the viewer may see.
        package var records: [ProcessPinRecord] = []
        /// Files removed because their process is gone (or its pid was reused).
        package var removedStale: [String] = []
        /// Files or directories skipped, with the reason (symlink, wrong owner, too large, ...).
        package var rejected: [(path: String, reason: String)] = []
    }

    /// Scans `directories`. `viewerUID` 0 sees every process; others see only processes
    /// whose `/proc/<pid>` belongs to them. `decode` turns file bytes into a record (the
    /// command uses `JSONDecoder`; the library links no Foundation encoders).
    package static func scan(directories: [String], viewerUID: uid_t, removeStale: Bool = true,
                            decode: ([UInt8]) -> ProcessPinRecord?) -> Scan {
        var scan = Scan()
        for directory in directories {
            scanDirectory(directory, viewerUID: viewerUID, removeStale: removeStale, decode: decode, into: &scan)
        }
        scan.records.sort { $0.pid < $1.pid }
        return scan
    }

    private static func scanDirectory(_ directory: String, viewerUID: uid_t, removeStale: Bool,
                                      decode: ([UInt8]) -> ProcessPinRecord?, into scan: inout Scan) {
        let dirfd: Int32
        do throws(Errno) { dirfd = try Syscalls.open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } catch {
            if error == .tooManySymbolicLinkLevels || error == .notDirectory { scan.rejected.append((directory, "not a directory (symlink?)")) }
            return
        }
        defer { try? Syscalls.close(dirfd) }
        guard let info = try? Syscalls.fstat(dirfd) else { return }
        let directoryOwner = RunDirectory.expectedOwner(of: directory)
        if let directoryOwner, info.st_uid != directoryOwner {
            scan.rejected.append((directory, "owned by uid \(info.st_uid), expected \(directoryOwner)"))
            return
        }
        if viewerUID != 0, info.st_uid != viewerUID { return }
        for name in RunDirectory.listDirectory(directory).sorted() {
            guard name.hasSuffix(".json"), let pid = Int32(name.dropLast(5)), pid > 0 else { continue }
            let path = "\(directory)/\(name)"
            guard let liveStart = ProcessInfoReader.startTicks(of: pid), let owner = ProcessInfoReader.ownerUID(of: pid) else {
                if removeStale, (try? Syscalls.unlinkat(dirfd, name, 0)) != nil { scan.removedStale.append(path) }
                continue
            }
            if viewerUID != 0, owner != viewerUID { continue }
            let bytes: [UInt8]
            switch readVerified(dirfd: dirfd, name: name, owner: owner, directoryOwner: directoryOwner) {
            case .success(let read): bytes = read
            case .failure(let rejection):
                scan.rejected.append((path, rejection.reason))
                continue
            }
            guard let record = decode(bytes), record.pid == pid else {
                scan.rejected.append((path, "not a pin record of process \(pid)"))
                continue
            }
            guard record.processStartTicks == liveStart else {
                // The pid now belongs to another process: the publisher died.
                if removeStale, (try? Syscalls.unlinkat(dirfd, name, 0)) != nil { scan.removedStale.append(path) }
                continue
            }
            scan.records.append(record)
        }
    }

    /// Why a file was not read.
    struct Rejection: Error { let reason: String }

    /// Opens `name` under `dirfd` without following links and checks it before reading.
    static func readVerified(dirfd: Int32, name: String, owner: uid_t, directoryOwner: uid_t?) -> Result<[UInt8], Rejection> {
        let fd: Int32
        do throws(Errno) { fd = try Syscalls.openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) } catch {
            return .failure(Rejection(reason: error == .tooManySymbolicLinkLevels ? "symbolic link" : "cannot open (errno \(error.rawValue))"))
        }
        defer { try? Syscalls.close(fd) }
        guard let info = try? Syscalls.fstat(fd) else { return .failure(Rejection(reason: "cannot stat")) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(Rejection(reason: "not a regular file")) }
        guard info.st_nlink == 1 else { return .failure(Rejection(reason: "has \(info.st_nlink) hard links")) }
        guard info.st_uid == owner else {
            return .failure(Rejection(reason: "owned by uid \(info.st_uid), but the process belongs to uid \(owner)"))
        }
        if let directoryOwner, info.st_uid != directoryOwner {
            return .failure(Rejection(reason: "owned by uid \(info.st_uid) in a directory of uid \(directoryOwner)"))
        }
        guard info.st_size <= maximumFileSize else {
            return .failure(Rejection(reason: "larger than \(maximumFileSize) bytes"))
        }
        guard let bytes = ProcessInfoReader.readAll(fd, limit: maximumFileSize) else {
            return .failure(Rejection(reason: "unreadable or grew beyond \(maximumFileSize) bytes"))
        }
        return .success(bytes)
    }
}
