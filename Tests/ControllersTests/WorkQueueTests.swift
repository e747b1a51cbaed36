import Testing
@testable import Controllers

@Suite struct WorkQueueTests {
    @Test func keyAddedTwiceIsQueuedOnce() async {
        let q = WorkQueue()
        q.add("a")
        q.add("a")
        q.add("b")
        #expect(q.length == 2)
        #expect(await q.next() == "a")
        #expect(await q.next() == "b")
    }

    @Test func keyAddedWhileProcessingRunsAgainAfterDone() async {
        let q = WorkQueue()
        q.add("a")
        let first = await q.next()
        #expect(first == "a")
        q.add("a")
        #expect(q.length == 0, "not handed to a second worker while the first has it")
        q.done("a")
        #expect(await q.next() == "a")
    }

    @Test func shutDownWakesWaiters() async {
        let q = WorkQueue()
        async let waiting = q.next()
        try? await Task.sleep(for: .milliseconds(20))
        q.shutDown()
        #expect(await waiting == nil)
    }

    @Test func retryBacksOffThenDelivers() async {
        let q = WorkQueue(baseDelay: .milliseconds(1))
        q.retry("a")
        #expect(await q.next() == "a")
    }
}
