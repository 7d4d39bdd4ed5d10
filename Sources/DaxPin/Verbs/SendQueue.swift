import CIbverbs
import CRdmacm  // verbs enum constants resolve through it once any file imports librdmacm (as in QueuePair)
import SystemPackage

/// The send side of a queue pair, the one work-request and completion layer of ``QueuePair``
/// and ``RDMAConnection``: work requests are posted under one lock, and the completions read
/// from the send ``CompletionQueue`` are matched to them. Posting a request and waiting for its
/// completion with a timeout exists only here.
///
/// Ids below 2^63 are the caller's: their completions are kept for
/// ``completions(into:timeout:)``. Ids with the top bit set are the queue's own, for a request
/// posted and waited for under the lock (``postAndWait(timeout:failure:_:)``). Only one of those
/// is outstanding at a time, so any other own completion belongs to a request whose wait timed
/// out, and is dropped: nobody is left to ask for it.
final class SendQueue: @unchecked Sendable {
    // Mutable state is behind `state`; the completion queue is only polled while holding it.
    /// The top bit, set in the queue's own work request ids.
    static let ownBit: UInt64 = 1 << 63

    /// The completion queue the queue pair's send queue reports to.
    let completionQueue: CompletionQueue
    private let deviceName: String
    private let state = AnnotatedMutex(State())

    private struct State {
        var lastOwn: UInt64 = 0
        var userDone: [RDMAConnection.WorkCompletion] = []
    }

    init(completionQueue: CompletionQueue, deviceName: String) {
        self.completionQueue = completionQueue
        self.deviceName = deviceName
    }

    /// The error for a failed post (`ibv_post_send` unless `operation` names another call, such
    /// as `ibv_wr_complete`), unless the caller maps it otherwise.
    private func postFailure(_ errno: Errno, operation: String = "ibv_post_send") -> DaxPinError {
        .deviceFailure(device: deviceName, operation: operation, errno: errno)
    }

    /// ``postAndWait(timeout:failure:_:)`` with a failed post reported as `.deviceFailure`
    /// naming `operation` (`ibv_post_send`, or `ibv_wr_complete` for the work-request API).
    func postAndWait(timeout: Duration, operation: String = "ibv_post_send",
                     _ post: (_ id: UInt64) throws(Errno) -> Void) throws(DaxPinError) -> QueuePair.Completion {
        try postAndWait(timeout: timeout, failure: { self.postFailure($0, operation: operation) }, post)
    }

    /// Posts one request with an id of the queue's own and waits up to about `timeout` for its
    /// completion. `post` gets the id and posts (throwing what `ibv_post_send` failed with); it
    /// runs under the lock, so it may fill memory that only one request at a time uses.
    /// - Throws: `failure(errno)` when the post fails; `.deviceFailure` with ETIMEDOUT when no
    ///   completion comes in time.
    func postAndWait(timeout: Duration, failure: (Errno) -> DaxPinError,
                     _ post: (_ id: UInt64) throws(Errno) -> Void) throws(DaxPinError) -> QueuePair.Completion {
        let result: Result<QueuePair.Completion, DaxPinError> = state.withLock { state in
            state.lastOwn += 1
            let id = Self.ownBit | state.lastOwn
            do throws(Errno) { try post(id) } catch { return .failure(failure(error)) }
            do throws(DaxPinError) {
                return .success(try wait(for: id, &state, timeout: timeout))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Posts requests with the caller's ids without waiting (serialized with every other post).
    /// `post` throws what `operation` failed with (`ibv_post_send`, or `ibv_wr_complete` for the
    /// work-request API of extended queue pairs).
    func post(operation: String = "ibv_post_send", _ post: () throws(Errno) -> Void) throws(DaxPinError) {
        let failed: Errno? = state.withLock { _ in
            do throws(Errno) { try post(); return nil } catch { return error }
        }
        if let failed { throw postFailure(failed, operation: operation) }
    }

    /// Appends the completions of the caller's requests to `done`; waits up to `timeout` for
    /// at least one. Returns how many were appended (0 on timeout).
    func completions(into done: inout [RDMAConnection.WorkCompletion], timeout: Duration) throws(DaxPinError) -> Int {
        let result: Result<Int, DaxPinError> = state.withLock { state in
            if state.userDone.isEmpty {
                do throws(DaxPinError) { _ = try harvest(&state, awaiting: nil, timeout: timeout) } catch { return .failure(error) }
            }
            let count = state.userDone.count
            done.append(contentsOf: state.userDone)
            state.userDone.removeAll(keepingCapacity: true)
            return .success(count)
        }
        return try result.get()
    }

    /// Waits for the completion of own request `id`. No clock is read before the first look: most
    /// requests complete within the completion queue's first polls, and a precise clock read can
    /// be a system call (HPET). So the deadline starts when a look first returns with other
    /// completions; a look that finds nothing has waited the whole timeout.
    private func wait(for id: UInt64, _ state: inout State, timeout: Duration) throws(DaxPinError) -> QueuePair.Completion {
        var deadline: ContinuousClock.Instant?
        var left = timeout
        while true {
            let (found, completion) = try harvest(&state, awaiting: id, timeout: left)
            if let completion { return completion }
            let now = ContinuousClock.now
            let end = deadline ?? now + timeout
            deadline = end
            left = now.duration(to: end)
            if found == 0 || left <= .zero {
                throw .deviceFailure(device: deviceName, operation: "wait for a completion", errno: .timedOut)
            }
        }
    }

    /// One look at the completion queue, waiting up to `timeout` for anything: the caller's
    /// completions are kept, `awaiting`'s is returned, stale own ones are dropped.
    private func harvest(_ state: inout State, awaiting id: UInt64?,
                         timeout: Duration) throws(DaxPinError) -> (found: Int, awaited: QueuePair.Completion?) {
        var awaited: QueuePair.Completion?
        let found = try completionQueue.poll(maximum: CompletionQueue.batch, timeout: timeout) { entry in
            let status = QueuePair.Completion(entry.status)
            if entry.wr_id & Self.ownBit == 0 {
                state.userDone.append(RDMAConnection.WorkCompletion(id: entry.wr_id, status: status))
            } else if entry.wr_id == id {
                awaited = status
            }
        }
        return (found, awaited)
    }
}
