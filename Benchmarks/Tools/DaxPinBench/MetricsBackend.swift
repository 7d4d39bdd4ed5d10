import Glibc
import Metrics
import MetricsTestKit

/// With `DAXPIN_BENCH_METRICS` set, the holder runs with a bootstrapped metrics backend
/// (swift-metrics' in-memory TestMetrics: every value kept, behind a lock and a dictionary, as
/// an aggregating backend does), so the profile can count the revocation path with and
/// without one in the same boot.
enum MetricsBackend {
    /// Bootstraps the backend when the environment asks for it; returns whether it did.
    static func bootstrapIfRequested() -> Bool {
        guard let value = getenv("DAXPIN_BENCH_METRICS"), String(cString: value) == "1" else { return false }
        MetricsSystem.bootstrap(TestMetrics())
        return true
    }
}
