import Testing
@testable import Runtime

@Suite("Image references")
struct ImageReferenceTests {
    /// (input, normalised, familiar) — the spellings Docker and containerd treat as equal.
    static let valid: [(String, String, String)] = [
        ("nginx", "docker.io/library/nginx:latest", "nginx"),
        ("nginx:latest", "docker.io/library/nginx:latest", "nginx"),
        ("library/nginx", "docker.io/library/nginx:latest", "nginx"),
        ("docker.io/nginx", "docker.io/library/nginx:latest", "nginx"),
        ("docker.io/library/nginx:latest", "docker.io/library/nginx:latest", "nginx"),
        ("index.docker.io/library/nginx", "docker.io/library/nginx:latest", "nginx"),
        ("nginx:1.25-alpine", "docker.io/library/nginx:1.25-alpine", "nginx:1.25-alpine"),
        ("bitnami/nginx", "docker.io/bitnami/nginx:latest", "bitnami/nginx"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        ("registry.k8s.io/coredns/coredns:v1.11.1", "registry.k8s.io/coredns/coredns:v1.11.1", "registry.k8s.io/coredns/coredns:v1.11.1"),
        ("localhost/app", "localhost/app:latest", "localhost/app"),
        ("localhost:5000/team/app:v2", "localhost:5000/team/app:v2", "localhost:5000/team/app:v2"),
        ("my.registry:5000/a_b/c__d/e-f/g.h", "my.registry:5000/a_b/c__d/e-f/g.h:latest", "my.registry:5000/a_b/c__d/e-f/g.h"),
        (
            "busybox@sha256:" + String(repeating: "ab", count: 32),
            "docker.io/library/busybox@sha256:" + String(repeating: "ab", count: 32),
            "busybox@sha256:" + String(repeating: "ab", count: 32)
        ),
        (
            "nginx:1.25@sha256:" + String(repeating: "0f", count: 32),
            "docker.io/library/nginx:1.25@sha256:" + String(repeating: "0f", count: 32),
            "nginx:1.25@sha256:" + String(repeating: "0f", count: 32)
        ),
    ]

    @Test("normalises like Docker", arguments: valid)
    func normalises(input: String, normalized: String, familiar: String) throws {
        let reference = try ImageReference(parsing: input)
        #expect(reference.normalized == normalized)
        #expect(reference.familiar == familiar)
        // Normalising is idempotent: the normalised form names the same image.
        #expect(try ImageReference(parsing: normalized) == reference)
    }

    @Test("nginx and its full name are one image")
    func equalSpellings() throws {
        #expect(try ImageReference(parsing: "nginx") == ImageReference(parsing: "docker.io/library/nginx:latest"))
        let pinned = try ImageReference(parsing: "registry.k8s.io/pause:3.9")
        #expect(pinned.domain == "registry.k8s.io")
        #expect(pinned.path == "pause")
        #expect(pinned.tag == "3.9")
        #expect(pinned.digest == nil)
        let byDigest = try ImageReference(parsing: "nginx@sha256:" + String(repeating: "1", count: 64))
        #expect(byDigest.tag == nil)
        #expect(byDigest.repository == "docker.io/library/nginx")
    }

    /// (input, part of the error message)
    static let invalid: [(String, String)] = [
        ("", "empty"),
        ("Nginx", "must be lowercase"),
        ("library/NGINX", "must be lowercase"),
        ("nginx:", "tag"),
        (":latest", "at least one component"),
        ("nginx:la test", "tag"),
        ("nginx:-bad", "tag"),
        ("nginx@sha256:abc", "invalid checksum digest length"),
        ("nginx@md5:" + String(repeating: "a", count: 32), "unsupported digest algorithm"),
        ("nginx@", "invalid checksum digest format"),
        ("a//b", "path component"),
        ("a/b-", "path component"),
        ("-a/b", "path component"),
        ("bad_host:99x/app", "invalid registry host"),
        (String(repeating: "ab", count: 32), "cannot specify 64-byte hexadecimal strings"),
        ("docker.io/" + String(repeating: "a", count: 250), "more than 255"),
    ]

    @Test("rejects malformed references with a clear message", arguments: invalid)
    func rejects(input: String, fragment: String) {
        do {
            let parsed = try ImageReference(parsing: input)
            Issue.record("\(input) parsed as \(parsed)")
        } catch let error as ImageError {
            #expect(error.code == .invalidReference)
            #expect(error.message.contains(fragment), "message was: \(error.message)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}
