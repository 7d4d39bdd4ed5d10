import Glibc

/// Runs the holder processes and watches them: every thread must report progress within
/// `bound`. On the first thread over its bound it saves, for the stalled holder, every thread's
/// kernel stack (`/proc/PID/task/*/stack`), a user-space backtrace of every thread (gdb, when
/// installed) and each thread's last reported step, then stops every holder and fails.
struct SoakWatchdog {
    let arguments: [String]
    let processes: Int
    let threads: Int
    let bound: Duration
    let output: String

    struct Holder {
        let pid: pid_t
        let pipe: Int32
        var buffer: [UInt8] = []
        var open = true
    }

    /// The last step each thread reported, and when.
    struct Progress { var cycle: Int; var step: String; var at: ContinuousClock.Instant }

    /// What the holders reported: cycles completed, and their peer's WRITEs (``SoakHolder/PeerCounts``).
    struct Totals { var cycles = 0; var peerChecked = 0; var peerRefused = 0 }

    /// Runs to the end; returns the totals, or throws the failure.
    func run() throws(SoakFailure) -> Totals {
        var holders: [Holder] = []
        for index in 0..<processes {
            holders.append(try spawn(arguments + ["--id", String(index)]))
        }
        var progress: [String: Progress] = [:]
        let start = ContinuousClock.now
        for index in 0..<processes {
            for thread in 0..<threads { progress["\(index) \(thread)"] = Progress(cycle: 0, step: "start", at: start) }
        }
        var totals = Totals()
        var failure: SoakFailure?
        while failure == nil, holders.contains(where: \.open) {
            var polls = holders.map { pollfd(fd: $0.open ? $0.pipe : -1, events: Int16(POLLIN), revents: 0) }
            _ = poll(&polls, nfds_t(polls.count), 250)
            let now = ContinuousClock.now
            for index in holders.indices where holders[index].open && polls[index].revents != 0 {
                var chunk = [UInt8](repeating: 0, count: 65536)
                let count = read(holders[index].pipe, &chunk, chunk.count)
                if count <= 0 {
                    holders[index].open = false
                    continue
                }
                holders[index].buffer += chunk[0..<count]
                while let newline = holders[index].buffer.firstIndex(of: 10) {
                    let line = String(decoding: holders[index].buffer[..<newline], as: UTF8.self)
                    holders[index].buffer.removeSubrange(...newline)
                    let fields = line.split(separator: " ", maxSplits: 4)
                    guard fields.count == 5, fields[0] == "P", let cycle = Int(fields[3]) else {
                        print(line)
                        continue
                    }
                    let step = String(fields[4])
                    let words = step.split(separator: " ")
                    if words.first == "ok" {  // "ok CHECKED REFUSED": the cycle's peer WRITEs
                        totals.cycles += 1
                        totals.peerChecked += words.count > 1 ? Int(words[1]) ?? 0 : 0
                        totals.peerRefused += words.count > 2 ? Int(words[2]) ?? 0 : 0
                    }
                    progress["\(fields[1]) \(fields[2])"] = step == "done" ? nil : Progress(cycle: cycle, step: step, at: now)
                }
            }
            if let (thread, stalled) = progress.first(where: { now - $0.value.at > bound }) {
                let holder = holders[Int(thread.split(separator: " ")[0])!]
                let saved = saveStacks(of: holder.pid, progress: progress)
                failure = SoakFailure("holder thread \(thread) made no progress for \(bound) at cycle \(stalled.cycle), step \"\(stalled.step)\"; stacks in \(saved)")
            }
        }
        for holder in holders {
            if failure != nil { kill(holder.pid, SIGKILL) }
            var status: Int32 = 0
            waitpid(holder.pid, &status, 0)
            close(holder.pipe)
            if failure == nil, status != 0 { failure = SoakFailure("holder \(holder.pid) exited with status \(status >> 8)") }
        }
        if let failure { throw failure }
        return totals
    }

    private func spawn(_ arguments: [String]) throws(SoakFailure) -> Holder {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SoakFailure("pipe: errno \(errno)") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)  // the holders inherit only their own write end (dup2'd to stdout)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let rc = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else { close(fds[0]); throw SoakFailure("posix_spawn: \(rc)") }
        return Holder(pid: pid, pipe: fds[0])
    }

    /// Saves what the stalled holder's threads are doing; returns the folder.
    private func saveStacks(of pid: pid_t, progress: [String: Progress]) -> String {
        let folder = "\(output)/stall-\(pid)"
        mkdir(output, 0o755)
        mkdir(folder, 0o755)
        var kernel = ""
        let tasks = "/proc/\(pid)/task"
        if let directory = opendir(tasks) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard Int(name) != nil else { continue }
                kernel += "== task \(name) (\(readFile("\(tasks)/\(name)/comm").trimmingCharacters())) wchan \(readFile("\(tasks)/\(name)/wchan"))\n"
                kernel += readFile("\(tasks)/\(name)/stack") + "\n"
            }
            closedir(directory)
        }
        writeFile("\(folder)/kernel-stacks.txt", kernel)
        writeFile("\(folder)/last-steps.txt", progress.sorted { $0.key < $1.key }
            .map { "thread \($0.key): cycle \($0.value.cycle), \($0.value.step)" }.joined(separator: "\n") + "\n")
        if access("/usr/bin/gdb", X_OK) == 0 {
            let command = "timeout 120 /usr/bin/gdb -p \(pid) -batch -ex 'thread apply all bt' > \(folder)/user-stacks.txt 2>&1"
            _ = system(command)
        } else {
            writeFile("\(folder)/user-stacks.txt", "gdb is not installed (apt-get install gdb)\n")
        }
        return folder
    }
}

func readFile(_ path: String) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "(unreadable: errno \(errno))" }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(fd, &chunk, chunk.count)
        guard count > 0 else { break }
        bytes += chunk[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

func writeFile(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return }
    defer { close(fd) }
    _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
}

extension String {
    func trimmingCharacters() -> String {
        String(self.drop { $0 == " " || $0 == "\n" }.reversed().drop { $0 == " " || $0 == "\n" }.reversed())
    }
}
