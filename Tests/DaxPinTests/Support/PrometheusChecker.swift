import Foundation
import Glibc
import Testing

/// `Scripts/check-prometheus-text`: prometheus_client's parser plus the format's structural
/// rules. The tests read the samples it prints, so what they assert is what a collector sees.
enum PrometheusChecker {
    struct Sample: Decodable, Equatable {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Scripts/check-prometheus-text").path
    }

    /// Checks `text`; the exit status (0: well formed), the parsed samples and the complaint.
    static func check(_ text: String) throws -> (status: Int32, samples: [Sample], problem: String) {
        let file = "/tmp/daxpin-prometheus-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).prom"
        try text.write(toFile: file, atomically: false, encoding: .utf8)
        defer { unlink(file) }
        let result = try DaxPinBinary.run([script, file], executable: "/bin/bash",
                                          environment: ProcessInfo.processInfo.environment, timeout: 60)
        try #require(result.status != 2, "the checker cannot run: \(result.stderr)")
        let samples = try result.stdout.split(separator: "\n").map {
            try JSONDecoder().decode(Sample.self, from: Data($0.utf8))
        }
        return (result.status, samples, result.stderr)
    }

    /// The samples of well-formed `text`; records an issue (and throws) when it is malformed.
    static func samples(_ text: String) throws -> [Sample] {
        let (status, samples, problem) = try check(text)
        try #require(status == 0, "malformed textfile output: \(problem)\n\(text)")
        return samples
    }
}

extension Array where Element == PrometheusChecker.Sample {
    /// The samples of the family `name` whose labels include `labels`.
    func named(_ name: String, _ labels: [String: String] = [:]) -> [PrometheusChecker.Sample] {
        filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
    }
}
