@testable import DaxPin
import Glibc
import Synchronization
import Testing

extension DaxPin {
    /// `events` made at any time replays what already happened, then every later event:
    /// subscribers made before, during and after a break each see `breakNoticed`, then
    /// `revoked`, and nothing else.
    @Suite struct EventReplay {
        /// Every event of `stream` until it ends, as words.
        static func collect(_ stream: AsyncStream<LeaseEvent>) async -> [String] {
            var seen: [String] = []
            for await event in stream {
                switch event {
                case .breakNoticed: seen.append("break")
                case .revoked(let trace): seen.append(trace.reason == .leaseBreak ? "revoked" : "revoked (\(trace.reason.map { "\($0)" } ?? "?"))")
                }
            }
            return seen
        }

        /// Streams made on the revoking thread, at the points a test can reach mid-break.
        final class MidBreak: Sendable {
            let streams = Mutex<[AsyncStream<LeaseEvent>]>([])
            func add(_ core: LeaseCore) { let stream = core.events(); streams.withLock { $0.append(stream) } }
            var all: [AsyncStream<LeaseEvent>] { streams.withLock { $0 } }
        }

        @Test("subscribers made before, during and after a break each see breakNoticed, then revoked",
              arguments: [false, true])
        func everySubscriberSeesTheBreak(withQuiesce: Bool) async throws {
            for _ in 0..<20 {
                let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
                let midBreak = MidBreak()
                let coreBox = Mutex<LeaseCore?>(nil)
                // With a handler, subscribe inside it: `breakNoticed` has gone out by then.
                let options = withQuiesce
                    ? LeaseOptions(quiesceBudget: .seconds(2)) { _ in coreBox.withLock { $0 }.map(midBreak.add) }
                    : LeaseOptions()
                var lease = try LayoutLease(path: file.path, options: options)
                _ = try lease.pin(on: try testDevice())
                let core = lease.core
                coreBox.withLock { $0 = core }
                Interleavings.set { point in
                    if case .revocationBegan(.leaseBreak) = point { midBreak.add(core) }
                }
                defer { Interleavings.clear() }
                let before = [lease.events, lease.events]
                let breaker = try Breaker.openForWrite(file.path)
                _ = try #require(breaker.wait())
                #expect(lease.waitUntilRevoked(timeout: .seconds(10)) != nil)
                Interleavings.clear()
                let after = [lease.events, lease.events]
                let during = midBreak.all
                #expect(during.count == (withQuiesce ? 2 : 1))
                for (when, streams) in [("before", before), ("during", during), ("after", after)] {
                    for stream in streams {
                        let seen = await Self.collect(stream)
                        #expect(seen == ["break", "revoked"], "subscriber made \(when) the break")
                    }
                }
                coreBox.withLock { $0 = nil }
            }
        }

        @Test("a subscriber made after a release sees revoked and the stream ends; one made while held waits")
        func afterRelease() async throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let lease = try LayoutLease(path: file.path)
            let held = lease.events
            let core = lease.core
            _ = lease.release()
            #expect(await Self.collect(held) == ["revoked (release)"])
            #expect(await Self.collect(core.events()) == ["revoked (release)"])
        }
    }
}
