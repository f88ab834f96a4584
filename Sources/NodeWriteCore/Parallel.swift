import _NodeWriteKernels

/// The number of lanes `parallelFor(count, threads:)` runs on.
package func laneCount(_ count: Int, threads: Int) -> Int { max(1, min(threads, count)) }

/// Runs `body(i, lane)` for every i in 0..<count on `laneCount(count, threads:)` lanes (at most
/// 64): the calling thread and the kernels' helper threads, kept between calls
/// (`nwk_run_lanes`). Tasks go, in order and a few at a time (about 16 takes per lane, so that
/// many small tasks do not all meet on one counter), to whichever lane asks next (a core slowed
/// by other work, or a helper that starts late, takes fewer; a lane no helper has started by the
/// time the caller's own is done, the caller runs itself); `lane` (< lanes) indexes per-lane
/// scratch memory allocated up front. Each task must write only its own outputs, so the result
/// does not depend on `threads` or on which lane ran it.
package func parallelFor(_ count: Int, threads: Int, _ body: (_ task: Int, _ lane: Int) -> Void) {
    let workers = laneCount(count, threads: threads)
    guard workers > 1 else {
        for i in 0..<count { body(i, 0) }
        return
    }
    withoutActuallyEscaping(body) { body in
        final class Job {
            let body: (Int, Int) -> Void, count: Int, chunk: Int
            let next = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
            init(_ body: @escaping (Int, Int) -> Void, _ count: Int, _ chunk: Int) {
                self.body = body; self.count = count; self.chunk = chunk; next.initialize(to: 0)
            }
            deinit { next.deallocate() }
            func run(_ lane: Int) {
                while true {
                    let first = Kernels.nextTask(next) &* chunk
                    guard first < count else { return }
                    for i in first..<min(count, first &+ chunk) { body(i, lane) }
                }
            }
        }
        let job = Job(body, count, max(1, count / (workers &* 16)))
        withExtendedLifetime(job) {
            nwk_run_lanes({ context, lane in
                Unmanaged<Job>.fromOpaque(context!).takeUnretainedValue().run(Int(lane))
            }, Unmanaged.passUnretained(job).toOpaque(), Int32(clamping: workers))
        }
    }
}

/// `parallelFor` for tasks that can fail: every task runs, and the error of the lowest-numbered
/// task that failed is thrown once all lanes are done (so the same error for any thread count
/// or schedule). A task's error always reaches the caller.
package func tryParallelFor(_ count: Int, threads: Int,
                            _ body: (_ task: Int, _ lane: Int) throws(NodeWriteError) -> Void) throws(NodeWriteError) {
    final class FirstError: @unchecked Sendable {
        let mutex = Mutex()
        var failure: (task: Int, error: NodeWriteError)?
    }
    let first = FirstError()
    parallelFor(count, threads: threads) { task, lane in
        do throws(NodeWriteError) {
            try body(task, lane)
        } catch {
            first.mutex.locked {
                if first.failure.map({ task < $0.task }) ?? true { first.failure = (task, error) }
            }
        }
    }
    if let failure = first.mutex.locked({ first.failure }) { throw failure.error }
}
