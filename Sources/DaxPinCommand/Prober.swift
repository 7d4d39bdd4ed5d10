import DaxPin
import Glibc

/// Gathers a ``ProbeReport`` for one path without pinning anything: the memory is inspected
/// through an `O_PATH` descriptor, the lease is taken for real on a fresh descriptor and
/// released at once (unless another process holds one, which taking ours would break).
struct Prober {
    let path: String
    let access: Access
    let deviceName: String?
    let policy: StrategyPolicy

    func run() -> ProbeReport {
        var report = ProbeReport(path: path, access: access.description, wouldWork: false, problems: [])
        report.leaseBreakTimeSeconds = readSmallInt("/proc/sys/fs/lease-break-time")
        let inspection: MemoryInspection
        do {
            inspection = try MemoryInspection(path: path)
        } catch {
            report.problems.append(error.description)
            return report
        }
        let memory = inspection.kind
        report.memory = .init(kind: memory.probeKind, description: memory.description, fileSystem: memory.fileSystemName,
                              alignment: memory.alignmentIfDeviceDAX, daxAttribute: inspection.daxAttribute,
                              size: inspection.size, device: inspection.device.description, inode: inspection.inode)
        report.mount = MountTable.mount(containing: path, device: inspection.fileSystemDevice)

        let device = openDevice(&report)
        report.lease = probeLease(inspection, &report)

        // The device's ODP is checked (moved bytes compared) before the forecast relies on it.
        // On the memory kind and file system of `path`, as a pin of it would be.
        let directory = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let onDemandPaging = device?.onDemandPaging(for: access, memory: memory, directory: directory) ?? .notOffered
        if device != nil { report.device?.odpVerdict = onDemandPaging.description }
        let forecast = StrategyForecast(path: path, memory: memory, access: access, device: device?.name ?? "none",
                                        onDemandPaging: onDemandPaging, policy: policy)
        report.strategy = .init(policy: policy == .auto ? "auto" : "zero-copy", strategy: forecast.strategy?.description,
                                reasons: forecast.reasons, refusal: forecast.refusal?.description)
        if let refusal = forecast.refusal, device != nil {
            report.problems.append(refusal.description)
        }
        report.wouldWork = report.problems.isEmpty
        return report
    }

    private func openDevice(_ report: inout ProbeReport) -> RDMADevice? {
        let available = RDMADevice.availableDevices()
        let none = ProbeReport.Transport(.init())
        report.device = .init(name: "none", available: available, odp: false, odpRC: none, odpUC: none, odpUD: none)
        do {
            let device = if let deviceName { try RDMADevice.open(named: deviceName) } else { try RDMADevice.openFirst() }
            let caps = device.capabilities
            report.device = .init(name: device.name, available: available, odp: caps.odp, odpRC: .init(caps.odpRC),
                                  odpUC: .init(caps.odpUC), odpUD: .init(caps.odpUD), maxMRSize: caps.maxMRSize)
            return device
        } catch {
            report.problems.append(error.description)
            return nil
        }
    }

    private func probeLease(_ inspection: MemoryInspection, _ report: inout ProbeReport) -> ProbeReport.Lease {
        guard inspection.kind.isLeasable else {
            return .init(possible: true, kind: "none",
                         detail: "none needed: \(inspection.kind) is a character device and cannot be truncated")
        }
        let others = KernelLease.current().filter {
            $0.device == inspection.fileSystemDevice && $0.inode == inspection.inode && $0.pid != Syscalls.processID()
        }
        if let holder = others.first {
            let name = ProcessInfoReader.name(of: holder.pid).map { " (\($0))" } ?? ""
            let detail = "not tried: pid \(holder.pid)\(name) holds a \(holder.type.lowercased()) lease on this file"
                + (holder.breaking ? " that the kernel is breaking" : "")
                + "; taking ours would break it. A pin now fails with EAGAIN (file in use)"
            report.problems.append("\(path): leased by pid \(holder.pid)\(name); the pin's lease would be refused (EAGAIN)")
            return .init(possible: false, kind: "none", detail: detail)
        }
        do {
            let lease = try LayoutLease(path: path, access: access)
            let kind = lease.kind.description
            lease.release()
            return .init(possible: true, kind: kind, detail: "\(kind): taken on a fresh descriptor and released at once")
        } catch {
            report.problems.append(error.description)
            return .init(possible: false, kind: "none", detail: error.description)
        }
    }
}
