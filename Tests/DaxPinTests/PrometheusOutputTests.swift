@testable import DaxPin
import Foundation
import Glibc
import Testing

extension DaxPin {
    /// `daxpin ls --format prometheus` and `daxpin-server --metrics-file`: node_exporter's
    /// textfile format, read back through a parser of the format (Scripts/check-prometheus-text).
    @Suite struct PrometheusOutput {
        @Test("the checker refuses malformed text, so a malformed listing fails these tests")
        func checkerRefusesMalformedText() throws {
            let malformed = [
                "# TYPE a gauge\na{x=\"1} 1\n",                          // unterminated label value
                "# TYPE a gauge\na 1\na 2\n",                             // a series twice
                "# TYPE a gauge\na 1\nb 2\n",                             // a sample outside its family
                "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# HELP a x\n", // a family declared after its samples
                "# TYPE a gauge\na one\n",                                // not a number
                "# TYPE a gauge\na 1",                                    // no final line feed
            ]
            for text in malformed {
                #expect(try PrometheusChecker.check(text).status == 1, "accepted: \(text)")
            }
            let good = try PrometheusChecker.check("# HELP a x\n# TYPE a gauge\na{x=\"q\\\"b\\\\s\\nn\"} 3\n")
            #expect(good.status == 0)
            #expect(good.samples == [.init(name: "a", labels: ["x": "q\"b\\s\nn"], value: 3)])
        }

        @Test("PrometheusText: every family declared once, label values escaped, equal series summed, whole numbers exact")
        func textFormat() throws {
            var text = PrometheusText()
            text.family("daxpin_x", help: "with \\ and\nnewline", [.init([("path", "/a \"b\" \\c\nd")], 1), .init([("path", "/e")], 2),
                                                                 .init([("path", "/e")], 3)])
            text.family("daxpin_empty", help: "none", [])
            text.family("daxpin_big", help: "bytes", [.init([], Double(1 << 40) + 1)])
            #expect(text.text.contains("daxpin_x{path=\"/a \\\"b\\\" \\\\c\\nd\"} 1\n"))
            #expect(text.text.contains("daxpin_big 1099511627777\n"))
            let samples = try PrometheusChecker.samples(text.text)
            #expect(samples.named("daxpin_x", ["path": "/a \"b\" \\c\nd"]).map(\.value) == [1])
            #expect(samples.named("daxpin_x", ["path": "/e"]).map(\.value) == [5])
            #expect(samples.named("daxpin_empty").isEmpty)
            #expect(text.text.contains("# TYPE daxpin_empty gauge\n"))
        }

        @Test("ls --format prometheus lists a held lease with its state, regions and bytes; awkward paths stay exact")
        func listHeldLease() throws {
            let run = ScratchRunDirectory()
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20, name: "quote\"back\\slash space")
            let holder = try DaxPinBinary.hold(file.path, seconds: 120, runDirectory: run.path)
            defer {
                if holder.isRunning { holder.terminate() }
                holder.waitUntilExit()
            }
            let pid = String(holder.processIdentifier)
            func listed() throws -> [PrometheusChecker.Sample] {
                let result = try DaxPinBinary.run(["ls", "--no-all", "--format", "prometheus"], runDirectory: run.path)
                try #require(result.status == 0, "\(result.stderr)")
                return try PrometheusChecker.samples(result.stdout)
            }
            #expect(eventually { ((try? listed()) ?? []).contains { $0.name == "daxpin_lease_state" && $0.labels["pid"] == pid } })
            let samples = try listed()
            let state = samples.named("daxpin_lease_state", ["pid": pid])
            #expect(state.count == 1)
            #expect(state.first?.labels == ["pid": pid, "process": "daxpin", "path": file.path, "state": "held"])
            #expect(state.first?.value == 1)
            if Testbed.isActive {
                #expect(samples.named("daxpin_lease_regions", ["pid": pid]).map(\.value) == [1])
                #expect(samples.named("daxpin_lease_pinned_bytes", ["pid": pid, "strategy": "pinned"]).map(\.value) == [Double(1 << 20)])
                Testbed.ran(.objectsOnly)
            } else {
                #expect(samples.named("daxpin_lease_regions", ["pid": pid]).map(\.value) == [0], "no RDMA device on the host: lease only")
            }
            #expect(samples.named("daxpin_registry_files_skipped").map(\.value) == [0])
            // --all adds the kernel's view; it parses too, and lists the same lease.
            let all = try DaxPinBinary.run(["ls", "--all", "--format", "prometheus"], runDirectory: run.path)
            #expect(all.status == 0)
            let everything = try PrometheusChecker.samples(all.stdout)
            #expect(everything.named("daxpin_lease_state", ["pid": pid, "state": "held"]).count == 1)
            #expect(everything.named("daxpin_at_risk_mappings").count == 1)
            #expect(everything.named("daxpin_process_daxpin", ["pid": pid]).map(\.value) == [1])
            holder.terminate()
            holder.waitUntilExit()
            #expect(try listed().named("daxpin_lease_state", ["pid": pid]).isEmpty)
        }

        @Test("the lease textfile of a process: written atomically, no temporary file left behind")
        func processTextfile() throws {
            let directory = "/tmp/daxpin-textfile-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            mkdir(directory, 0o700)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let path = directory + "/server.prom"
            let record = ProcessPinRecord(pid: 42, processStartTicks: 1, processName: "srv", uid: 0, updatedAt: 0, leases: [
                LeaseRecord(serial: 1, path: "/dev/shm/a", device: "0:5", inode: 7, access: "read-write", memory: "tmpfs file",
                            lease: "write lease", state: "held", reason: nil, createdAt: 0,
                            regions: [RegionRecord(id: 1, offset: 0, length: 4096, strategy: "pinned", rkey: 1),
                                      RegionRecord(id: 2, offset: 8192, length: 8192, strategy: "pinned", rkey: 2)]),
            ])
            try TextfileWriter.replace(path, with: LeaseTextfile.render(record, pid: 42, process: "srv"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["server.prom"])
            let samples = try PrometheusChecker.samples(try String(contentsOfFile: path, encoding: .utf8))
            #expect(samples.named("daxpin_lease_state", ["path": "/dev/shm/a", "state": "held"]).map(\.value) == [1])
            #expect(samples.named("daxpin_lease_regions", ["path": "/dev/shm/a"]).map(\.value) == [2])
            #expect(samples.named("daxpin_lease_pinned_bytes", ["strategy": "pinned"]).map(\.value) == [12288])
            #expect(samples.named("daxpin_leases", ["pid": "42", "process": "srv"]).map(\.value) == [1])
            try TextfileWriter.replace(path, with: LeaseTextfile.render(nil, pid: 42, process: "srv"))
            let empty = try PrometheusChecker.samples(try String(contentsOfFile: path, encoding: .utf8))
            #expect(empty.named("daxpin_leases").map(\.value) == [0] && empty.named("daxpin_lease_state").isEmpty)
            #expect(throws: DaxPinError.self) { try TextfileWriter.replace(directory + "/missing/x.prom", with: "") }
        }
    }
}

extension DaxPin.PrometheusOutput {
    /// The RDMA cases, on rxe0 in the testbed (both kernels).
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason)) struct RDMA {
        @Test("ls --all --format prometheus: a raw C program's MR per device, its VmPin, and its at-risk mapping")
        func unleasedPinInTextfile() throws {
            let device = try Testbed.required("DAXPIN_RDMA_DEVICE")
            let file = try DaxPin.Visibility.tmpfsFile(size: 1 << 20)
            let (child, ready) = try UnleasedPin.start(["rdma", device, file.path, "\(1 << 20)", "120"])
            defer { child.stop() }
            let result = try DaxPinBinary.run(["ls", "--all", "--format", "prometheus"])
            #expect(result.status == 0, "\(result.stderr)")
            let samples = try PrometheusChecker.samples(result.stdout)
            let pid = String(ready.pid)
            #expect(samples.named("daxpin_process_memory_regions", ["pid": pid, "device": device]).map(\.value) == [1])
            #expect(samples.named("daxpin_process_memory_region_bytes", ["pid": pid, "device": device]).map(\.value) == [Double(1 << 20)])
            #expect((samples.named("daxpin_process_pinned_bytes", ["pid": pid]).first?.value ?? 0) >= Double(1 << 20))
            let risk = samples.named("daxpin_at_risk_pin", ["pid": pid])
            #expect(risk.count == 1 && risk.first?.labels["path"] == file.path && risk.first?.labels["evidence"] == "circumstantial")
            #expect((samples.named("daxpin_at_risk_mappings").first?.value ?? 0) >= 1)
            #expect(samples.named("daxpin_process_daxpin", ["pid": pid]).map(\.value) == [0])
            #expect(child.stop() == 0, "\(child.output)")
            Testbed.ran(.objectsOnly)
        }

        @Test("daxpin-server --metrics-file: held with its pinned bytes, then empty after a lease break")
        func serverMetricsFile() throws {
            let directory = "/tmp/daxpin-metrics-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            mkdir(directory, 0o755)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let metrics = directory + "/daxpin-server.prom"
            let size = 1 << 20
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: size, fill: 0)
            let server = try StorageProcess.server(file: file.path, ["--metrics-file", metrics, "--quiesce-budget", "1000"])
            func samples() throws -> [PrometheusChecker.Sample] {
                try PrometheusChecker.samples(try String(contentsOfFile: metrics, encoding: .utf8))
            }
            #expect(eventually { ((try? samples()) ?? []).named("daxpin_lease_state", ["state": "held"]).count == 1 },
                    "\(String((try? String(contentsOfFile: metrics, encoding: .utf8)) ?? "no file"))")
            let held = try samples()
            let pid = String(server.process.processIdentifier)
            #expect(held.named("daxpin_lease_state", ["pid": pid, "path": file.path, "state": "held"]).map(\.value) == [1])
            #expect(held.named("daxpin_lease_pinned_bytes", ["pid": pid, "strategy": "pinned"]).map(\.value) == [Double(size)])
            #expect(held.named("daxpin_leases", ["pid": pid]).map(\.value) == [1])
            let breaker = try StorageProcess(["/usr/bin/python3", "-c", "import os, sys; os.truncate(sys.argv[1], 0)", file.path])
            #expect(breaker.waitExit(timeout: .seconds(40)) == 0, "truncate: \(breaker.everything)")
            #expect(server.waitExit(timeout: .seconds(20)) == 0, "server: \(server.everything)")
            let after = try samples()
            #expect(after.named("daxpin_lease_state").isEmpty, "\(after)")
            #expect(after.named("daxpin_leases", ["pid": pid]).map(\.value) == [0])
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["daxpin-server.prom"], "no temporary file left")
            Testbed.ran(.objectsOnly)
        }
    }
}
