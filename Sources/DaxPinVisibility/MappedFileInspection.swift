import DaxPin
import Glibc

/// Classifies the file behind another process's mapping with the library's classifier
/// (``MemoryInspection``: an `O_PATH` open, which breaks no lease). Root goes through
/// `/proc/<pid>/map_files/`, which reaches the mapped file itself even when it was renamed or
/// deleted; others (not allowed there) use the path, checked against the mapping's device
/// and inode so that a different file at that path is not classified instead.
package enum MappedFileInspection {
    /// The kind of `file`, mapped by `pid`, or why it could not be found out.
    package static func classify(_ file: MappedFile, pid: Int32) -> Result<MemoryKind, InspectionFailure> {
        var candidates: [String] = []
        if let first = file.ranges.first {
            candidates.append("/proc/\(pid)/map_files/\(String(first.start, radix: 16))-\(String(first.end, radix: 16))")
        }
        if !file.path.hasSuffix(" (deleted)") { candidates.append(file.path) }
        var failure = InspectionFailure(reason: "no path to inspect", isNotMemory: false)
        for path in candidates {
            do throws(DaxPinError) {
                let inspection = try MemoryInspection(path: path)
                guard inspection.fileSystemDevice == file.device, inspection.inode == file.inode else {
                    failure = InspectionFailure(reason: "\(file.path) is now another file", isNotMemory: false)
                    continue
                }
                return .success(inspection.kind)
            } catch .unsupportedFileType(_, let type) {
                // A device's registers or queues (an RDMA device's uverbs queues): not file memory.
                return .failure(InspectionFailure(reason: type, isNotMemory: true))
            } catch {
                failure = InspectionFailure(reason: "\(error)", isNotMemory: false)
            }
        }
        return .failure(failure)
    }

    /// Why a mapped file was not classified.
    package struct InspectionFailure: Error, Sendable, Equatable {
        /// The last reason (from the path when both ways failed).
        package var reason: String
        /// Whether the mapping is of something other than memory a pin could orphan (a
        /// character device that is not device-dax, such as `/dev/infiniband/uverbs0`).
        package var isNotMemory: Bool
    }
}
