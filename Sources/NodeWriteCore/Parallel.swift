#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The number of lanes `parallelFor(count, threads:)` runs on.
package func laneCount(_ count: Int, threads: Int) -> Int { max(1, min(threads, count)) }

/// Runs `body(i, lane)` for every i in 0..<count on `laneCount(count, threads:)` lanes: the
/// calling thread and threads started for this call (none kept between calls, so a fork is
/// safe). Task i runs on lane i % lanes, so per-lane scratch memory can be allocated up
/// front; if a thread cannot be started, the caller runs that lane's tasks. Each task must
/// write only its own outputs, so the result does not depend on `threads`.
package func parallelFor(_ count: Int, threads: Int, _ body: (_ task: Int, _ lane: Int) -> Void) {
    let workers = laneCount(count, threads: threads)
    guard workers > 1 else {
        for i in 0..<count { body(i, 0) }
        return
    }
    withoutActuallyEscaping(body) { body in
        final class Job {
            let body: (Int, Int) -> Void, count: Int, stride: Int
            init(_ body: @escaping (Int, Int) -> Void, _ count: Int, _ stride: Int) {
                self.body = body; self.count = count; self.stride = stride
            }
            func run(_ lane: Int) { var i = lane; while i < count { body(i, lane); i &+= stride } }
        }
        final class Lane { let job: Job; let first: Int; init(_ job: Job, _ first: Int) { self.job = job; self.first = first } }
        let job = Job(body, count, workers)
        var started: [pthread_t] = []
        var inline: [Int] = []
        for w in 1..<workers {
            let lane = Unmanaged.passRetained(Lane(job, w)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let lane = Unmanaged<Lane>.fromOpaque(raw!).takeRetainedValue()
                lane.job.run(lane.first)
                return nil
            }, lane)
            if rc == 0 {
                started.append(thread)
            } else {
                Unmanaged<Lane>.fromOpaque(lane).release()
                inline.append(w)
            }
        }
        job.run(0)
        for w in inline { job.run(w) }
        for thread in started { pthread_join(thread, nil) }
    }
}
