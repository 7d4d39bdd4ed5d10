@testable import DaxPin
import Foundation
import Glibc
import SystemPackage
import Testing

/// Keeps a noncopyable lease in an array slot.
final class LeaseBox {
    var lease: LayoutLease
    init(_ lease: consuming LayoutLease) { self.lease = lease }
}

extension DaxPin {
    /// Many leases and exhausted resources: every lease revoked, typed errors, nothing leaked.
    @Suite struct Resilience {
        static let leaseCount = 1000

        @Test("1000 leases broken concurrently by another process are all revoked")
        func thousandLeasesBrokenConcurrently() throws {
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            let saved = limit
            limit.rlim_cur = min(limit.rlim_max, 16384)
            #expect(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
            defer { var restore = saved; setrlimit(Int32(RLIMIT_NOFILE.rawValue), &restore) }
            #expect(limit.rlim_cur >= rlim_t(Self.leaseCount + 100), "RLIMIT_NOFILE too small for this test")

            let directory = "\(HostDirs.tmpfs)/daxpin-many-\(getpid())"
            #expect(mkdir(directory, 0o700) == 0)
            defer { _ = try? FileManager.default.removeItem(atPath: directory) }
            let paths = (0..<Self.leaseCount).map { "\(directory)/f\($0)" }
            for path in paths {
                let fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
                ftruncate(fd, 4096)
                close(fd)
            }
            let device = try testDevice()
            let before = ResourceCount.now()
            var boxes: [LeaseBox] = []
            for path in paths {
                var lease = try LayoutLease(path: path)
                _ = try lease.pin(on: device)
                boxes.append(LeaseBox(lease))
            }
            #expect(ResourceCount.now().locks == before.locks + Self.leaseCount)

            // Another process opens every file for write from 32 threads at once.
            let script = """
                import os, sys, concurrent.futures
                def touch(p):
                    os.close(os.open(p, os.O_WRONLY | os.O_APPEND))
                with concurrent.futures.ThreadPoolExecutor(32) as pool:
                    list(pool.map(touch, sys.argv[1:]))
                """
            let breaker = try Breaker.start(["/usr/bin/python3", "-c", script] + paths)
            let result = try #require(breaker.wait(timeout: .seconds(120)), "the breaker never finished")
            #expect(result.status == 0)
            #expect(eventually(timeout: .seconds(30)) { boxes.allSatisfy { $0.lease.state.isRevoked } })
            let revoked = boxes.filter { $0.lease.trace.steps.suffix(2) == [.leaseReleased, .closed] }.count
            #expect(revoked == Self.leaseCount, "\(Self.leaseCount - revoked) leases missed")
            boxes.removeAll()
            // Dispatch may have grown its thread pool (stacks, eventfds); what must be gone is
            // every descriptor, mapping and lock on the leased files.
            #expect(openFileTargets().filter { $0.hasPrefix(directory) }.isEmpty)
            #expect(mappedFiles().filter { $0.hasPrefix(directory) }.isEmpty)
            #expect(ResourceCount.now().locks == before.locks)
            print("1000 leases broken by another process in \(result.blocked)")
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }

        @Test("RLIMIT_NOFILE reached: a typed error and nothing leaked")
        func fileDescriptorLimit() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            _ = try LayoutLease(path: file.path).release()  // watcher started before counting
            let before = ResourceCount.now()
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            let saved = limit
            limit.rlim_cur = 3  // only stdin, stdout and stderr: the next open fails
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            let outcome: Result<LeaseKind, DaxPinError>
            do {
                let lease = try LayoutLease(path: file.path)
                outcome = .success(lease.kind)
            } catch {
                outcome = .failure(error)
            }
            var restore = saved
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &restore)
            #expect(throws: DaxPinError.systemCall(operation: "open", path: file.path, errno: .tooManyOpenFiles)) {
                try outcome.get()
            }
            if case .failure(let error) = outcome { #expect(error.description.contains("EMFILE")) }
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "resources leaked: \(after.fdDifference(from: before))")
        }

        /// Without CAP_IPC_LOCK and with RLIMIT_MEMLOCK at 0, the kernel refuses the
        /// registration (ENOMEM); the refusal names the limit.
        @Test("RLIMIT_MEMLOCK too small: the refusal names the limit",
              .enabled(if: Testbed.isActive, Testbed.skipReason))
        func lockedMemoryLimit() throws {
            let file = try ScratchFile(in: try Testbed.required("DAXPIN_TMPFS_DIR"), size: 64 << 10)
            let quickstart = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                .deletingLastPathComponent().appendingPathComponent("daxpin-quickstart").path
            func run(memlock: String) throws -> String {
                let output = "\(try Testbed.required("DAXPIN_TESTBED_OUT"))/memlock-\(memlock).log"
                let process = try Breaker.start(["/bin/sh", "-c",
                    "prlimit --memlock=$3:$3 setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock \"$0\" \"$1\" > \"$2\" 2>&1",
                    quickstart, file.path, output, memlock])
                _ = try #require(process.wait(timeout: .seconds(60)))
                return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            }
            // Control: the same unprivileged run with a sufficient limit pins.
            let control = try run(memlock: "unlimited")
            #expect(control.contains("strategy pinned"), "\(control)")
            let log = try run(memlock: "0")
            #expect(log.contains("cannot register"), "\(log)")
            #expect(log.contains("EPERM") || log.contains("ENOMEM"), "\(log)")
            #expect(log.contains("RLIMIT_MEMLOCK"), "\(log)")
            Testbed.ran(.refusalOnly)
        }
    }
}
