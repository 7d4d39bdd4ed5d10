/// Text in the Prometheus exposition format, as node_exporter's textfile collector reads it:
/// for each metric family a `# HELP` and a `# TYPE` line, then its samples, each family once.
/// Used by `daxpin ls --format prometheus` and `daxpin-server --metrics-file`.
package struct PrometheusText: Sendable {
    /// One sample: its labels, in order, and its value.
    package struct Sample: Sendable {
        /// Label names and values (values are escaped when rendered).
        package var labels: [(String, String)]
        /// The value.
        package var value: Double

        /// A sample with `labels` and `value`.
        package init(_ labels: [(String, String)], _ value: Double) {
            self.labels = labels
            self.value = value
        }
    }

    /// The text so far.
    package private(set) var text = ""

    /// An empty document.
    package init() {}

    /// Appends the family `name` (a gauge unless `type` says otherwise) with its samples. A
    /// family without samples still gets its HELP and TYPE, so that an alert can tell "none"
    /// from "not collected".
    /// Samples with the same labels (one process leasing one path twice) are summed: the format
    /// allows each series once.
    package mutating func family(_ name: String, help: String, type: String = "gauge", _ samples: [Sample]) {
        text += "# HELP \(name) \(Self.escape(help: help))\n# TYPE \(name) \(type)\n"
        var merged: [Sample] = [], index: [[String]: Int] = [:]
        for sample in samples {
            let key = sample.labels.flatMap { [$0.0, $0.1] }
            if let at = index[key] { merged[at].value += sample.value } else { index[key] = merged.count; merged.append(sample) }
        }
        for sample in merged {
            text += name
            if !sample.labels.isEmpty {
                text += "{" + sample.labels.map { "\($0.0)=\"\(Self.escape(labelValue: $0.1))\"" }.joined(separator: ",") + "}"
            }
            text += " \(Self.format(sample.value))\n"
        }
    }

    /// A label value with backslash, double quote and line feed escaped, as the format requires.
    package static func escape(labelValue: String) -> String {
        var escaped = ""
        for character in labelValue {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// HELP text with backslash and line feed escaped.
    static func escape(help: String) -> String {
        help.replacing("\\", with: "\\\\").replacing("\n", with: "\\n")
    }

    /// Whole numbers without a fraction (byte counts stay exact), others as Swift prints them.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
