import ArgumentParser

/// The `daxpin` command: what would happen if you pinned a file (`probe`), and which
/// processes pin which file ranges for RDMA right now (`ls`; `ls --all` for every process's
/// long-term pins, DaxPin or not).
@main
struct DaxPinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daxpin",
        abstract: "Inspect files for RDMA pinning and list the long-term pins on this machine.",
        discussion: """
        Examples:
          daxpin probe /dev/shm/buffer                 what pinning this tmpfs file would do
          daxpin probe /mnt/pmem/data --device rxe0    on a given RDMA device
          daxpin probe /dev/dax0.0 --json              device-dax, as JSON for scripts
          daxpin ls                                    every live pin (all users when root)
          daxpin ls --all                              every pinning process, DaxPin or not (root's default)
          daxpin ls --watch --interval 1               refresh every second, like top
          daxpin ls --json | jq '.pins[].path'         for scripts
          daxpin ls --format prometheus                for node_exporter's textfile collector
        """,
        subcommands: [ProbeCommand.self, ListCommand.self, HoldCommand.self]
    )
}
