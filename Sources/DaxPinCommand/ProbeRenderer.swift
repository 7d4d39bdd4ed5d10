/// The human-readable form of a ``ProbeReport``: aligned `label  value` lines.
struct ProbeRenderer {
    let report: ProbeReport
    let terminal: Terminal

    var text: String {
        var table = TextTable(headers: [])
        func add(_ label: String, _ value: String, _ colour: Terminal.Colour? = nil) {
            table.append([TextTable.Cell(label, .bold), TextTable.Cell(value, colour)])
        }
        add("path", report.path)
        add("access", report.access)
        if let memory = report.memory {
            add("memory", "\(memory.kind): \(memory.description)")
            if let alignment = memory.alignment { add("alignment", "\(Format.bytes(alignment)) (offsets and lengths must be multiples)") }
            add("size", "\(memory.size) bytes")
            add("file", "device \(memory.device), inode \(memory.inode)")
            add("DAX attribute", memory.daxAttribute.map { $0 ? "on (STATX_ATTR_DAX)" : "off" } ?? "not reported by the file system")
        }
        if let mount = report.mount {
            add("file system", "\(mount.fileSystem) on \(mount.mountPoint) from \(mount.source)")
            add("mount options", "\(mount.mountOptions); super: \(mount.superOptions)")
        }
        if let device = report.device {
            let others = device.available.isEmpty ? "no RDMA device on this machine" : "present: " + device.available.joined(separator: ", ")
            add("RDMA device", "\(device.name) (\(others))", device.name == "none" ? .red : nil)
            if device.name != "none" {
                add("ODP", device.odp ? "supported" : "not supported (IBV_ODP_SUPPORT unset)")
                add("ODP per transport", "RC: \(device.odpRC.summary); UC: \(device.odpUC.summary); UD: \(device.odpUD.summary)")
                if let verdict = device.odpVerdict {
                    add("ODP check", verdict, verdict == "verified" ? .green : verdict == "not offered" ? nil : .red)
                }
            }
            add("verbs build", device.verbsBuild)
        }
        if let lease = report.lease {
            add("lease", lease.detail, lease.possible ? .green : .red)
        }
        add("lease-break-time", report.leaseBreakTimeSeconds.map { "\($0) s (revocation must finish within it)" } ?? "unknown")
        if let strategy = report.strategy {
            let choice = strategy.strategy ?? "refused"
            add("strategy (\(strategy.policy))", choice, strategy.strategy == nil ? .red : .green)
            for reason in strategy.reasons { add("", reason) }
            if let refusal = strategy.refusal { add("refusal", refusal) }
        }
        if report.wouldWork {
            add("verdict", "a pin would work", .green)
        } else {
            add("verdict", "a pin would not work: " + report.problems.joined(separator: "; "), .red)
        }
        return table.render(on: terminal)
    }
}
