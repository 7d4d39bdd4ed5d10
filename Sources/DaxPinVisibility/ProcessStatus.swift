import DaxPin

/// `/proc/<pid>/status`, the one line `daxpin ls --all` needs from it.
package enum ProcessStatus {
    /// `VmPin`: bytes pinned long-term by the process (RDMA registrations, io_uring buffers,
    /// VFIO), which the kernel counts in `mm->pinned_vm`; nil when the line is missing
    /// (kernel threads, an exited process).
    package static func pinnedBytes(in status: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasPrefix("VmPin:") {
            // "VmPin:\t    1024 kB"
            let fields = line.dropFirst("VmPin:".count).split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count == 2, fields[1] == "kB", let kibibytes = Int(fields[0]),
                  kibibytes >= 0, kibibytes <= Int.max / 1024 else { return nil }
            return kibibytes * 1024
        }
        return nil
    }
}

extension ProcessStatus {
    /// `Tgid`: the process a thread belongs to.
    package static func threadGroup(in status: String) -> Int32? {
        for line in status.split(separator: "\n") where line.hasPrefix("Tgid:") {
            return Int32(line.dropFirst("Tgid:".count).filter { $0 != " " && $0 != "\t" })
        }
        return nil
    }
}
