import Metrics

/// The gauges of ``DaxPinMetricNames``: leases held, regions and pinned bytes. The pin registry
/// already hears of every lease and region change, so it keeps each lease's ``Lease`` and sets
/// the gauges on its own queue when it writes, never on a thread that pins or revokes.
struct PinGauges {
    /// What one lease contributes.
    struct Lease {
        let memory: String
        let regions: [(device: String, strategy: String, bytes: Int)]

        init(memory: MemoryKind, regions: [RegionInfo]) {
            self.init(memory: memory.metricLabel, regions: regions.map { ($0.device.name, $0.strategy.description, $0.length) })
        }

        init(memory: String, regions: [(device: String, strategy: String, bytes: Int)]) {
            self.memory = memory
            self.regions = regions
        }
    }

    /// The labels of the region gauges.
    struct RegionKey: Hashable {
        let device: String
        let memory: String
        let strategy: String
    }

    /// Label sets set before: one that has no lease or region any more is set to zero, not left
    /// at its last value.
    private var memoryKindsSet: Set<String> = []
    private var regionKeysSet: Set<RegionKey> = []

    /// The totals of `leases`: leases by memory kind, and regions and bytes by device, memory
    /// and strategy.
    static func totals(of leases: [UInt64: Lease]) -> (leases: [String: Int], regions: [RegionKey: (count: Int, bytes: Int)]) {
        var leaseCounts: [String: Int] = [:]
        var regionTotals: [RegionKey: (count: Int, bytes: Int)] = [:]
        for lease in leases.values {
            leaseCounts[lease.memory, default: 0] += 1
            for region in lease.regions {
                let key = RegionKey(device: region.device, memory: lease.memory, strategy: region.strategy)
                let sum = regionTotals[key] ?? (0, 0)
                regionTotals[key] = (sum.count + 1, sum.bytes + region.bytes)
            }
        }
        return (leaseCounts, regionTotals)
    }

    /// Sets every gauge to the totals of `leases` (every lease of the process) through `factory`.
    mutating func record(_ leases: [UInt64: Lease], to factory: MetricsFactory) {
        let (leaseCounts, regionTotals) = Self.totals(of: leases)
        memoryKindsSet.formUnion(leaseCounts.keys)
        regionKeysSet.formUnion(regionTotals.keys)
        for memory in memoryKindsSet {
            Gauge(label: DaxPinMetricNames.leasesHeld, dimensions: [("memory", memory)], factory: factory)
                .record(leaseCounts[memory] ?? 0)
        }
        for key in regionKeysSet {
            let labels = [("device", key.device), ("memory", key.memory), ("strategy", key.strategy)]
            let total = regionTotals[key] ?? (0, 0)
            Gauge(label: DaxPinMetricNames.regions, dimensions: labels, factory: factory).record(total.count)
            Gauge(label: DaxPinMetricNames.pinnedBytes, dimensions: labels, factory: factory).record(total.bytes)
        }
    }
}
