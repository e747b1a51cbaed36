/// Runs `body` for at most `timeout`: its answer, or false when time ran out first (the body
/// is then cancelled). Start-up waits use it so that a lost watch cannot wedge a component.
public func withinDeadline(_ timeout: Duration, _ body: @escaping @Sendable () async -> Bool) async -> Bool {
    await withTaskGroup(of: Bool.self) { group in
        group.addTask { await body() }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return false
        }
        let first = await group.next() ?? false
        group.cancelAll()
        return first
    }
}
