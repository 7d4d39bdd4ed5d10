/// The lease families of the textfile format, shared by `daxpin ls --format prometheus` (every
/// publishing process) and `daxpin-server --metrics-file` (its own leases).
package enum LeaseTextfile {
    /// One lease as the families see it.
    package struct Lease: Sendable {
        /// The holder's pid and name.
        package var pid: Int32, process: String
        /// The leased path.
        package var path: String
        /// `held`, `revoking`, `revoked`, `lease only`, `lease lost`, ...
        package var state: String
        /// Its regions.
        package var regions: [RegionRecord]

        /// A lease with its holder, path, state and regions.
        package init(pid: Int32, process: String, path: String, state: String, regions: [RegionRecord]) {
            self.pid = pid; self.process = process; self.path = path; self.state = state; self.regions = regions
        }
    }

    /// Appends `daxpin_lease_state`, `daxpin_lease_regions` and `daxpin_lease_pinned_bytes`.
    package static func append(_ leases: [Lease], to text: inout PrometheusText) {
        func labels(_ lease: Lease) -> [(String, String)] {
            [("pid", String(lease.pid)), ("process", lease.process), ("path", lease.path)]
        }
        text.family("daxpin_lease_state", help: "A DaxPin lease: 1 with its state as a label (held, revoking, revoked, lease only, lease lost).",
                    leases.map { .init(labels($0) + [("state", $0.state)], 1) })
        text.family("daxpin_lease_regions", help: "Pinned regions (one MR each) under a DaxPin lease.",
                    leases.map { .init(labels($0), Double($0.regions.count)) })
        var bytes: [PrometheusText.Sample] = []
        for lease in leases {
            var byStrategy: [String: Int] = [:]
            for region in lease.regions { byStrategy[region.strategy, default: 0] += region.length }
            for (strategy, total) in byStrategy.sorted(by: { $0.key < $1.key }) {
                bytes.append(.init(labels(lease) + [("strategy", strategy)], Double(total)))
            }
        }
        text.family("daxpin_lease_pinned_bytes", help: "Bytes registered under a DaxPin lease, by strategy (on-demand paging pins nothing long term).",
                    bytes)
    }

    /// The textfile of one process's record (`nil`: it holds no lease): what
    /// `daxpin-server --metrics-file` writes.
    package static func render(_ record: ProcessPinRecord?, pid: Int32, process: String) -> String {
        var text = PrometheusText()
        let leases = (record?.leases ?? []).map {
            Lease(pid: pid, process: process, path: $0.path, state: $0.state, regions: $0.regions)
        }
        append(leases, to: &text)
        text.family("daxpin_leases", help: "DaxPin leases held by this process.", [.init([("pid", String(pid)), ("process", process)], Double(leases.count))])
        return text.text
    }
}
