import Glibc

/// Where processes publish their pins: `/run/daxpin` for root, `$XDG_RUNTIME_DIR/daxpin` or
/// `/tmp/daxpin-$UID` for other users. In debug builds (`DAXPIN_TESTING`) `DAXPIN_RUN_DIR`
/// overrides both, so tests can isolate; a release build ignores it, so no process can publish
/// its pins where `daxpin ls` does not look.
package enum RunDirectory {
    #if DAXPIN_TESTING
    /// The environment variable that overrides the run directory (debug builds only).
    package static let overrideVariable = "DAXPIN_RUN_DIR"
    #endif

    /// `DAXPIN_RUN_DIR` when set and this is a debug build; nil in release builds.
    package static func override(environment: (String) -> String?) -> String? {
        #if DAXPIN_TESTING
        if let explicit = environment(overrideVariable), !explicit.isEmpty { return explicit }
        #endif
        return nil
    }

    /// The directory this process publishes into.
    package static func forCurrentProcess() -> String {
        resolve(environment: Syscalls.environment, uid: Syscalls.realUserID())
    }

    /// The run directory for `uid` given an environment lookup (pure, for tests).
    package static func resolve(environment: (String) -> String?, uid: uid_t) -> String {
        if let explicit = override(environment: environment) { return explicit }
        if uid == 0 { return "/run/daxpin" }
        if let runtime = environment("XDG_RUNTIME_DIR"), runtime.hasPrefix("/") { return runtime + "/daxpin" }
        return "/tmp/daxpin-\(uid)"
    }

    /// Every directory a privileged reader scans when no override is set: root's own, each
    /// user's `/run/user/UID/daxpin` and each `/tmp/daxpin-UID`.
    package static func allCandidates() -> [String] {
        var found = ["/run/daxpin"]
        for uid in listDirectory("/run/user").compactMap({ UInt32($0) }).sorted() {
            found.append("/run/user/\(uid)/daxpin")
        }
        for name in listDirectory("/tmp").sorted() where name.hasPrefix("daxpin-") && UInt32(name.dropFirst(7)) != nil {
            found.append("/tmp/" + name)
        }
        return found
    }

    /// The uid a directory under a well-known location must belong to (nil: any owner the
    /// caller checks file by file, as for `/run/daxpin` which belongs to root).
    static func expectedOwner(of directory: String) -> uid_t? {
        if directory == "/run/daxpin" { return 0 }
        if directory.hasPrefix("/tmp/daxpin-") { return UInt32(directory.dropFirst("/tmp/daxpin-".count)) }
        let parts = directory.split(separator: "/")
        if parts.count == 4, parts[0] == "run", parts[1] == "user", parts[3] == "daxpin" { return UInt32(parts[2]) }
        return nil
    }

    /// Creates the directory (mode 0700) if missing and opens it without following symlinks;
    /// refuses a directory owned by someone else (`EACCES`). Returns the directory descriptor.
    static func openForPublishing(_ path: String) throws(Errno) -> Int32 {
        do { try Syscalls.mkdir(path, 0o700) } catch where error == .fileExists {
            // already there: checked below
        }  // another error (a missing parent: $XDG_RUNTIME_DIR gone): nothing to publish into
        let fd = try Syscalls.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        do throws(Errno) {
            let info = try Syscalls.fstat(fd)
            guard info.st_uid == Syscalls.effectiveUserID(), info.st_mode & S_IFMT == S_IFDIR else { throw Errno.permissionDenied }
            return fd
        } catch {
            try? Syscalls.close(fd)
            throw error
        }
    }

    private static let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

    package static func listDirectory(_ path: String) -> [String] {
        guard let dir = try? Syscalls.openDirectory(path) else { return [] }
        defer { Syscalls.closeDirectory(dir) }
        var names: [String] = []
        while let entry = Syscalls.readDirectory(dir) {
            // Read the name in place, up to its NUL: a record is only d_reclen bytes long, so
            // copying the whole 256-byte d_name reads past the last record of readdir's buffer.
            let name = String(cString: UnsafeRawPointer(entry).advanced(by: Self.nameOffset).assumingMemoryBound(to: CChar.self))
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }
}

/// Facts about a process from `/proc/<pid>`, used to publish and to detect stale files.
package enum ProcessInfoReader {
    /// The start time in clock ticks since boot (`/proc/<pid>/stat` field 22), nil if the
    /// process does not exist.
    package static func startTicks(of pid: Int32) -> UInt64? {
        guard let stat = readSmallFile("/proc/\(pid)/stat", limit: 4096) else { return nil }
        // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// `/proc/<pid>/comm` without the newline.
    package static func name(of pid: Int32) -> String? {
        readSmallFile("/proc/\(pid)/comm", limit: 256).map { $0.trimmingCharacters(in: "\n") }
    }

    /// The owner uid of `/proc/<pid>`: the process's effective uid, as the kernel shows it.
    package static func ownerUID(of pid: Int32) -> uid_t? {
        (try? Syscalls.stat("/proc/\(pid)"))?.st_uid
    }

    /// Reads a small file (a /proc entry) to EOF, at most `limit` bytes.
    package static func readSmallFile(_ path: String, limit: Int) -> String? {
        guard let fd = try? Syscalls.open(path, O_RDONLY | O_CLOEXEC) else { return nil }
        defer { try? Syscalls.close(fd) }
        return readAll(fd, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Reads `fd` to EOF; nil if it holds more than `limit` bytes or a read fails.
    static func readAll(_ fd: Int32, limit: Int) -> [UInt8]? {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            guard let count = try? Syscalls.read(fd, &chunk, chunk.count) else { return nil }
            if count == 0 { return data }
            data.append(contentsOf: chunk[0..<count])
            if data.count > limit { return nil }
        }
    }
}
