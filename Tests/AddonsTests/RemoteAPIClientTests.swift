import APIMachinery
import APIServer
import Controllers
import Foundation
import Logging
import NIOCore
import NIOPosix
import Store
import Synchronization
import Testing
@testable import Addons

// MARK: - Fixtures

/// The real API server (HTTP layer and all) on an ephemeral loopback port, plain HTTP or TLS.
private struct LoopbackAPIServer {
    let api: APIService
    let port: Int
    let running: Task<Void, any Error>

    /// Starts a server, runs `body` against it, stops the server even when `body` throws.
    static func with<T>(tls: TLSMaterial? = nil, token: String? = nil,
                        _ body: (LoopbackAPIServer) async throws -> T) async throws -> T {
        let server = try await start(tls: tls, token: token)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    static func start(tls: TLSMaterial?, token: String?) async throws -> LoopbackAPIServer {
        let api = APIService(store: MemoryStore(), serviceAllocator: ServiceAllocator(
            ranges: ServiceRanges(network: 0x0A60_0000, prefixLength: 12, nodePorts: 30000...32767)))
        _ = try await api.create(Resources.namespaces, namespace: nil,
                                 body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "default"]])
        var logger = Logger(label: "labnode.test")
        // Stopping the server by cancellation makes Hummingbird log an error that means nothing here.
        logger.logLevel = .critical
        let handler = APIHandler(api: api, serverAddress: "127.0.0.1", authenticator: token.map { FixedToken(token: $0) },
                                 peerCertificates: nil, logger: logger)
        let (ports, portFeed) = AsyncStream<Int>.makeStream()
        let service = APIServerService(handler: handler, host: "127.0.0.1", port: 0, tls: tls, logger: logger,
                                       onListening: { portFeed.yield($0) })
        let running = Task { try await service.run() }
        var it = ports.makeAsyncIterator()
        guard let port = await it.next(), port > 0 else {
            running.cancel()
            throw FixtureError("the API server did not report a listening port")
        }
        return LoopbackAPIServer(api: api, port: port, running: running)
    }

    func stop() async {
        api.endWatches()
        running.cancel()
        _ = try? await running.value
    }

    /// A client of this server over plain HTTP.
    func plainClient(token: String = "unused") throws -> RemoteAPIClient {
        try RemoteAPIClient(config: InClusterConfig(host: "127.0.0.1", port: port, token: token, caCertificatePEM: "",
                                                    insecurePlainHTTP: true))
    }
}

private struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Accepts one bearer token, as a service account token would be accepted.
private struct FixedToken: Authenticating {
    let token: String
    func authenticate(bearerToken: String) async -> RequestUser? {
        bearerToken == token ? RequestUser(name: "system:serviceaccount:kube-system:coredns", groups: ["system:masters"]) : nil
    }
    func authenticate(clientCertificateDER der: [UInt8]) async -> RequestUser? { nil }
}

/// Runs `operation`, failing with a message instead of hanging when it takes longer than `limit`.
/// A task group would wait for an operation that ignores cancellation (`Task.value`,
/// `waitSynced`), so the first of operation and timer resumes one continuation instead.
private func within<T: Sendable>(_ limit: Duration, _ what: String,
                         _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let once = ResumeOnce(continuation)
        let work = Task {
            do { once.resume(.success(try await operation())) } catch { once.resume(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: limit)
            once.resume(.failure(FixtureError("\(what) did not happen within \(limit)")))
            work.cancel()
        }
    }
}

private final class ResumeOnce<T: Sendable>: Sendable {
    let continuation: Mutex<CheckedContinuation<T, any Error>?>
    init(_ c: CheckedContinuation<T, any Error>) { continuation = Mutex(c) }
    func resume(_ result: Result<T, any Error>) {
        let c = continuation.withLock { c in
            defer { c = nil }
            return c
        }
        c?.resume(with: result)
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
private func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

/// Test PKI, made once with openssl (EC P-256, valid until 2126):
/// `serverPEM` is signed by `caPEM` for DNS:localhost, DNS:kubernetes.default.svc, IP:127.0.0.1;
/// `otherCAPEM` is an unrelated CA; `noLoopbackPEM` is signed by `caPEM` but names only
/// kubernetes.default.svc and 10.96.0.1, so it is wrong for a connection to 127.0.0.1.
private enum TestPKI {
    static let caPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBnDCCAUGgAwIBAgIUYseyxYXJzhZ48Xs6CeZhJUesooUwCgYIKoZIzj0EAwIw
        GjEYMBYGA1UEAwwPbGFibm9kZS10ZXN0LWNhMCAXDTI2MTEzMDE1NDYxNFoYDzIx
        MjYxMTA2MTU0NjE0WjAaMRgwFgYDVQQDDA9sYWJub2RlLXRlc3QtY2EwWTATBgcq
        hkjOPQIBBggqhkjOPQMBBwNCAARc4Sk05TCn3Va8yowYSdZjrh2w5CmN7TZ7OdjR
        8g0vzm3ZhA1OG/TXf4zDfhfm84p26sjBvElCyjcmWiDsK83ho2MwYTAdBgNVHQ4E
        FgQUWKEkY62sNNYzrDjMxU3RGmw94ygwHwYDVR0jBBgwFoAUWKEkY62sNNYzrDjM
        xU3RGmw94ygwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZI
        zj0EAwIDSQAwRgIhALy4XpspFkP/nbCHPiXzabAlGKA/QZnywuJCniQj0qwKAiEA
        1We9dispKxwIGbxDFGasRv3u0fJCyjWTcQCABhdXDmY=
        -----END CERTIFICATE-----

        """
    static let serverPEM = """
        -----BEGIN CERTIFICATE-----
        MIIB3zCCAYWgAwIBAgIUUmzNrwUFgj7vcAA4cxe8PEibTV8wCgYIKoZIzj0EAwIw
        GjEYMBYGA1UEAwwPbGFibm9kZS10ZXN0LWNhMCAXDTI2MTEzMDE1NDYxNFoYDzIx
        MjYxMTA2MTU0NjE0WjAZMRcwFQYDVQQDDA5rdWJlLWFwaXNlcnZlcjBZMBMGByqG
        SM49AgEGCCqGSM49AwEHA0IABPbfgb+7MCUnPpdW6BT4juR9rFzcTpYsz40ax4M5
        M8Z1xGMzNtpSbiyG6BuQ+S/47mMgGL8vcmDZV8n8/fYM5Y2jgacwgaQwCQYDVR0T
        BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwMgYDVR0R
        BCswKYIJbG9jYWxob3N0ghZrdWJlcm5ldGVzLmRlZmF1bHQuc3ZjhwR/AAABMB0G
        A1UdDgQWBBSl1uQ3H9zErQhmBpirId7Cb/URljAfBgNVHSMEGDAWgBRYoSRjraw0
        1jOsOMzFTdEabD3jKDAKBggqhkjOPQQDAgNIADBFAiBrnthFhbDclKO8bEmPCtGQ
        tGJjoInFrEykl1qPdYXaGwIhALuatSs6XtQTikgIci3Eo3GSibSaNMs16OInqRqp
        YhYE
        -----END CERTIFICATE-----

        """
    static let serverKeyPEM = """
        -----BEGIN EC PRIVATE KEY-----
        MHcCAQEEIKsLZf4akRCQjPNdfWmCwcXpd9OV0eLJXBAzYXSkGpBBoAoGCCqGSM49
        AwEHoUQDQgAE9t+Bv7swJSc+l1boFPiO5H2sXNxOlizPjRrHgzkzxnXEYzM22lJu
        LIboG5D5L/juYyAYvy9yYNlXyfz99gzljQ==
        -----END EC PRIVATE KEY-----

        """
    static let otherCAPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBljCCAT2gAwIBAgIUV0U+5dfRnhM4M9M7l6ByXzvRyBwwCgYIKoZIzj0EAwIw
        GDEWMBQGA1UEAwwNc29tZS1vdGhlci1jYTAgFw0yNjExMzAxNTQ2MTRaGA8yMTI2
        MTEwNjE1NDYxNFowGDEWMBQGA1UEAwwNc29tZS1vdGhlci1jYTBZMBMGByqGSM49
        AgEGCCqGSM49AwEHA0IABNb4WkDjpEwnuWFtVp6bI3JQb8o/GCi75EgRoR8EOsJ4
        NlB+HO8NsmADZ8KERPDWxNHC+iEyDVFCkVFIOTWsgxmjYzBhMB0GA1UdDgQWBBR1
        0u6Okg2qke3i3WcTU/aSJ9At2DAfBgNVHSMEGDAWgBR10u6Okg2qke3i3WcTU/aS
        J9At2DAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggqhkjOPQQD
        AgNHADBEAiBPYU8cHx3wN520kRVpLuHZ4ZnOQO2vpK7cuVbh4d6i1gIgfrX9CVp0
        ed+dHnvKWWv3n08IZ0vx7eLEnWd8iAqS8Xc=
        -----END CERTIFICATE-----

        """
    static let noLoopbackPEM = """
        -----BEGIN CERTIFICATE-----
        MIIB1DCCAXqgAwIBAgIUUmzNrwUFgj7vcAA4cxe8PEibTWAwCgYIKoZIzj0EAwIw
        GjEYMBYGA1UEAwwPbGFibm9kZS10ZXN0LWNhMCAXDTI2MTEzMDE1NDYxNFoYDzIx
        MjYxMTA2MTU0NjE0WjAZMRcwFQYDVQQDDA5rdWJlLWFwaXNlcnZlcjBZMBMGByqG
        SM49AgEGCCqGSM49AwEHA0IABNRQFyj/3Q6l86k2xkRQ4Hbj6U5/Tu+1dGtQsSSp
        ERwaL4OOKciigoFt5XD19pHMDASq1PJavIVswkvZKmEQGn2jgZwwgZkwCQYDVR0T
        BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwJwYDVR0R
        BCAwHoIWa3ViZXJuZXRlcy5kZWZhdWx0LnN2Y4cECmAAATAdBgNVHQ4EFgQUVmHb
        ZuTxdwdvAyy9sOF0eR5iAEkwHwYDVR0jBBgwFoAUWKEkY62sNNYzrDjMxU3RGmw9
        4ygwCgYIKoZIzj0EAwIDSAAwRQIhAIiC3BwBDdSXdSmu1CQnHXMIi8faQDmHcHNH
        nzplvS5OAiAswxnySuokVEbxLYWWOsSn9Ax/L9aD1MBXnItWeRU3VQ==
        -----END CERTIFICATE-----

        """
    static let noLoopbackKeyPEM = """
        -----BEGIN EC PRIVATE KEY-----
        MHcCAQEEIKFBtiyK+PQRsAoQGJLEJQtHhRs1b4b7I4mZuBPgdIlWoAoGCCqGSM49
        AwEHoUQDQgAE1FAXKP/dDqXzqTbGRFDgduPpTn9O77V0a1CxJKkRHBovg44pyKKC
        gW3lcPX2kcwMBKrU8lq8hWzCS9kqYRAafQ==
        -----END EC PRIVATE KEY-----

        """

    static let server = TLSMaterial(certificateChainPEM: serverPEM, privateKeyPEM: serverKeyPEM, clientCAPEM: caPEM)
    static let noLoopbackServer = TLSMaterial(certificateChainPEM: noLoopbackPEM, privateKeyPEM: noLoopbackKeyPEM,
                                              clientCAPEM: caPEM)
}

/// Records what handlers were told, for assertions from the test task.
private final class EventLog: Sendable {
    let entries = Mutex<[String]>([])
    func add(_ entry: String) { entries.withLock { $0.append(entry) } }
    func contains(_ entry: String) -> Bool { entries.withLock { $0.contains(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

private func configMap(_ name: String, labels: [String: String] = [:], data: JSON = ["k": "v"]) -> JSON {
    var labelObject: JSON = [:]
    for (k, v) in labels { labelObject[k] = .string(v) }
    return ["apiVersion": "v1", "kind": "ConfigMap",
            "metadata": ["name": .string(name), "namespace": "default", "labels": labelObject], "data": data]
}

/// The APIError `body` throws; nil when it succeeds. Any other error fails the test.
private func thrownAPIError(_ body: () async throws -> Void) async -> APIError? {
    do {
        try await body()
        return nil
    } catch let error as APIError {
        return error
    } catch {
        Issue.record("expected an APIError, got \(error)")
        return nil
    }
}

// MARK: - Against the real API server

@Suite("RemoteAPIClient against the real API server")
struct RemoteAPIClientTests {
    @Test("a ConfigMap is created, read, listed, patched, updated and deleted over HTTP")
    func configMapRoundTrip() async throws {
        try await LoopbackAPIServer.with { server in
            let client = try server.plainClient()
            let created = try await client.create(Resources.configMaps, configMap("settings", labels: ["app": "dns"]),
                                                  manager: "remote-test")
            #expect(created.name == "settings" && created.namespace == "default")
            #expect(created.uid?.isEmpty == false)
            let createdRV = try #require(created.resourceVersion.flatMap { Int64($0) })

            let got = try await client.get(Resources.configMaps, namespace: "default", name: "settings", subresource: nil)
            #expect(got["data"] == ["k": "v"])
            #expect(got.uid == created.uid)
            // The same object the in-process client sees.
            #expect(try await server.api.get(Resources.configMaps, namespace: "default", name: "settings") == got)

            _ = try await client.create(Resources.configMaps, configMap("other", labels: ["app": "web"]), manager: "remote-test")
            let all = try await client.list(Resources.configMaps, namespace: "default", options: ListOptions())
            #expect(Set(all.items.compactMap(\.name)) == ["settings", "other"])
            #expect(all.resourceVersion >= createdRV)
            #expect(all.items.allSatisfy { $0.kind == "ConfigMap" && $0.apiVersion == "v1" })
            let selected = try await client.items(Resources.configMaps, namespace: "default",
                                                  selector: try LabelSelector.parse("app in (dns,x)"))
            #expect(selected.compactMap(\.name) == ["settings"])
            var byName = ListOptions()
            byName.fieldSelector = try FieldSelector.parse("metadata.name=other")
            #expect(try await client.list(Resources.configMaps, namespace: nil, options: byName).items.compactMap(\.name) == ["other"])
            var firstPage = ListOptions()
            firstPage.limit = 1
            let page = try await client.list(Resources.configMaps, namespace: "default", options: firstPage)
            #expect(page.items.count == 1 && page.continueToken != nil)

            let patched = try await client.mergePatch(Resources.configMaps, namespace: "default", name: "settings",
                                                      ["data": ["k": "patched", "extra": "1"]], manager: "remote-test")
            #expect(patched["data"] == ["k": "patched", "extra": "1"])
            #expect(patched.resourceVersion != created.resourceVersion)

            var stale = created
            stale["data"] = ["k": "stale"]
            let conflict = await thrownAPIError { _ = try await client.update(Resources.configMaps, stale, manager: "remote-test") }
            #expect(conflict?.code == 409 && conflict?.reason == .conflict)
            var fresh = patched
            fresh["data"] = ["k": "updated"]
            let (updated, createdByPut) = try await client.update(Resources.configMaps, namespace: "default", name: "settings",
                                                                  body: fresh, subresource: nil, options: WriteOptions())
            #expect(updated["data"] == ["k": "updated"] && !createdByPut)

            let duplicate = await thrownAPIError { _ = try await client.create(Resources.configMaps, configMap("other"), manager: "t") }
            #expect(duplicate?.reason == .alreadyExists && duplicate?.name == "other")

            let result = try await client.delete(Resources.configMaps, namespace: "default", name: "settings", options: DeleteOptions())
            guard case .deleted(let gone) = result else {
                Issue.record("expected the ConfigMap to be deleted at once, got \(result)")
                return
            }
            #expect(gone.name == "settings" && gone.uid == created.uid && gone.kind == "ConfigMap")
            #expect(try await client.find(Resources.configMaps, namespace: "default", name: "settings") == nil)
            #expect(try await client.remove(Resources.configMaps, namespace: "default", name: "settings") == nil)
        }
    }

    @Test("deletion that waits (finalizers, a bound pod's grace period) is .pending; the final one is .deleted")
    func pendingDeletion() async throws {
        try await LoopbackAPIServer.with { server in
            let client = try server.plainClient()
            var kept = configMap("kept")
            kept[path: "metadata", "finalizers"] = ["example.com/keep"]
            _ = try await client.create(Resources.configMaps, kept, manager: "t")
            let first = try await client.delete(Resources.configMaps, namespace: "default", name: "kept", options: DeleteOptions())
            guard case .pending(let waiting) = first else {
                Issue.record("a ConfigMap with a finalizer should stay, got \(first)")
                return
            }
            #expect(waiting.deletionTimestamp != nil)
            _ = try await client.mergePatch(Resources.configMaps, namespace: "default", name: "kept",
                                            ["metadata": ["finalizers": nil]], manager: "t")
            #expect(try await client.find(Resources.configMaps, namespace: "default", name: "kept") == nil)

            let pod: JSON = ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "p", "namespace": "default"],
                             "spec": ["containers": [["name": "c", "image": "busybox"]]]]
            let created = try await client.create(Resources.pods, pod, manager: "t")
            // The binding subresource takes the pod's name from the Binding's metadata.
            _ = try await client.create(Resources.pods, namespace: "default", body: [
                "apiVersion": "v1", "kind": "Binding", "metadata": ["name": "p"],
                "target": ["apiVersion": "v1", "kind": "Node", "name": "labnode"]], options: WriteOptions(), subresource: "binding")
            let bound = try await client.get(Resources.pods, namespace: "default", name: "p", subresource: nil)
            #expect(bound[path: "spec", "nodeName"] == "labnode")
            let graceful = try await client.delete(Resources.pods, namespace: "default", name: "p", options: DeleteOptions())
            guard case .pending(let terminating) = graceful else {
                Issue.record("a bound pod should get a grace period, got \(graceful)")
                return
            }
            #expect(terminating.uid == created.uid && terminating[path: "metadata", "deletionGracePeriodSeconds"] == 30)
            let now = try await client.delete(Resources.pods, namespace: "default", name: "p",
                                              options: DeleteOptions(gracePeriodSeconds: 0))
            guard case .deleted(let gone) = now else {
                Issue.record("grace period 0 should delete the pod, got \(now)")
                return
            }
            #expect(gone.uid == created.uid)
            #expect(try await client.find(Resources.pods, namespace: "default", name: "p") == nil)
        }
    }

    @Test("a missing object is APIError 404 NotFound with the server's message and details")
    func notFound() async throws {
        try await LoopbackAPIServer.with { server in
            let client = try server.plainClient()
            let error = await thrownAPIError {
                _ = try await client.get(Resources.configMaps, namespace: "default", name: "missing", subresource: nil)
            }
            #expect(error == APIError.notFound("configmaps", name: "missing"))
            #expect(error?.description == "404 NotFound: configmaps \"missing\" not found")
            let deleteMissing = await thrownAPIError {
                _ = try await client.delete(Resources.endpointSlices, namespace: "default", name: "nope", options: DeleteOptions())
            }
            #expect(deleteMissing?.reason == .notFound && deleteMissing?.group == "discovery.k8s.io")
        }
    }

    @Test("a 422 keeps its causes; a bad request keeps its message")
    func validationErrors() async throws {
        try await LoopbackAPIServer.with { server in
            let client = try server.plainClient()
            let invalid = await thrownAPIError {
                _ = try await client.create(Resources.configMaps, configMap("Not_A_Name"), manager: "t")
            }
            #expect(invalid?.code == 422 && invalid?.reason == .invalid)
            #expect(invalid?.causes.contains { $0.field == "metadata.name" } == true)
            var bad = ListOptions()
            bad.resourceVersion = "not-a-number"
            let badRequest = await thrownAPIError { _ = try await client.list(Resources.services, namespace: nil, options: bad) }
            #expect(badRequest == APIError.badRequest("invalid resource version: not-a-number"))
        }
    }

    @Test("an Informer run with RemoteAPIClient lists, then sees a Service added and deleted")
    func informerOverServices() async throws {
        try await LoopbackAPIServer.with { server in
            let client = try server.plainClient()
            let service: (String) -> JSON = { name in
                ["apiVersion": "v1", "kind": "Service", "metadata": ["name": .string(name), "namespace": "default"],
                 "spec": ["selector": ["app": .string(name)], "ports": [["port": 80]]]]
            }
            _ = try await server.api.create(Resources.services, namespace: "default", body: service("before"))

            let informer = Informer(Resources.services)
            let log = EventLog()
            informer.onChange { event in
                switch event {
                case .added(let o): log.add("added \(o.name ?? "") \(o.kind ?? "")")
                case .updated(_, let o): log.add("updated \(o.name ?? "")")
                case .deleted(let o): log.add("deleted \(o.name ?? "")")
                }
            }
            var logger = Logger(label: "labnode.test")
            logger.logLevel = .critical
            let running = Task { [logger] in await informer.run(client: client, logger: logger) }
            defer { running.cancel() }
            try await within(.seconds(10), "the informer's first list") { await informer.waitSynced() }
            #expect(log.contains("added before Service"))

            let web = try await server.api.create(Resources.services, namespace: "default", body: service("web"))
            #expect(await eventually { log.contains("added web Service") }, "events: \(log.all)")
            let clusterIP = informer.get(namespace: "default", name: "web")?[path: "spec", "clusterIP"]?.stringValue
            #expect(clusterIP == web[path: "spec", "clusterIP"]?.stringValue && clusterIP?.hasPrefix("10.") == true)

            _ = try await server.api.delete(Resources.services, namespace: "default", name: "web")
            #expect(await eventually { log.contains("deleted web") }, "events: \(log.all)")
            #expect(informer.get(namespace: "default", name: "web") == nil)
            #expect(informer.get(namespace: "default", name: "before") != nil)

            running.cancel()
            try await within(.seconds(10), "the informer stopping on cancellation") { await running.value }
            #expect(await eventually { client.openConnections.withLockedValue { $0 } == 0 },
                    "the watch connection stayed open after the informer stopped")
        }
    }

    @Test("cancelling the consumer of a watch finishes the stream and closes the connection")
    func watchCancelled() async throws {
        try await LoopbackAPIServer.with { server in
            let client = try server.plainClient()
            let listed = try await client.list(Resources.configMaps, namespace: "default", options: ListOptions())
            let events = try await client.watch(Resources.configMaps, namespace: "default",
                                                options: ListOptions(resourceVersion: String(listed.resourceVersion)))
            #expect(client.openConnections.withLockedValue { $0 } == 1)
            let log = EventLog()
            let consumer = Task {
                for await event in events { log.add("\(event.type.rawValue) \(event.object.name ?? "")") }
                log.add("finished")
            }
            _ = try await client.create(Resources.configMaps, configMap("watched"), manager: "t")
            #expect(await eventually { log.contains("ADDED watched") }, "events: \(log.all)")

            consumer.cancel()
            try await within(.seconds(10), "the consumer ending after cancellation") { await consumer.value }
            #expect(log.all.last == "finished")
            #expect(await eventually { client.openConnections.withLockedValue { $0 } == 0 },
                    "the watch connection stayed open after its consumer was cancelled")
        }
    }

    @Test("a watch whose consumer stops iterating and drops the stream closes its connection")
    func watchDropped() async throws {
        try await LoopbackAPIServer.with { server in
            let client = try server.plainClient()
            do {
                let events = try await client.watch(Resources.configMaps, namespace: "default", options: ListOptions())
                _ = try await client.create(Resources.configMaps, configMap("one"), manager: "t")
                for await event in events where event.type == .added { break }
            }
            #expect(await eventually { client.openConnections.withLockedValue { $0 } == 0 },
                    "the watch connection stayed open after its stream was dropped")
        }
    }

    @Test("a watch the server ends finishes the stream; ADDED, MODIFIED, DELETED arrive in order")
    func watchEndedByServer() async throws {
        try await LoopbackAPIServer.with { server in
            let client = try server.plainClient()
            let events = try await client.watch(Resources.configMaps, namespace: "default",
                                                options: ListOptions(labelSelector: try LabelSelector.parse("app=dns")))
            let log = EventLog()
            let consumer = Task {
                for await event in events where event.type != .bookmark {
                    log.add("\(event.type.rawValue) \(event.object.name ?? "") \(event.object.kind ?? "")")
                }
                log.add("finished")
            }
            _ = try await client.create(Resources.configMaps, configMap("ignored", labels: ["app": "web"]), manager: "t")
            _ = try await client.create(Resources.configMaps, configMap("cm", labels: ["app": "dns"]), manager: "t")
            _ = try await client.mergePatch(Resources.configMaps, namespace: "default", name: "cm", ["data": ["k": "2"]], manager: "t")
            try await client.remove(Resources.configMaps, namespace: "default", name: "cm")
            #expect(await eventually { log.all.count == 3 }, "events: \(log.all)")
            server.api.endWatches()
            try await within(.seconds(10), "the stream finishing after the server ended the watch") { await consumer.value }
            #expect(log.all == ["ADDED cm ConfigMap", "MODIFIED cm ConfigMap", "DELETED cm ConfigMap", "finished"])
        }
    }

    @Test("a watch refused by the server throws its Status")
    func watchRefused() async throws {
        try await LoopbackAPIServer.with { server in
            let client = try server.plainClient()
            var options = ListOptions()
            options.fieldSelector = try FieldSelector.parse("spec.unknown=x")
            let error = await thrownAPIError { _ = try await client.watch(Resources.configMaps, namespace: nil, options: options) }
            #expect(error?.code == 400 && error?.reason == .badRequest, "got \(String(describing: error))")
            #expect(await eventually { client.openConnections.withLockedValue { $0 } == 0 })
        }
    }

    @Test("no server listening: 503 ServiceUnavailable naming the request and the refused dial")
    func connectionRefused() async throws {
        // A port that was just free: bind, note it, close.
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        try await listener.close(mode: .all).get()
        let client = try RemoteAPIClient(config: InClusterConfig(host: "127.0.0.1", port: port, token: "t",
                                                                 caCertificatePEM: "", insecurePlainHTTP: true))
        let error = await thrownAPIError { _ = try await client.list(Resources.services, namespace: nil, options: ListOptions()) }
        #expect(error?.code == 503 && error?.reason == .serviceUnavailable)
        #expect(error?.message == "GET http://127.0.0.1:\(port)/api/v1/services: dial tcp 127.0.0.1:\(port): connect: connection refused")
    }
}

// MARK: - TLS and bearer tokens

extension RemoteAPIClientTests {
    @Suite("RemoteAPIClient over TLS with a bearer token")
    struct TLS {
        func client(port: Int, host: String = "127.0.0.1", token: String = "sa-token",
                    ca: String = TestPKI.caPEM) throws -> RemoteAPIClient {
            try RemoteAPIClient(config: InClusterConfig(host: host, port: port, token: token, caCertificatePEM: ca,
                                                        namespace: "kube-system"))
        }

        @Test("the cluster CA verifies the server by IP SAN and the token authenticates")
        func tlsAndToken() async throws {
            try await LoopbackAPIServer.with(tls: TestPKI.server, token: "sa-token") { server in
                let client = try client(port: server.port)
                _ = try await client.create(Resources.configMaps, configMap("over-tls"), manager: "t")
                let got = try await client.get(Resources.configMaps, namespace: "default", name: "over-tls", subresource: nil)
                #expect(got.name == "over-tls")
                // Watches go over TLS too.
                let events = try await client.watch(Resources.configMaps, namespace: "default", options: ListOptions())
                let first = try await within(.seconds(10), "the first watch event") { () -> APIWatchEvent? in
                    for await event in events { return event }
                    return nil
                }
                #expect(first?.type == .added && first?.object.name == "over-tls")
            }
        }

        @Test("a DNS name is checked against the certificate's DNS SANs")
        func tlsByName() async throws {
            try await LoopbackAPIServer.with(tls: TestPKI.server, token: "sa-token") { server in
                let client = try client(port: server.port, host: "localhost")
                #expect(try await client.list(Resources.namespaces, namespace: nil, options: ListOptions()).items.count == 1)
            }
        }

        @Test("a wrong token is 401 Unauthorized")
        func wrongToken() async throws {
            try await LoopbackAPIServer.with(tls: TestPKI.server, token: "sa-token") { server in
                let client = try client(port: server.port, token: "stolen")
                let error = await thrownAPIError { _ = try await client.list(Resources.services, namespace: nil, options: ListOptions()) }
                #expect(error == APIError.unauthorized)
            }
        }

        @Test("a server whose certificate another CA signed is refused")
        func untrustedServer() async throws {
            try await LoopbackAPIServer.with(tls: TestPKI.server, token: "sa-token") { server in
                let client = try client(port: server.port, ca: TestPKI.otherCAPEM)
                let error = await thrownAPIError { _ = try await client.list(Resources.services, namespace: nil, options: ListOptions()) }
                #expect(error?.reason == .serviceUnavailable)
                #expect(error?.message.contains("TLS handshake") == true, "got \(error?.message ?? "no error")")
                #expect(error?.message.contains("CERTIFICATE_VERIFY_FAILED") == true, "got \(error?.message ?? "no error")")
            }
        }

        @Test("a certificate from the right CA that does not name the address is refused")
        func certificateForAnotherAddress() async throws {
            try await LoopbackAPIServer.with(tls: TestPKI.noLoopbackServer, token: "sa-token") { server in
                let client = try client(port: server.port)
                let error = await thrownAPIError { _ = try await client.list(Resources.services, namespace: nil, options: ListOptions()) }
                #expect(error?.reason == .serviceUnavailable)
                #expect(error?.message.hasSuffix("TLS handshake with https://127.0.0.1:\(server.port) failed: the server certificate "
                    + "is not valid for 127.0.0.1 (it is not among the certificate's subject alternative names)") == true,
                    "got \(error?.message ?? "no error")")
            }
        }

        @Test("a CA bundle without a certificate is refused when the client is made")
        func invalidCA() throws {
            #expect(throws: InClusterConfigError.self) {
                _ = try RemoteAPIClient(config: InClusterConfig(host: "10.96.0.1", port: 443, token: "t", caCertificatePEM: "junk"))
            }
        }
    }
}

// MARK: - Configuration from the pod's environment

extension RemoteAPIClientTests {
    @Suite("InClusterConfig.load")
    struct InClusterConfigLoad {
        /// A scratch service-account directory, removed when `body` returns or throws.
        func withDirectory<T>(files: [String: String], _ body: (String) throws -> T) throws -> T {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("labnode-sa-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            for (name, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/" + name)) }
            return try body(dir)
        }

        static let env = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        static let files = ["token": "eyJhbGciOi.token\n", "ca.crt": TestPKI.caPEM, "namespace": "kube-system"]

        @Test("everything mounted: host, port, token (trimmed), CA and namespace")
        func complete() throws {
            let config = try withDirectory(files: Self.files) { dir in try InClusterConfig.load(environment: Self.env, directory: dir) }
            #expect(config == InClusterConfig(host: "10.96.0.1", port: 443, token: "eyJhbGciOi.token",
                                              caCertificatePEM: TestPKI.caPEM, namespace: "kube-system"))
            #expect(config.baseURL == "https://10.96.0.1:443")
            #expect(InClusterConfig(host: "fd00::1", port: 443, token: "", caCertificatePEM: "").baseURL == "https://[fd00::1]:443")
            _ = try RemoteAPIClient(config: config)
        }

        @Test("the namespace: POD_NAMESPACE first, then the file, then default")
        func namespace() throws {
            var env = Self.env
            env["POD_NAMESPACE"] = "from-env"
            #expect(try withDirectory(files: Self.files) { try InClusterConfig.load(environment: env, directory: $0) }.namespace == "from-env")
            var noNamespace = Self.files
            noNamespace["namespace"] = nil
            #expect(try withDirectory(files: noNamespace) { try InClusterConfig.load(environment: Self.env, directory: $0) }.namespace == "default")
        }

        @Test("what is missing or wrong is named", arguments: [
            (["KUBERNETES_SERVICE_HOST": "10.96.0.1"], InClusterConfigLoad.files, InClusterConfigError.Code.notInCluster,
             "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"),
            ([:], InClusterConfigLoad.files, .notInCluster, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"),
            (["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "https"], InClusterConfigLoad.files, .invalidPort,
             "KUBERNETES_SERVICE_PORT=\"https\" is not a port number"),
            (InClusterConfigLoad.env, ["ca.crt": TestPKI.caPEM], .unreadableFile, "cannot read the service account token DIR/token: no such file"),
            (InClusterConfigLoad.env, ["token": " \n", "ca.crt": TestPKI.caPEM], .emptyToken, "the service account token DIR/token is empty"),
            (InClusterConfigLoad.env, ["token": "t"], .unreadableFile, "cannot read the cluster CA certificate DIR/ca.crt: no such file"),
            (InClusterConfigLoad.env, ["token": "t", "ca.crt": "not pem"], .invalidCertificate, "the cluster CA certificate DIR/ca.crt holds no PEM certificate"),
        ] as [([String: String], [String: String], InClusterConfigError.Code, String)])
        func failures(env: [String: String], files: [String: String], code: InClusterConfigError.Code, message: String) throws {
            try withDirectory(files: files) { dir in
                do {
                    let config = try InClusterConfig.load(environment: env, directory: dir)
                    Issue.record("expected \(code), loaded \(config)")
                } catch let error as InClusterConfigError {
                    #expect(error.code == code)
                    let expected = message.replacingOccurrences(of: "DIR", with: dir)
                    #expect(error.message.contains(expected), "got \(error.message)")
                }
            }
        }
    }
}

// MARK: - Requests and answers, without a server

extension RemoteAPIClientTests {
    @Suite("RemoteAPIClient requests and answers")
    struct Wire {
        @Test("paths follow the real API", arguments: [
            (Resources.services, "kube-system", "kube-dns", nil, "/api/v1/namespaces/kube-system/services/kube-dns"),
            (Resources.endpointSlices, "default", "web-abc12", nil, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-abc12"),
            (Resources.pods, "default", "web", "status", "/api/v1/namespaces/default/pods/web/status"),
            (Resources.namespaces, "ignored", "default", nil, "/api/v1/namespaces/default"),
            (Resources.configMaps, "default", "a b/c", nil, "/api/v1/namespaces/default/configmaps/a%20b%2Fc"),
        ] as [(ResourceInfo, String?, String, String?, String)])
        func paths(r: ResourceInfo, namespace: String?, name: String, subresource: String?, expected: String) throws {
            #expect(try RemoteAPIClient.path(r, namespace: namespace, name: name, subresource: subresource) == expected)
        }

        @Test("collections: one namespace, or all of them")
        func collections() throws {
            #expect(RemoteAPIClient.collectionPath(Resources.endpointSlices, namespace: nil) == "/apis/discovery.k8s.io/v1/endpointslices")
            #expect(RemoteAPIClient.collectionPath(Resources.services, namespace: "default") == "/api/v1/namespaces/default/services")
            #expect(throws: APIError.badRequest("resource name may not be empty")) {
                try RemoteAPIClient.path(Resources.services, namespace: "default", name: "", subresource: nil)
            }
        }

        @Test("list and watch options become the query kube-apiserver reads")
        func queries() throws {
            var o = ListOptions(labelSelector: try LabelSelector.parse("app=web,tier in (a,b)"),
                                fieldSelector: try FieldSelector.parse("metadata.name!=x"), resourceVersion: "42")
            o.limit = 500
            o.continueToken = "tok"
            let list = RemoteAPIClient.HTTPRequest(.GET, "/api/v1/pods", query: RemoteAPIClient.listQuery(o, watch: false))
            #expect(list.target == "/api/v1/pods?labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29&fieldSelector=metadata.name%21%3Dx"
                + "&resourceVersion=42&limit=500&continue=tok")
            o.timeoutSeconds = 300
            let watch = RemoteAPIClient.HTTPRequest(.GET, "/api/v1/pods", query: RemoteAPIClient.listQuery(o, watch: true))
            #expect(watch.target == "/api/v1/pods?watch=true&labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29"
                + "&fieldSelector=metadata.name%21%3Dx&resourceVersion=42&allowWatchBookmarks=true&timeoutSeconds=300")
            #expect(RemoteAPIClient.listQuery(ListOptions(), watch: false).isEmpty)
            let escaped = try FieldSelector.parse(#"metadata.name=a\,b\=c\\d"#)
            #expect(escaped.requirements.first?.value == "a,b=c\\d")
            #expect(RemoteAPIClient.fieldSelectorString(escaped) == #"metadata.name=a\,b\=c\\d"#)
        }

        @Test("write and delete options")
        func writeAndDelete() {
            var w = WriteOptions(fieldManager: "coredns")
            w.dryRun = true
            w.force = true
            w.fieldValidation = .strict
            #expect(RemoteAPIClient.writeQuery(w).map { "\($0)=\($1)" } == ["dryRun=All", "fieldManager=coredns", "fieldValidation=Strict", "force=true"])
            #expect(RemoteAPIClient.writeQuery(WriteOptions()).isEmpty)
            var d = DeleteOptions(propagationPolicy: "Foreground", preconditionUID: "u1", gracePeriodSeconds: 0)
            d.dryRun = true
            #expect(RemoteAPIClient.deleteBody(d) == [
                "kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "propagationPolicy": "Foreground",
                "preconditions": ["uid": "u1"], "dryRun": ["All"]])
        }

        static let request = RemoteAPIClient.HTTPRequest(.GET, "/api/v1/namespaces/default/services/web")

        @Test("error answers: the Status body when there is one, the code's reason when not", arguments: [
            (404, #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"services \"web\" not found","reason":"NotFound","details":{"name":"web","kind":"services"},"code":404}"#,
             APIError.notFound("services", name: "web")),
            (422, #"{"kind":"Status","status":"Failure","message":"m","reason":"Invalid","details":{"name":"x","kind":"Service","causes":[{"reason":"FieldValueRequired","message":"Required value","field":"spec.ports"}]},"code":422}"#,
             APIError(code: 422, reason: .invalid, message: "m", name: "x", kind: "Service",
                      causes: [.init(reason: "FieldValueRequired", message: "Required value", field: "spec.ports")])),
            (410, #"{"kind":"Status","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}"#,
             APIError.gone("too old resource version: 1 (5)")),
            (500, #"{"kind":"Status","status":"Failure","message":"boom","reason":"SomethingNew","code":500}"#,
             APIError(code: 500, reason: .internalError, message: "boom")),
            (403, "", APIError(code: 403, reason: .forbidden, message: "the server does not allow access to the requested resource")),
            (502, "Bad Gateway\n", APIError(code: 502, reason: .unknown,
             message: "an error on the server has prevented the request from succeeding (GET /api/v1/namespaces/default/services/web: Bad Gateway)")),
        ] as [(Int, String, APIError)])
        func statusErrors(status: Int, body: String, expected: APIError) {
            #expect(RemoteAPIClient.statusError(status: status, headers: [:], body: Array(body.utf8), request: Self.request) == expected)
        }

        @Test("Retry-After is kept when the Status has none")
        func retryAfter() {
            let e = RemoteAPIClient.statusError(status: 429, headers: ["Retry-After": "3"], body: [], request: Self.request)
            #expect(e.reason == .tooManyRequests && e.retryAfterSeconds == 3)
        }

        @Test("watch lines: split anywhere, CRLF and blank lines tolerated, oversized lines refused")
        func framing() throws {
            var framer = LineFramer(limit: 64)
            #expect(try framer.append(Array(#"{"type":"ADD"#.utf8)).isEmpty)
            let lines = try framer.append(Array("ED\"}\r\n\n{\"a\":1}\n{\"b\"".utf8))
            #expect(lines.map { String(decoding: $0, as: UTF8.self) } == [#"{"type":"ADDED"}"#, #"{"a":1}"#])
            #expect(try framer.append(Array(":2}\n".utf8)).map { String(decoding: $0, as: UTF8.self) } == [#"{"b":2}"#])
            #expect(throws: RemoteAPIClient.TransportFailure.self) { try framer.append([UInt8](repeating: 0x20, count: 65)) }
        }

        @Test("watch events decode; list items without kind get the resource's kind; junk is an ERROR")
        func events() {
            let added = RemoteAPIClient.decodeEvent(Array(#"{"type":"ADDED","object":{"metadata":{"name":"web"}}}"#.utf8), Resources.services)
            #expect(added.type == .added && added.object.kind == "Service" && added.object.apiVersion == "v1" && added.object.name == "web")
            let bookmark = RemoteAPIClient.decodeEvent(Array(#"{"type":"BOOKMARK","object":{"kind":"Service","metadata":{"resourceVersion":"9"}}}"#.utf8),
                                                       Resources.services)
            #expect(bookmark.type == .bookmark && bookmark.object.resourceVersion == "9")
            for junk in ["not json", #"{"type":"SOMETHING","object":{}}"#, #"{"type":"ADDED"}"#] {
                let e = RemoteAPIClient.decodeEvent(Array(junk.utf8), Resources.services)
                #expect(e.type == .error && e.object["reason"] == "InternalError", "\(junk)")
                #expect(e.object["message"]?.stringValue?.hasPrefix("unable to decode an event from the watch stream") == true)
            }
        }
    }
}
