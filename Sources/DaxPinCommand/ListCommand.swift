import ArgumentParser
import DaxPin
import Foundation
import Glibc

/// `daxpin ls`: every live long-term pin on the machine, like lsof for long-term pins: what
/// DaxPin processes publish and, with `--all`, what the kernel shows of every other process.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the long-term pins and leases on this machine.",
        discussion: """
        Processes using DaxPin publish what they hold in a per-process file under the run
        directory (/run/daxpin for root, $XDG_RUNTIME_DIR/daxpin or /tmp/daxpin-$UID otherwise;
        DAXPIN_RUN_DIR overrides in debug builds). Files of dead processes are removed. Leases in /proc/locks
        that no registry file explains are shown with state "lease only". Root sees every
        user's processes; other users see their own.

        --all (the default for root) adds every process the kernel shows holding long-term
        pins, DaxPin or not: its RDMA memory registrations per device (rdma netlink), VmPin,
        io_uring registered buffers, and its shared file mappings with their memory kind and
        lease. A process that pins memory while it maps a tmpfs or page-cache file writable
        and shared without a lease gets a WARNING row: a truncate would leave its NIC writing
        into orphaned pages. The warning says whether the evidence is exact (io_uring buffer
        addresses inside the mapping) or circumstantial (MRs carry no address).

        Examples:
          daxpin ls
          daxpin ls --all                      every pinning process (the default as root)
          daxpin ls --no-all                   DaxPin's registry only
          daxpin ls --watch                    refresh every 2 s until interrupted
          daxpin ls --watch --interval 0.5 --count 10
          daxpin ls --json | jq '.pins[] | {pid, path, state}'
          daxpin ls --all --json | jq '.processes[] | select(.warnings != []) | .pid'
          daxpin ls --format prometheus > /var/lib/node_exporter/textfile/daxpin.prom.$$ \\
            && mv /var/lib/node_exporter/textfile/daxpin.prom.$$ /var/lib/node_exporter/textfile/daxpin.prom
        """
    )

    @Flag(inversion: .prefixedNo,
          help: "Every process holding long-term pins, not only DaxPin's (default: on for root, off otherwise).")
    var all: Bool?

    @Flag(help: "Print JSON (schema in the DocC article TheDaxpinCommand.md); with --watch, one document per line. Same as --format json.")
    var json = false

    @Option(help: "table, json, or prometheus (node_exporter's textfile format; one snapshot, not with --watch).")
    var format: ListFormat?

    @Flag(help: "Refresh like top.")
    var watch = false

    @Option(help: "Seconds between refreshes with --watch.")
    var interval: Double = 2

    @Option(help: "Stop after this many refreshes with --watch (default: until interrupted).")
    var count: Int?

    /// The output format: `--format`, else `--json`, else the table.
    var output: ListFormat { format ?? (json ? .json : .table) }

    func validate() throws {
        if json, let format, format != .json { throw ValidationError("--json and --format \(format.rawValue) contradict each other") }
        if watch, output == .prometheus {
            throw ValidationError("--format prometheus writes one snapshot for a collector; run it from a timer instead of --watch")
        }
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if count != nil, !watch { throw ValidationError("--count needs --watch") }
    }

    func run() throws {
        let terminal = Terminal.standardOutput
        let everything = all ?? (Syscalls.effectiveUserID() == 0)
        let encoder = JSONEncoder()
        encoder.outputFormatting = watch ? [.sortedKeys] : [.prettyPrinted, .sortedKeys]
        var iteration = 0
        while true {
            iteration += 1
            if watch, !json, terminal.isInteractive { terminal.clearScreen() }
            if everything {
                let list = MachinePinList.collect()
                if output == .prometheus {
                    print(PinListPrometheus.render(list), terminator: "")
                } else if output == .json {
                    print(String(decoding: try encoder.encode(list), as: UTF8.self))
                } else {
                    let warnings = list.processes.reduce(0) { $0 + $1.warnings.count }
                    if watch {
                        print(terminal.paint("daxpin ls --all, every \(interval) s: \(list.processes.count) process(es) "
                                             + "pinning or publishing, \(warnings) warning(s)", .dim))
                    }
                    print(MachinePinTable(list: list, terminal: terminal).text)
                }
            } else {
                let list = PinCollector().collect()
                if output == .prometheus {
                    print(PinListPrometheus.render(list), terminator: "")
                } else if output == .json {
                    print(String(decoding: try encoder.encode(list), as: UTF8.self))
                } else {
                    if watch { print(terminal.paint("daxpin ls, every \(interval) s: \(list.pins.count) lease(s)", .dim)) }
                    print(PinTable(list: list, terminal: terminal).text)
                }
            }
            fflush(nil)
            guard watch, count.map({ iteration < $0 }) ?? true else { break }
            Syscalls.sleep(microseconds: Int(interval * 1_000_000))
        }
    }
}

/// The table `daxpin ls` prints: one row per pinned region, one for a lease without regions.
struct PinTable {
    let list: PinList
    let terminal: Terminal

    static let headers = ["PID", "PROCESS", "FILE", "DEV:INODE", "RANGE", "STRATEGY", "RKEY", "LEASE", "STATE", "AGE"]

    var text: String {
        var table = TextTable(headers: Self.headers)
        for pin in list.pins {
            let common = [String(pin.pid), pin.process, pin.path, "\(pin.device):\(pin.inode)"]
            let tail = [TextTable.Cell(pin.lease), TextTable.Cell(pin.state, Self.colour(for: pin.state)),
                        TextTable.Cell(pin.ageSeconds.map { Format.age(seconds: $0) } ?? "-")]
            if pin.regions.isEmpty {
                table.append(common.map { TextTable.Cell($0) } + [.init("-"), .init("-"), .init("-")] + tail)
            }
            for region in pin.regions {
                let range = "\(region.offset)+\(Format.bytes(region.length))"
                let rkey = "0x" + String(region.rkey, radix: 16)
                table.append(common.map { TextTable.Cell($0) } + [.init(range), .init(region.strategy), .init(rkey)] + tail)
            }
        }
        var text = table.render(on: terminal)
        if list.pins.isEmpty { text += "\n" + terminal.paint("no DaxPin pins or leases visible", .dim) }
        for rejected in list.rejected {
            text += "\n" + terminal.paint("skipped \(rejected.path): \(rejected.reason)", .yellow)
        }
        return text
    }

    /// The colour of a lease state.
    static func colour(for state: String) -> Terminal.Colour? {
        switch state {
        case "held": .green
        case "lease only": nil
        case "revoked", "lease lost": .red
        default: .yellow
        }
    }
}
