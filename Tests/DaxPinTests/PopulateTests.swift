@testable import DaxPin
import Foundation
import Testing

extension DaxPin {
    /// `Populate.range` faults every page of a range in, split across threads or not.
    @Suite struct PopulateRange {
        /// Pages of `[base, base + length)` that are resident (mincore).
        static func residentPages(_ base: UnsafeMutableRawPointer, length: Int) -> Int {
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            var vector = [UInt8](repeating: 0, count: (length + page - 1) / page)
            guard mincore(base, length, &vector) == 0 else { return -1 }
            return vector.count { $0 & 1 != 0 }
        }

        // Lengths that do not divide evenly, so the last part is short, and alignments of a page
        // and of a 2 MiB huge page, so the parts' rounding is exercised on both.
        @Test("every page of a private writable mapping is allocated", arguments: [
            (threads: 1, length: (40 << 20) + 12288, alignment: 4096),
            (threads: 2, length: (70 << 20) + 12288, alignment: 4096),
            (threads: 3, length: (96 << 20) + 4096, alignment: 4096),
            (threads: 3, length: (96 << 20) + 4096, alignment: 2 << 20),
        ])
        func privateWritable(threads: Int, length: Int, alignment: Int) throws {
            let base = try #require(mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
            try #require(base != MAP_FAILED)
            defer { munmap(base, length) }
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            #expect(Self.residentPages(base, length: length) == 0)
            Populate.range(base, length: length, write: true, alignment: alignment, threads: threads)
            #expect(Self.residentPages(base, length: length) == length / page)
        }

        @Test("every page of a sparse tmpfs file's shared mapping is faulted in for reading, the file unchanged")
        func sharedFile() throws {
            let length = (64 << 20) + 8192
            let path = "\(HostDirs.tmpfs)/daxpin-populate-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            try #require(fd >= 0)
            defer { close(fd); unlink(path) }
            try #require(ftruncate(fd, off_t(length)) == 0)  // sparse: no page is allocated yet
            let base = try #require(mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0))
            try #require(base != MAP_FAILED)
            defer { munmap(base, length) }
            #expect(Self.residentPages(base, length: length) == 0)
            Populate.range(base, length: length, write: false, alignment: 4096, threads: 2)
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            #expect(Self.residentPages(base, length: length) == length / page)
            var status = stat()
            #expect(fstat(fd, &status) == 0 && status.st_size == length)
            #expect(base.load(fromByteOffset: length - 1, as: UInt8.self) == 0)
        }
    }
}
