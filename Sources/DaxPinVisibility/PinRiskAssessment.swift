import DaxPin

/// How sure a warning is that a pin covers the file.
package enum PinEvidence: String, Sendable, Equatable {
    /// The kernel lists the pinned address range (io_uring buffers), and it lies inside the mapping.
    case exact
    /// The process pins memory and maps the file, but the kernel does not say where its pins
    /// are (RDMA MRs carry no address on Linux 6.1 and 7.2; `VmPin` is a total).
    case circumstantial
}

/// What a process's shared mapping of a file means for the file's safety.
package enum MappingVerdict: Sendable, Equatable {
    /// The process holds a lease on the file: a truncate or open reaches it first.
    case leased
    /// Pinned memory may cover the mapping and no lease of the process protects the file.
    case atRisk(PinEvidence)
    /// The mapping is read-only: a pin of it cannot write.
    case readOnly
    /// The process pins nothing: no pins at all, only On-Demand Paging MRs (VmPin 0), or only
    /// io_uring buffers that lie elsewhere.
    case notPinned
    /// fs-dax: the kernel refuses long-term pins (On-Demand Paging MRs do not pin).
    case notLongTermPinnable
    /// device-dax: cannot be truncated.
    case notTruncatable
    /// The file could not be classified.
    case unknown

    /// The word `daxpin ls --all` shows.
    package var label: String {
        switch self {
        case .leased: "leased"
        case .atRisk: "AT RISK"
        case .readOnly: "read-only"
        case .notPinned: "not pinned"
        case .notLongTermPinnable: "no long-term pin (fs-dax)"
        case .notTruncatable: "cannot be truncated"
        case .unknown: "unknown"
        }
    }
}

/// One mapped file, judged.
package struct AssessedFile: Sendable {
    /// The file and its mappings.
    package var file: MappedFile
    /// The kernel's leases on the file (any holder).
    package var leases: [KernelLease]
    /// The lease as the process sees it: `write lease`, `none`, `write lease of pid 42`, ...
    package var leaseText: String
    /// The verdict.
    package var verdict: MappingVerdict
}

/// A warning: the file, how sure, and why, in words.
package struct PinWarning: Sendable, Equatable {
    /// The mapped file at risk.
    package var path: String
    /// Exact or circumstantial.
    package var evidence: PinEvidence
    /// What could happen and why this process is suspected.
    package var reason: String
}

/// A process with its mapped files judged and its warnings.
package struct AssessedProcess: Sendable {
    /// The facts judged.
    package var facts: ProcessPinFacts
    /// Its mapped files, in address order.
    package var files: [AssessedFile]
    /// One warning per file at risk.
    package var warnings: [PinWarning]
}

/// Judges which of a process's shared file mappings its long-term pins put at risk: a pin of a
/// tmpfs or page-cache page outlives a truncate of the file, and the NIC (or io_uring) then
/// writes into orphaned pages that are no longer the file. A lease held by the process is what
/// lets it stop first. Pure: the facts and `/proc/locks` in, the verdicts out.
package enum PinRiskAssessment {
    /// Judges `facts` against the kernel's `leases`; `kernel` says whether writable page-cache
    /// pins are possible at all.
    package static func assess(_ facts: ProcessPinFacts, leases: [KernelLease],
                               kernel: KernelBehaviour = .running, pageSize: UInt64? = nil) -> AssessedProcess {
        let pageSize = pageSize ?? UInt64(SystemPage.size)
        var files: [AssessedFile] = []
        var warnings: [PinWarning] = []
        for file in facts.files {
            let onFile = leases.filter { $0.device == file.device && $0.inode == file.inode }
            let own = onFile.first { $0.pid == facts.pid }
            let verdict = verdict(for: file, facts: facts, leasedByProcess: own != nil, pageSize: pageSize)
            files.append(AssessedFile(file: file, leases: onFile, leaseText: leaseText(own: own, all: onFile), verdict: verdict))
            if case .atRisk(let evidence) = verdict {
                warnings.append(PinWarning(path: file.path, evidence: evidence,
                                           reason: reason(file, facts: facts, evidence: evidence, others: onFile, kernel: kernel)))
            }
        }
        return AssessedProcess(facts: facts, files: files, warnings: warnings)
    }

    static func verdict(for file: MappedFile, facts: ProcessPinFacts, leasedByProcess: Bool, pageSize: UInt64) -> MappingVerdict {
        switch file.kind {
        case nil: return .unknown
        case .fsDAX?: return .notLongTermPinnable
        case .deviceDAX?, .anonymous?: return .notTruncatable
        case .sharedMemory?, .pageCache?: break
        }
        guard file.writable else { return .readOnly }
        if leasedByProcess { return .leased }
        guard facts.pinsMemory else { return .notPinned }
        if !overlappingBuffers(file, facts: facts).isEmpty { return .atRisk(.exact) }
        // A pinned MR always adds its pages to VmPin; On-Demand Paging MRs pin nothing. So MRs
        // with VmPin 0 are all On-Demand Paging, which follows a truncate instead of orphaning.
        if !facts.memoryRegions.isEmpty, facts.pinnedBytes != 0 { return .atRisk(.circumstantial) }
        // Only io_uring buffers (or nothing) are known: they lie elsewhere when every buffer is
        // listed and they account for all of VmPin.
        let allListed = facts.rings.allSatisfy(\.addressesListed)
        return allListed && unexplainedPinnedBytes(facts, pageSize: pageSize) <= 0 ? .notPinned : .atRisk(.circumstantial)
    }

    /// The io_uring buffers inside the writable ranges of `file`.
    static func overlappingBuffers(_ file: MappedFile, facts: ProcessPinFacts) -> [(fd: Int32, buffer: IoUringRegistration.Buffer)] {
        facts.rings.flatMap { ring in
            ring.buffers.filter { buffer in
                file.ranges.contains { $0.writable && $0.overlaps(address: buffer.address, length: buffer.length) }
            }.map { (fd: ring.fd, buffer: $0) }
        }
    }

    /// `VmPin` less what listed io_uring buffers account for (whole pages each).
    static func unexplainedPinnedBytes(_ facts: ProcessPinFacts, pageSize: UInt64) -> Int64 {
        let buffers = facts.rings.flatMap(\.buffers).reduce(UInt64(0)) { total, buffer in
            let first = buffer.address / pageSize, last = (buffer.address &+ buffer.length &+ pageSize &- 1) / pageSize
            return total &+ (last &- first) &* pageSize
        }
        return Int64(facts.pinnedBytes ?? 0) - Int64(clamping: buffers)
    }

    static func leaseText(own: KernelLease?, all: [KernelLease]) -> String {
        func describe(_ lease: KernelLease) -> String {
            let type = lease.type == "WRITE" ? "write lease" : lease.type == "READ" ? "read lease" : "lease (\(lease.type.lowercased()))"
            return lease.breaking ? "\(type), breaking" : type
        }
        if let own { return describe(own) }
        if let other = all.first { return "\(describe(other)) of pid \(other.pid)" }
        return "none"
    }

    static func reason(_ file: MappedFile, facts: ProcessPinFacts, evidence: PinEvidence, others: [KernelLease],
                       kernel: KernelBehaviour) -> String {
        let what = file.kind.map { "\($0)" } ?? "file"
        let unleased = others.first.map { "whose lease belongs to pid \($0.pid), not to this process" } ?? "without a lease"
        var text: String
        switch evidence {
        case .exact:
            let (fd, buffer) = overlappingBuffers(file, facts: facts)[0]
            text = "io_uring buffer \(buffer.index) of ring fd \(fd) (0x\(String(buffer.address, radix: 16)), "
                + "\(buffer.length) bytes) lies inside its writable shared mapping of \(file.path) (\(what)), \(unleased): "
                + "a truncate would leave the buffer's pages pinned and its I/O going to orphaned pages that are no longer the file. "
                + "Exact: the kernel lists io_uring buffer addresses."
        case .circumstantial where !facts.memoryRegions.isEmpty:
            let devices = Set(facts.memoryRegions.map(\.device)).sorted().joined(separator: ", ")
            let bytes = facts.memoryRegions.reduce(UInt64(0)) { $0 &+ ($1.length ?? 0) }
            text = "it has \(facts.memoryRegions.count) RDMA MR(s) (\(bytes) bytes on \(devices)) and maps \(file.path) "
                + "(\(what)) writable and shared \(unleased): if an MR covers the mapping, a truncate would leave its NIC "
                + "writing into orphaned pages that are no longer the file. Circumstantial: the kernel reports no MR "
                + "addresses (IOVA), so the MRs may cover other memory."
        case .circumstantial:
            text = "VmPin shows \(facts.pinnedBytes ?? 0) bytes pinned that no listed io_uring buffer explains, and it maps "
                + "\(file.path) (\(what)) writable and shared \(unleased): if that pin covers the mapping, a truncate would "
                + "leave the pinning device writing into orphaned pages that are no longer the file. Circumstantial: "
                + "VmPin is a total, without addresses."
        }
        if case .pageCache? = file.kind, !kernel.pinsWritablePageCache {
            text += " This kernel refuses writable long-term pins of page-cache files, so such a pin can only be read-only."
        }
        return text
    }
}
