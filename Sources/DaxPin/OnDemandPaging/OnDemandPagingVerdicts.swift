import Glibc
import Synchronization

/// The On-Demand Paging verdict of each device, per kernel, for this process: the check runs
/// once, the first time a strategy would rely on ODP, and no later pin pays for it again.
final class OnDemandPagingVerdicts: Sendable {
    static let shared = OnDemandPagingVerdicts()
    /// Held while a check runs, so that concurrent first pins wait for one check.
    private let verdicts = AnnotatedMutex<[String: OnDemandPagingVerdict]>([:])

    /// The cached verdict for `provider`, or the result of checking it now.
    func verdict(for provider: any VerbsProvider) -> OnDemandPagingVerdict {
        // The kernel is part of the key for the record (it cannot change under a process).
        let key = "\(provider.verdictKey) on Linux \(runningKernelRelease())"
        return verdicts.withLock { cache in
            if let known = cache[key] { return known }
            let verdict: OnDemandPagingVerdict
            switch provider.makeOnDemandPagingLoopback(length: Self.length) {
            case .success(let loopback): verdict = OnDemandPagingCheck.run(loopback)
            case .failure(let error): verdict = .failed(reason: "the check could not run: \(error)")
            }
            cache[key] = verdict
            return verdict
        }
    }

    /// Buffer length for the check at the largest path MTU a device can have (4096).
    private static let length = OnDemandPagingCheck.transfers(pathMTU: 4096, pageSize: Int(sysconf(Int32(_SC_PAGESIZE)))).length
}
