import Glibc

// Small readers of /proc, /sys and the clock shared by the library, the `daxpin` command and
// the tests (`package` visibility: one copy of each, not part of the public API).

/// Reads a text file to EOF (/proc files report size 0), or "" when it cannot be read or
/// holds more than `limit` bytes.
package func readTextFile(_ path: String, limit: Int = 16 << 20) -> String {
    ProcessInfoReader.readSmallFile(path, limit: limit) ?? ""
}

/// A small decimal (or `0x` hexadecimal) integer from a sysfs attribute or /proc/sys tunable.
package func readSmallInt(_ path: String) -> Int? {
    let text = readTextFile(path, limit: 64).filter { !$0.isWhitespace }
    if text.hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
    return Int(text)
}

/// `realpath(3)`, or nil.
package func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// `strerror(3)` of `code` (by default the calling thread's `errno`): the one errno-to-text
/// helper for messages.
package func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

/// The running kernel's release string (`uname -r`), e.g. `7.2.13+deb14-amd64`.
package func runningKernelRelease() -> String {
    var name = utsname()
    uname(&name)
    return withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

extension timespec {
    /// Seconds since the epoch of its clock, as a Double.
    package var seconds: Double { Double(tv_sec) + Double(tv_nsec) / 1e9 }
}

/// Seconds since the Unix epoch, now.
package func wallClockSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return now.seconds
}

extension String {
    /// The string without leading and trailing characters from `set` (no Foundation).
    func trimmingCharacters(in set: String) -> String {
        let drop = Set(set)
        var slice = Substring(self)
        while let first = slice.first, drop.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, drop.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
