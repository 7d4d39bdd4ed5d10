import DaxPin

/// `daxpin ls --format prometheus`: the listing in node_exporter's textfile format. Each
/// family is always written (empty when nothing matches), so an alert on
/// `daxpin_at_risk_mappings > 0` sees 0, not a missing series, on a healthy machine.
enum PinListPrometheus {
    /// The registry view (`--no-all`): DaxPin's leases only.
    static func render(_ list: PinList) -> String {
        var text = PrometheusText()
        LeaseTextfile.append(leases(list.pins), to: &text)
        text.family("daxpin_registry_files_skipped", help: "Registry files daxpin ls skipped for safety.",
                    [.init([], Double(list.rejected.count))])
        return text.text
    }

    /// Every pinning process (`--all`): MRs and their bytes per process and device, VmPin,
    /// io_uring buffers, at-risk mappings, and DaxPin's leases.
    static func render(_ list: MachinePinList) -> String {
        var text = PrometheusText()
        func process(_ p: ListedProcess) -> [(String, String)] { [("pid", String(p.pid)), ("process", p.process)] }
        var regions: [PrometheusText.Sample] = [], regionBytes: [PrometheusText.Sample] = []
        for p in list.processes {
            for device in p.memoryRegions {
                regions.append(.init(process(p) + [("device", device.device)], Double(device.count)))
                regionBytes.append(.init(process(p) + [("device", device.device)], Double(device.bytes)))
            }
        }
        text.family("daxpin_process_memory_regions", help: "RDMA memory registrations (MRs) of a process on a device (rdma netlink).", regions)
        text.family("daxpin_process_memory_region_bytes", help: "Bytes of a process's MRs on a device (rdma netlink).", regionBytes)
        text.family("daxpin_process_pinned_bytes", help: "VmPin of a process: bytes pinned long term as the kernel counts them.",
                    list.processes.compactMap { p in p.vmPinBytes.map { .init(process(p), Double($0)) } })
        text.family("daxpin_process_io_uring_buffers", help: "io_uring registered buffers of a process.",
                    list.processes.filter { !$0.ioUring.isEmpty }.map { p in
                        .init(process(p), Double(p.ioUring.reduce(0) { $0 + $1.bufferCount }))
                    })
        text.family("daxpin_process_daxpin", help: "1 when the process publishes DaxPin leases, else 0.",
                    list.processes.map { .init(process($0), $0.daxpin ? 1 : 0) })
        text.family("daxpin_at_risk_pin", help: "A shared file mapping at risk: pinned while mapped writable and shared without a lease (evidence exact or circumstantial).",
                    list.processes.flatMap { p in
                        p.warnings.map { .init(process(p) + [("path", $0.path), ("evidence", $0.evidence)], 1) }
                    })
        text.family("daxpin_at_risk_mappings", help: "How many shared file mappings on the machine are at risk (the WARNING rows).",
                    [.init([], Double(list.processes.reduce(0) { $0 + $1.warnings.count }))])
        text.family("daxpin_unattributed_memory_regions", help: "MRs no process is named for (a kernel module's, or an exited thread's), per device and owner.",
                    list.unattributedMemoryRegions.map { .init([("device", $0.device), ("owner", $0.owner)], Double($0.count)) })
        LeaseTextfile.append(leases(list.pins), to: &text)
        text.family("daxpin_ls_problems", help: "Sources daxpin ls --all could not read (see daxpin ls --all for why).",
                    [.init([], Double(list.problems.count))])
        return text.text
    }

    private static func leases(_ pins: [ListedPin]) -> [LeaseTextfile.Lease] {
        pins.map { LeaseTextfile.Lease(pid: $0.pid, process: $0.process, path: $0.path, state: $0.state, regions: $0.regions) }
    }
}
