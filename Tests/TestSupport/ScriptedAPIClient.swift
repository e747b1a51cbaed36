import APIMachinery
import Synchronization

/// An API client for informer tests: the n-th list answers `listed(resource, n)` at revision
/// 10 n, and watches play the scripted streams in turn, each ended by the server 1.1 s later,
/// recording each request; a watch past the script stays open until cancelled.
public final class ScriptedAPIClient: APIClient {
    public struct Calls: Sendable {
        public var lists = 0
        public var watchedFrom: [String] = []
    }
    public let calls = Mutex(Calls())
    let streams: [[APIWatchEvent]]
    let listed: @Sendable (ResourceInfo, Int) -> [JSON]

    public init(streams: [[APIWatchEvent]], listed: @escaping @Sendable (ResourceInfo, Int) -> [JSON] = { _, _ in [] }) {
        self.streams = streams
        self.listed = listed
    }

    public func list(_ r: ResourceInfo, namespace: String?, options: ListOptions) async throws(APIError) -> ListResult {
        let n = calls.withLock { c -> Int in
            c.lists += 1
            return c.lists
        }
        return ListResult(items: listed(r, n), resourceVersion: Int64(10 * n))
    }

    public func watch(_ r: ResourceInfo, namespace: String?, options: ListOptions) async throws(APIError) -> AsyncStream<APIWatchEvent> {
        let index = calls.withLock { c -> Int in
            c.watchedFrom.append(options.resourceVersion ?? "")
            return c.watchedFrom.count - 1
        }
        let (stream, continuation) = AsyncStream<APIWatchEvent>.makeStream()
        guard index < streams.count else { return stream }  // open until the informer stops
        for event in streams[index] { continuation.yield(event) }
        // The server ends the watch a moment later (a stream ending at once is backed off).
        Task {
            try? await Task.sleep(for: .milliseconds(1100))
            continuation.finish()
        }
        return stream
    }

    public func get(_ r: ResourceInfo, namespace: String?, name: String, subresource: String?) async throws(APIError) -> JSON {
        throw APIError.notFound(r.resource, name: name)
    }
    public func create(_ r: ResourceInfo, namespace: String?, body: JSON, options: WriteOptions,
                       subresource: String?) async throws(APIError) -> JSON {
        throw APIError.methodNotAllowed("create")
    }
    public func update(_ r: ResourceInfo, namespace: String?, name: String, body: JSON, subresource: String?,
                       options: WriteOptions) async throws(APIError) -> (object: JSON, created: Bool) {
        throw APIError.methodNotAllowed("update")
    }
    public func patch(_ r: ResourceInfo, namespace: String?, name: String, type: PatchType, body: [UInt8],
                      subresource: String?, options: WriteOptions) async throws(APIError) -> (object: JSON, created: Bool) {
        throw APIError.methodNotAllowed("patch")
    }
    public func delete(_ r: ResourceInfo, namespace: String?, name: String, options: DeleteOptions) async throws(APIError) -> DeleteResult {
        throw APIError.methodNotAllowed("delete")
    }
}
