import Glibc
import Logging

/// Keeps a file in node_exporter's textfile format up to date with this process's leases
/// (`daxpin_lease_state`, `daxpin_lease_regions`, `daxpin_lease_pinned_bytes`, `daxpin_leases`):
/// what `daxpin-server --metrics-file` does. The file is replaced atomically (a temporary file
/// renamed over it) a few milliseconds after every change, on the pin registry's queue.
///
/// ```swift
/// try PinTextfile.keepWritten(to: "/var/lib/node_exporter/textfile/myserver.prom")
/// ```
public enum PinTextfile {
    /// Writes the file now (no lease yet) and after every change from now on.
    /// - Throws: `.systemCall` when the first write fails (a missing directory, no permission).
    public static func keepWritten(to path: String) throws(DaxPinError) {
        let pid = Syscalls.processID()
        let process = ProcessInfoReader.name(of: pid) ?? "?"
        try TextfileWriter.replace(path, with: LeaseTextfile.render(nil, pid: pid, process: process))
        let logger = Logger(label: "DaxPin.textfile")
        PinRegistry.shared.observe { record in
            do {
                try TextfileWriter.replace(path, with: LeaseTextfile.render(record, pid: pid, process: process))
            } catch {
                logger.warning("cannot rewrite the metrics textfile", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
    }

    /// Writes the changes of the last few milliseconds now: call it before a clean exit, so the
    /// file does not go on showing a lease that was released or revoked just before.
    public static func flush() {
        PinRegistry.shared.flush()
    }
}
