import CIbverbs
import Glibc

/// A completion queue with its own completion channel, so waiting for a completion sleeps
/// in `poll(2)` on the channel's descriptor instead of spinning (`ibv_create_comp_channel`,
/// `ibv_create_cq`, `ibv_req_notify_cq`, `ibv_get_cq_event`).
///
/// While the queue is busy (a completion was found within ``busyWindow``), a wait first polls
/// the queue for up to ``spinBudget`` before sleeping: a request/answer exchange (a persist
/// round trip) then costs no wake-up from the channel on either side. An idle queue never
/// spins, and a spin never outlasts the caller's timeout.
///
/// A poll that finds completions reads no precise clock, and a spin reads it once per
/// ``pollsPerClockRead`` polls: where the clocksource lacks vDSO support every precise read is a
/// system call, which cost a queue-depth-1 client more than the polls themselves. The busy
/// window is kept on ``CoarseClock`` (read without a system call). At each clock read the spin
/// yields the CPU: with a software device (rxe) the completion is produced by kernel work that
/// may be waiting for this very CPU.
///
/// Not thread-safe: its owner serializes access.
final class CompletionQueue: @unchecked Sendable {
    /// Longest busy poll before a wait sleeps on the channel: long enough for a persist answer
    /// to arrive in the spin (Benchmarks/suites/durable_writes.sh measures it).
    static let spinBudget: Duration = .microseconds(200)
    /// The most completions one poll returns.
    static let batch = 16
    /// How recent the last completion must be for a wait to spin first. Measured on the coarse
    /// clock, whose readings jump a whole tick (4 ms at HZ=250): the window is at least two
    /// ticks, or a queue busy right across a tick would count as idle.
    static let busyWindow: Duration = .milliseconds(2)
    private static let busyWindowNanoseconds = max(busyWindow.wholeNanoseconds, 2 * CoarseClock.resolutionNanoseconds)
    /// Polls between two reads of the precise clock while spinning.
    static let pollsPerClockRead = 64

    let cq: UnsafeMutablePointer<ibv_cq>
    private let channel: UnsafeMutablePointer<ibv_comp_channel>
    private let deviceName: String
    private var unacknowledged: UInt32 = 0
    /// ``CoarseClock`` nanoseconds of the last poll that found completions; nil before the first.
    private var lastCompletion: Int64?
    /// Reused by every poll: a wait that finds nothing allocates nothing. Allocated last in
    /// `init`: a throwing init releases only what is stored, and runs no `deinit`.
    private let entries: UnsafeMutablePointer<ibv_wc>

    init(context: UnsafeMutablePointer<ibv_context>, depth: Int, deviceName: String) throws(DaxPinError) {
        self.deviceName = deviceName
        let channel: UnsafeMutablePointer<ibv_comp_channel>
        do throws(Errno) { channel = try VerbsCalls.ibv_create_comp_channel(context) } catch {
            throw .deviceFailure(device: deviceName, operation: "ibv_create_comp_channel", errno: error)
        }
        let cq: UnsafeMutablePointer<ibv_cq>
        do throws(Errno) {
            // Blocking, the event drain below would wait in ibv_get_cq_event past every timeout.
            try Syscalls.setNonBlocking(channel.pointee.fd)
            cq = try VerbsCalls.ibv_create_cq(context, Int32(depth), nil, channel, 0)
        } catch {
            VerbsCalls.ibv_destroy_comp_channel(channel)
            throw .deviceFailure(device: deviceName, operation: "ibv_create_cq", errno: error)
        }
        self.channel = channel
        self.cq = cq
        entries = .allocate(capacity: Self.batch)
    }

    deinit {
        if unacknowledged > 0 { VerbsCalls.ibv_ack_cq_events(cq, unacknowledged) }
        VerbsCalls.ibv_destroy_cq(cq)
        VerbsCalls.ibv_destroy_comp_channel(channel)
        entries.deallocate()
    }

    /// Up to `maximum` completions; waits up to `timeout` for the first one. Empty on timeout.
    func poll(maximum: Int = 16, timeout: Duration) throws(DaxPinError) -> [ibv_wc] {
        var found: [ibv_wc] = []
        try poll(maximum: maximum, timeout: timeout) { found.append($0) }
        return found
    }

    /// Up to `maximum` completions, each handed to `body`; waits up to `timeout` for the first
    /// one. Returns how many there were (0 on timeout). Allocates nothing: the entries are read
    /// from a buffer the queue reuses.
    @discardableResult
    func poll(maximum: Int = 16, timeout: Duration, _ body: (ibv_wc) -> Void) throws(DaxPinError) -> Int {
        let maximum = min(maximum, Self.batch)
        func take() throws(DaxPinError) -> Int? {
            let count: Int32
            do throws(Errno) { count = try VerbsCalls.ibv_poll_cq(cq, Int32(maximum), entries) } catch {
                throw .deviceFailure(device: deviceName, operation: "ibv_poll_cq", errno: error)
            }
            guard count > 0 else { return nil }
            lastCompletion = CoarseClock.nanoseconds
            for index in 0..<Int(count) { body(entries[index]) }
            return Int(count)
        }
        // Looking without waiting (a zero timeout, the common "anything there?") costs one poll.
        if let found = try take() { return found }
        if timeout <= .zero { return 0 }
        let busy = lastCompletion.map { CoarseClock.nanoseconds - $0 < Self.busyWindowNanoseconds } ?? false
        // The timeout runs from the first precise clock read: a spin reads none before
        // ``pollsPerClockRead`` polls, and a queue-depth-1 answer often arrives within them.
        var start: ContinuousClock.Instant?
        if busy {
            var empty = 0
            while true {
                if let found = try take() { return found }
                empty += 1
                guard empty % Self.pollsPerClockRead == 0 else { continue }
                let now = ContinuousClock.now
                let first = start ?? now
                start = first
                if now - first >= min(timeout, Self.spinBudget) { break }
                Syscalls.yieldProcessor()
            }
        }
        let deadline = (start ?? ContinuousClock.now) + timeout
        while true {
            if let found = try take() { return found }
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero { return 0 }
            // Arm, then look again: a completion that arrived before arming raises no event.
            // Unarmed, the sleep below would see no completion until the timeout: fail instead.
            do throws(Errno) { try VerbsCalls.ibv_req_notify_cq(cq, 0) } catch {
                throw .deviceFailure(device: deviceName, operation: "ibv_req_notify_cq", errno: error)
            }
            if let found = try take() { return found }
            var descriptor = pollfd(fd: channel.pointee.fd, events: Int16(POLLIN), revents: 0)
            let milliseconds = max(1, Int32(clamping: left.wholeMilliseconds))
            _ = try? Syscalls.poll(&descriptor, milliseconds)
            var eventCQ: UnsafeMutablePointer<ibv_cq>?
            var context: UnsafeMutableRawPointer?
            while (try? VerbsCalls.ibv_get_cq_event(channel, &eventCQ, &context)) != nil { unacknowledged += 1 }
            if unacknowledged >= 64 {
                VerbsCalls.ibv_ack_cq_events(cq, unacknowledged)
                unacknowledged = 0
            }
        }
    }
}
