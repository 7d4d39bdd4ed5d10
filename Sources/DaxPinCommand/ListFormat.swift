import ArgumentParser

/// What `daxpin ls` prints.
enum ListFormat: String, ExpressibleByArgument, CaseIterable {
    /// The aligned table (the default).
    case table
    /// The JSON document (`--json`).
    case json
    /// node_exporter's textfile format.
    case prometheus
}
