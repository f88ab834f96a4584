@testable import NodeWriteCore
import Testing

/// Parallel tasks that fail: the error reaches the caller.
@Suite("Parallel")
struct ParallelTests {
    @Test("tryParallelFor: every task runs; the lowest-numbered task's error is thrown, for any thread count",
          arguments: [1, 2, 3, 4])
    func taskErrors(_ threads: Int) {
        let count = 1000
        let ran = UnsafeMutablePointer<Int>.allocate(capacity: count)
        defer { ran.deallocate() }
        ran.initialize(repeating: 0, count: count)
        var caught: NodeWriteError?
        do {
            try tryParallelFor(count, threads: threads) { (task, _) throws(NodeWriteError) in
                ran[task] += 1
                if task % 97 == 41 { throw .outOfMemory("task \(task)") }
            }
        } catch {
            caught = error
        }
        #expect(caught == .outOfMemory("task 41"))
        #expect((0..<count).allSatisfy { ran[$0] == 1 })
        var none: NodeWriteError?
        do { try tryParallelFor(count, threads: threads) { (_, _) throws(NodeWriteError) in } } catch { none = error }
        #expect(none == nil)
    }
}
