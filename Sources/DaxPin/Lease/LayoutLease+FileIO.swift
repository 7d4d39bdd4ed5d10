// Reading and writing the leased file without opening it again.
extension LayoutLease {
    /// Reads the file at `offset` into `buffer` through the lease's own descriptor
    /// (`pread(2)`), until `buffer` is full or the file ends.
    ///
    /// Any `open(2)` of a leased file breaks the lease, even an open by this process: this is
    /// the way to do file I/O next to the lease. The bytes are the file's, the same ones a
    /// pinned region of a file maps (a staged region's bounce buffer is the exception: it is
    /// a copy until ``PinnedRegion/writeBack(offset:length:)``).
    ///
    /// ```swift
    /// var header = [UInt8](repeating: 0, count: 64)
    /// var span = header.mutableSpan
    /// var bytes = span.mutableBytes
    /// let count = try lease.read(into: &bytes, at: 0)
    /// ```
    ///
    /// - Parameters:
    ///   - buffer: Where the bytes go; its whole length is asked for.
    ///   - offset: Where in the file to start reading.
    /// - Returns: The number of bytes read: fewer than `buffer.byteCount` only at the end of the file.
    /// - Throws: `.revoked` once the lease is revoked or being torn down, `.featureUnavailable`
    ///   for anonymous memory (no file), `.systemCall` with the kernel's errno (EINVAL for a
    ///   negative offset, or on device-dax, which has no `read(2)`).
    public func read(into buffer: inout MutableRawSpan, at offset: Int) throws(DaxPinError) -> Int {
        try buffer.withUnsafeMutableBytes { (bytes) throws(DaxPinError) -> Int in
            try core.read(into: bytes, at: offset)
        }
    }

    /// Writes all of `bytes` to the file at `offset` through the lease's own descriptor
    /// (`pwrite(2)`), without opening the file again (which would break the lease). Writing
    /// past the end extends the file; it does not break the lease (only an open or a truncate
    /// does). Not durable by itself: ``PinnedRegion/persist(offset:length:)`` a region that
    /// maps the range, or let the file system write it back.
    ///
    /// ```swift
    /// let record: [UInt8] = Array("hello".utf8)
    /// try lease.write(record.span.bytes, at: 4096)
    /// ```
    ///
    /// - Parameters:
    ///   - bytes: The bytes to write.
    ///   - offset: Where in the file they go.
    /// - Throws: `.systemCall(EACCES)` on a read-only lease, `.revoked` once the lease is
    ///   revoked or being torn down, `.featureUnavailable` for anonymous memory, `.systemCall`
    ///   with the kernel's errno (EINVAL for a negative offset).
    public func write(_ bytes: RawSpan, at offset: Int) throws(DaxPinError) {
        try bytes.withUnsafeBytes { (raw) throws(DaxPinError) in
            try core.write(raw, at: offset)
        }
    }
}
