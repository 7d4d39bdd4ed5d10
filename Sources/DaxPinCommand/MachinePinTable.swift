import DaxPin

/// The table `daxpin ls --all` prints: per process, its DaxPin registry rows (exact, as
/// `daxpin ls` shows them), then one row per device's MRs, its `VmPin`, each io_uring ring,
/// each shared file mapping, and a `WARNING` row per mapping at risk with the reason in words.
struct MachinePinTable {
    let list: MachinePinList
    let terminal: Terminal

    static let headers = ["PID", "PROCESS", "WHAT", "FILE", "DEV:INODE", "RANGE", "DETAIL", "MEMORY", "LEASE", "STATE"]

    var text: String {
        var table = TextTable(headers: Self.headers)
        let processes = Dictionary(list.processes.map { ($0.pid, $0) }, uniquingKeysWith: { first, _ in first })
        let pids = Set(list.pins.map(\.pid)).union(processes.keys).sorted()
        for pid in pids {
            for pin in list.pins where pin.pid == pid { registryRows(pin, into: &table) }
            if let process = processes[pid] { processRows(process, into: &table) }
        }
        for kernel in list.unattributedMemoryRegions {
            table.append(["-", kernel.owner == "exited thread" ? "?" : "[kernel]", "MRs", "-", "-", "-",
                          "\(kernel.device): \(kernel.count) MR(s), \(Format.bytes(Int(kernel.bytes))) (\(kernel.owner))", "-", "-", "-"])
        }
        var text = table.render(on: terminal)
        if pids.isEmpty && list.unattributedMemoryRegions.isEmpty {
            text += "\n" + terminal.paint("no long-term pins or DaxPin leases visible", .dim)
        }
        for problem in list.problems { text += "\n" + terminal.paint("note: \(problem)", .dim) }
        if !list.viewer.allUsers {
            text += "\n" + terminal.paint("only your own processes are shown (root sees every process and the MR keys)", .dim)
        }
        for rejected in list.rejected {
            text += "\n" + terminal.paint("skipped \(rejected.path): \(rejected.reason)", .yellow)
        }
        return text
    }

    private func registryRows(_ pin: ListedPin, into table: inout TextTable) {
        let what = pin.source == "registry" ? "daxpin" : "lease"
        let head = [String(pin.pid), pin.process, what, pin.path, "\(pin.device):\(pin.inode)"].map { TextTable.Cell($0) }
        let age = pin.ageSeconds.map { " age " + Format.age(seconds: $0) } ?? ""
        let tail = [TextTable.Cell(pin.memory ?? "-"), TextTable.Cell(pin.lease),
                    TextTable.Cell(pin.state, PinTable.colour(for: pin.state))]
        if pin.regions.isEmpty {
            table.append(head + [.init("-"), .init(age.isEmpty ? "-" : String(age.dropFirst()))] + tail)
        }
        for region in pin.regions {
            let detail = "\(region.strategy) rkey 0x\(String(region.rkey, radix: 16))\(age)"
            table.append(head + [.init("\(region.offset)+\(Format.bytes(region.length))"), .init(detail)] + tail)
        }
    }

    private func processRows(_ process: ListedProcess, into table: inout TextTable) {
        func row(_ what: String, file: String = "-", identity: String = "-", range: String = "-", detail: String,
                 memory: String = "-", lease: String = "-", state: TextTable.Cell = .init("-")) {
            table.append([String(process.pid), process.process, what, file, identity, range, detail, memory, lease]
                .map { TextTable.Cell($0) } + [state])
        }
        for device in process.memoryRegions {
            let numbers = device.regions.compactMap(\.mrn).map(String.init).joined(separator: ",")
            let keys = device.regions.compactMap(\.rkey).map { "0x" + String($0, radix: 16) }.joined(separator: ",")
            row("MRs", detail: "\(device.device): \(device.count) MR(s), \(Format.bytes(Int(device.bytes)))"
                + (numbers.isEmpty ? "" : " mrn \(numbers)") + (keys.isEmpty ? "" : " rkey \(keys)"))
        }
        if let pinned = process.vmPinBytes, pinned > 0 { row("VmPin", detail: Format.bytes(pinned)) }
        for ring in process.ioUring where ring.bufferCount > 0 {
            let bytes = ring.buffers.reduce(UInt64(0)) { $0 + $1.length }
            let addresses = ring.addressesListed
                ? ring.buffers.map { "0x\(String($0.address, radix: 16))+\(Format.bytes(Int($0.length)))" }.joined(separator: ",")
                : "addresses not listed (ring busy)"
            row("io_uring", detail: "fd \(ring.fd): \(ring.bufferCount) buffer(s), \(Format.bytes(Int(bytes))) \(addresses)")
        }
        for mapping in process.mappings {
            let first = mapping.ranges.first.map { "0x\(String($0.start, radix: 16))+\(Format.bytes(Int($0.end - $0.start)))" } ?? "-"
            let more = mapping.ranges.count > 1 ? " (+\(mapping.ranges.count - 1) more)" : ""
            row("mapping", file: mapping.path, identity: "\(mapping.device):\(mapping.inode)", range: first + more,
                detail: (mapping.writable ? "rw" : "ro") + " shared, \(Format.bytes(Int(mapping.bytes)))",
                memory: mapping.memory ?? "unknown", lease: mapping.lease,
                state: .init(mapping.state, Self.colour(forMapping: mapping.state)))
        }
        for warning in process.warnings {
            table.append([String(process.pid), process.process, "WARNING", warning.path, "", "", "", "", ""]
                .map { TextTable.Cell($0, $0 == "WARNING" ? .red : nil) } + [.init("(\(warning.evidence)) \(warning.reason)", .red)])
        }
    }

    static func colour(forMapping state: String) -> Terminal.Colour? {
        switch state {
        case "leased": .green
        case "AT RISK": .red
        case "unknown": .yellow
        default: nil
        }
    }
}
