import DaxPin
import Glibc

/// Every process the viewer may see that holds long-term pins, as the kernel shows them:
/// rdma netlink's MR table, `/proc/<pid>/status` `VmPin`, io_uring rings' registered buffers
/// in `/proc/<pid>/fdinfo`, and each such process's shared file mappings, classified.
package struct PinSurvey: Sendable {
    /// The pinning processes (and the DaxPin publishers asked about), by pid.
    package var processes: [ProcessPinFacts] = []
    /// MRs without a process: owned by a kernel module (named instead of a pid), or registered
    /// by a thread that has exited (the kernel then reports no pid); root only.
    package var unattributedMemoryRegions: [RdmaMemoryRegionEntry] = []
    /// Sources that could not be read, each saying why and what to do.
    package var problems: [String] = []

    /// Surveys the machine. `viewerUID` 0 sees every process, others only their own;
    /// `registryPIDs` are DaxPin publishers, included even when they pin nothing.
    package static func collect(viewerUID: uid_t, registryPIDs: Set<Int32>) -> PinSurvey {
        var survey = PinSurvey()
        var regionsByProcess: [Int32: [RdmaMemoryRegionEntry]] = [:]
        var processOfThread: [Int32: Int32] = [:]
        do throws(VisibilityError) {
            for entry in try RdmaMemoryRegionTable.current() {
                if let tid = entry.pid {
                    let pid = processOfThread[tid] ?? threadGroup(of: tid)
                    processOfThread[tid] = pid
                    regionsByProcess[pid, default: []].append(entry)
                } else if viewerUID == 0 {
                    survey.unattributedMemoryRegions.append(entry)
                }
            }
        } catch {
            survey.problems.append(error.description)
        }
        let pids = RunDirectory.listDirectory("/proc").compactMap { Int32($0) }.sorted()
        for pid in pids {
            guard let owner = ProcessInfoReader.ownerUID(of: pid), viewerUID == 0 || owner == viewerUID else { continue }
            let pinned = ProcessInfoReader.readSmallFile("/proc/\(pid)/status", limit: 64 << 10).flatMap(ProcessStatus.pinnedBytes(in:))
            let regions = regionsByProcess[pid] ?? []
            // Every process's rings are looked at: VmPin need not count registered buffers
            // (Linux 7.2 leaves them out for a process with CAP_IPC_LOCK).
            let rings = rings(of: pid).filter { $0.bufferCount > 0 }
            guard (pinned ?? 0) > 0 || !regions.isEmpty || !rings.isEmpty || registryPIDs.contains(pid) else { continue }
            var facts = ProcessPinFacts(pid: pid, name: ProcessInfoReader.name(of: pid) ?? "?", uid: owner,
                                        pinnedBytes: pinned, memoryRegions: regions, rings: rings,
                                        publishesRegistry: registryPIDs.contains(pid))
            facts.files = classifiedFiles(of: pid)
            survey.processes.append(facts)
        }
        return survey
    }

    /// The thread group (process) of a thread id: rdma netlink names the thread that created
    /// the MR's context, which need not be the main thread.
    static func threadGroup(of tid: Int32) -> Int32 {
        guard let status = ProcessInfoReader.readSmallFile("/proc/\(tid)/status", limit: 64 << 10) else { return tid }
        return ProcessStatus.threadGroup(in: status) ?? tid
    }

    /// The io_uring rings among `pid`'s descriptors, with their registered buffers.
    static func rings(of pid: Int32) -> [IoUringRegistration] {
        let directory = "/proc/\(pid)/fd"
        return RunDirectory.listDirectory(directory).compactMap { Int32($0) }.sorted().compactMap { fd in
            guard (try? Syscalls.readLink("\(directory)/\(fd)")) == IoUringRegistration.descriptorTarget,
                  let fdinfo = ProcessInfoReader.readSmallFile("/proc/\(pid)/fdinfo/\(fd)", limit: 1 << 20) else { return nil }
            return IoUringRegistration.parse(fdinfo: fdinfo, fd: fd)
        }
    }

    /// `pid`'s shared file mappings, one per file, each classified; device registers and
    /// queues (character devices other than device-dax) are left out.
    static func classifiedFiles(of pid: Int32) -> [MappedFile] {
        let maps = ProcessInfoReader.readSmallFile("/proc/\(pid)/maps", limit: 64 << 20) ?? ""
        return MappedFile.group(ProcessMapping.parse(maps)).compactMap { file in
            var file = file
            switch MappedFileInspection.classify(file, pid: pid) {
            case .success(let kind): file.kind = kind
            case .failure(let failure) where failure.isNotMemory: return nil
            case .failure(let failure): file.inspectionProblem = failure.reason
            }
            return file
        }
    }
}
