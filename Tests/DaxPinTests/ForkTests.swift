@testable import DaxPin
import Foundation
import Glibc
import Testing

extension DaxPin {
    /// A lease lives on the open file description and a verbs context (with its MRs) on its
    /// uverbs file, so a child forked without exec would keep both alive after its parent dies:
    /// the truncate would wait out lease-break-time and the NIC could keep writing. DaxPin closes
    /// those descriptors in the child at fork and keeps the regions out of it (MADV_DONTFORK).
    @Suite struct Fork {
        @Test("a holder's forked child keeps no lease, verbs context or region; kill -9 of the holder frees the file at once")
        func forkedChildKeepsNothing() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20)
            let run = ScratchRunDirectory()
            // posix_spawn, not Foundation's Process: the forked child inherits what Process
            // watches to notice an exit, so Process would wait for the child too.
            let holder = try Breaker.start(["/usr/bin/env", "NO_COLOR=1", "DAXPIN_RUN_DIR=\(run.path)", DaxPinBinary.path,
                                            "hold", file.path, "--seconds", "120", "--fork-child"])
            var child: pid_t = 0
            defer {
                if child > 0 { kill(child, SIGKILL); waitpid(child, nil, 0) }
                kill(holder.pid, SIGKILL)
                waitpid(holder.pid, nil, 0)
            }
            let found = eventually(timeout: .seconds(60)) {
                let children = readTextFile("/proc/\(holder.pid)/task/\(holder.pid)/children")
                child = children.split(separator: " ").first.flatMap { pid_t($0) } ?? 0
                return child > 0 && fileDescriptors(of: holder.pid).contains(file.path)
            }
            try #require(found, "the holder did not fork its child")
            // The child's copies of the holder's values are inert: the holder still has its lease.
            usleep(200_000)
            #expect(readTextFile("/proc/locks").contains(" \(holder.pid) "), "the holder lost its lease when it forked")
            // What the child sees: none of the lease's descriptors, no verbs context, no region.
            let inherited = fileDescriptors(of: child)
            #expect(!inherited.contains(file.path), "the child kept the lease's descriptor: \(inherited)")
            #expect(!inherited.contains { $0.hasPrefix("/dev/infiniband/uverbs") }, "the child kept a verbs context: \(inherited)")
            #expect(!readTextFile("/proc/\(child)/maps").contains(file.path), "the child maps the region")
            kill(holder.pid, SIGKILL)
            waitpid(holder.pid, nil, 0)
            // lease-break-time is 45 s: with the child holding the description, the truncate would wait it out.
            let truncated = try Breaker.truncate(file.path).wait(timeout: .seconds(20))
            let result = try #require(truncated, "the truncate was still blocked after 20 s: the child kept the lease")
            #expect(result.status == 0 && result.blocked < .seconds(10))
            if Testbed.isActive {
                let mrs = try DaxPinBinary.run(["-j", "resource", "show", "mr"], executable: "/usr/bin/rdma",
                                               environment: [:], timeout: 60)
                #expect(mrs.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]" || !mrs.stdout.contains("\"mrn\""),
                        "an MR outlived its process: \(mrs.stdout)")
                Testbed.ran(.objectsOnly)
            }
        }
    }
}

/// Where `pid`'s descriptors point.
private func fileDescriptors(of pid: pid_t) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
    return names.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
}
