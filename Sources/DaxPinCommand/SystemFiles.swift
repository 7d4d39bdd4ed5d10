import Glibc

/// Reads a (small) text file to EOF, or "" when it cannot be read; /proc files report size 0.
func readTextFile(_ path: String, limit: Int = 16 << 20) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while data.count < limit {
        let count = read(fd, &chunk, chunk.count)
        if count < 0, errno == EINTR { continue }
        guard count > 0 else { break }
        data.append(contentsOf: chunk[0..<count])
    }
    return String(decoding: data, as: UTF8.self)
}

/// `realpath(3)`, or nil.
func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// A small integer from a /proc/sys tunable, or nil.
func readTunable(_ path: String) -> Int? {
    Int(readTextFile(path, limit: 64).filter { !$0.isWhitespace })
}

/// The running kernel's (major, minor), from uname(2).
func runningKernel() -> (major: Int, minor: Int) {
    var name = utsname()
    uname(&name)
    let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let parts = release.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    return (parts.first ?? 0, parts.dropFirst().first ?? 0)
}

/// Seconds since the Unix epoch, now.
func wallClockSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
