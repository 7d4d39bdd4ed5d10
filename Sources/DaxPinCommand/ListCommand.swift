import ArgumentParser
import DaxPin
import Foundation
import Glibc

/// `daxpin ls`: every live DaxPin pin on the machine, like lsof for long-term pins.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the live DaxPin pins and leases on this machine.",
        discussion: """
        Processes using DaxPin publish what they hold in a per-process file under the run
        directory (/run/daxpin for root, $XDG_RUNTIME_DIR/daxpin or /tmp/daxpin-$UID otherwise;
        DAXPIN_RUN_DIR overrides). Files of dead processes are removed. Leases in /proc/locks
        that no registry file explains are shown with state "lease only". Root sees every
        user's processes; other users see their own.

        Examples:
          daxpin ls
          daxpin ls --watch                    refresh every 2 s until interrupted
          daxpin ls --watch --interval 0.5 --count 10
          daxpin ls --json | jq '.pins[] | {pid, path, state}'
        """
    )

    @Flag(help: "Print JSON (schema in README.md); with --watch, one document per line.")
    var json = false

    @Flag(help: "Refresh like top.")
    var watch = false

    @Option(help: "Seconds between refreshes with --watch.")
    var interval: Double = 2

    @Option(help: "Stop after this many refreshes with --watch (default: until interrupted).")
    var count: Int?

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if count != nil, !watch { throw ValidationError("--count needs --watch") }
    }

    func run() throws {
        let terminal = Terminal.standardOutput
        var iteration = 0
        while true {
            iteration += 1
            let list = PinCollector().collect()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = watch ? [.sortedKeys] : [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(list), as: UTF8.self))
            } else {
                if watch, terminal.isInteractive { terminal.clearScreen() }
                if watch { print(terminal.paint("daxpin ls, every \(interval) s: \(list.pins.count) lease(s)", .dim)) }
                print(PinTable(list: list, terminal: terminal).text)
            }
            fflush(nil)
            guard watch, count.map({ iteration < $0 }) ?? true else { break }
            usleep(useconds_t(interval * 1_000_000))
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
            let tail = [TextTable.Cell(pin.lease), TextTable.Cell(pin.state, colour(for: pin.state)),
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

    private func colour(for state: String) -> Terminal.Colour? {
        switch state {
        case "held": .green
        case "lease only": nil
        case "revoked", "lease lost": .red
        default: .yellow
        }
    }
}
