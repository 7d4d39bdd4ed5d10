import Synchronization

/// The On-Demand Paging verdicts of this process: the check runs once per device, kernel,
/// kind of memory and path MTU, the first time a strategy would rely on ODP there, and no
/// later pin pays for it again.
final class OnDemandPagingVerdicts: Sendable {
    static let shared = OnDemandPagingVerdicts()
    /// Held while a check runs, so that concurrent first pins wait for one check.
    private let verdicts = AnnotatedMutex<[String: OnDemandPagingVerdict]>([:])

    /// The cached verdict for `provider` on `target`, or the result of checking it now.
    func verdict(for provider: any VerbsProvider, target: OnDemandPagingTarget) -> OnDemandPagingVerdict {
        let key = Self.key(provider, target)
        return verdicts.withLock { cache in
            if let known = cache[key] { return known }
            let verdict: OnDemandPagingVerdict
            switch provider.makeOnDemandPagingLoopback(length: Self.length, target: target) {
            case .success(let loopback): verdict = OnDemandPagingCheck.run(loopback)
            case .failure(let error): verdict = .failed(reason: "the check could not run on \(target): \(error)")
            }
            cache[key] = verdict
            return verdict
        }
    }

    /// What a verdict holds for: the device (name and node GUID), the kernel (fixed for a
    /// process, but part of the record), the kind of memory and its file system, the path MTU.
    static func key(_ provider: any VerbsProvider, _ target: OnDemandPagingTarget) -> String {
        "\(provider.verdictKey) on Linux \(runningKernelRelease()), \(target.cacheKey), path MTU \(provider.pathMTU)"
    }

    /// Buffer length for the check at the largest path MTU a device can have (4096).
    private static let length = OnDemandPagingCheck.transfers(pathMTU: 4096, pageSize: SystemPage.size).length
}
