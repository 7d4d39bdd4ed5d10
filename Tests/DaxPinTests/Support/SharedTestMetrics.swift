@testable import DaxPin
import Metrics
import MetricsTestKit

/// The one metrics backend of the test process: `MetricsSystem.bootstrap` may run once per
/// process, so every test that reads metrics shares this one, and reads deltas (other tests pin
/// and revoke through it too once it is bootstrapped).
enum SharedTestMetrics {
    private static let bootstrapped: TestMetrics = {
        let metrics = TestMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()

    /// The backend, bootstrapped at the first use.
    static var backend: TestMetrics { bootstrapped }

    /// A counter's total so far (0 before it was first incremented).
    static func counter(_ label: String, _ dimensions: [(String, String)]) -> Int64 {
        backend.counterTotal(label: label, dimensions: dimensions)
    }

    /// A gauge's last value (0 before it was first set).
    static func gauge(_ label: String, _ dimensions: [(String, String)]) -> Double {
        (try? backend.expectGauge(label, dimensions).lastValue) ?? 0
    }

    /// The durations a timer recorded so far, in nanoseconds.
    static func timer(_ label: String, _ dimensions: [(String, String)]) -> [Int64] {
        (try? backend.expectTimer(label, dimensions).values) ?? []
    }

    /// Waits until the registry has set the gauges and the revocation log queue has recorded
    /// every revocation so far.
    static func settle() {
        RevocationLog.drain()
        PinRegistry.shared.flush()
    }
}
