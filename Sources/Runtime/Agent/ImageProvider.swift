import APIMachinery
import Foundation

/// An image a pod asked for that is neither in the store nor buildable from a recipe.
public struct ImageNotAvailable: Error, CustomStringConvertible, Sendable {
    public var reference: String
    public var description: String {
        "failed to pull and unpack image \(GoQuote.quote(reference)): labnode works offline and has no such image; "
            + "build it with `labnode image build NAME` or load it with `labnode image import FILE`"
    }
}

/// The node's source of images: the local store, filled on demand from the recipes in
/// `images/` (there is no registry to pull from). Builds are serialized, and a recipe being
/// built is awaited by every pod that needs it instead of being built twice.
public actor ImageProvider {
    public let store: ImageStore
    let builder: ImageBuilder?
    var builds: [String: Task<Void, Never>] = [:]
    var buildErrors: [String: String] = [:]

    public init(store: ImageStore, builder: ImageBuilder?) {
        self.store = store
        self.builder = builder
    }

    /// The recipe that makes `reference`: `nginx`, `nginx:latest` and
    /// `docker.io/library/nginx:latest` are all the `nginx` recipe. So is a version tag such as
    /// `nginx:1.25`: offline there is one nginx, and a course's rolling-update exercise
    /// (`kubectl set image ... nginx=nginx:1.25`) must still roll. Any other tag
    /// (`nginx:doesnotexist`) is not, so the ImagePullBackOff exercise still fails as upstream.
    func recipeName(for reference: String) -> String? {
        guard let builder, let parsed = try? ImageReference(parsing: reference),
              parsed.domain == "docker.io", parsed.path.hasPrefix("library/"), parsed.digest == nil,
              Self.isRecipeTag(parsed.tag ?? "latest")
        else { return nil }
        let name = String(parsed.path.dropFirst("library/".count))
        return ((try? builder.recipeNames()) ?? []).contains(name) ? name : nil
    }

    /// `latest`, or a version made of numbers and dots (`1.25`, `1.25.3`).
    static func isRecipeTag(_ tag: String) -> Bool {
        if tag == "latest" { return true }
        let parts = tag.split(separator: ".", omittingEmptySubsequences: false)
        return !parts.isEmpty && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
    }

    public func resolve(_ reference: String) async throws -> ResolvedImage {
        let recipe = recipeName(for: reference)
        // A recipe image being rebuilt, or stale, is waited for rather than run old.
        if store.contains(reference) && (recipe.map { builds[$0] == nil && !isStale($0) } ?? true) {
            return try store.resolve(reference)
        }
        guard let recipe else { throw ImageNotAvailable(reference: reference) }
        if builds[recipe] != nil || !store.contains(recipe) || isStale(recipe) { await build(recipe) }
        if let error = buildErrors[recipe] {
            throw ImageNotAvailable(reference: reference + " (its recipe failed: \(error))")
        }
        return try store.resolve(recipe)
    }

    /// Builds every recipe whose image is missing or stale (its copied files changed since it
    /// was built), at start, so the first pods need not wait.
    public func buildMissing(progress: @escaping @Sendable (String) -> Void = { _ in }) async {
        guard let builder, let names = try? builder.recipeNames() else { return }
        let store = self.store
        _ = await ContainerLauncher.onDedicatedThread { store.sweepAbandonedScratch() }
        for name in names where !store.contains(name) || isStale(name) {
            await build(name)
            progress(name)
        }
    }

    func fingerprintPath(_ name: String) -> String { store.root + "/recipe-sources/" + name }

    /// Whether the recipe's sources changed since its image was built. An image built before
    /// fingerprints were kept counts as stale only when its recipe copies files.
    func isStale(_ name: String) -> Bool {
        guard let builder else { return false }
        let now = builder.sourceFingerprint(name)
        guard !now.isEmpty else { return false }
        return (try? String(contentsOfFile: fingerprintPath(name), encoding: .utf8)) != now
    }

    func build(_ name: String) async {
        if let running = builds[name] {
            await running.value
            return
        }
        guard let builder else { return }
        let store = self.store
        let task = Task<Void, Never> {
            // Builds read and compress whole package trees: a thread of their own keeps them
            // off the cooperative pool.
            let fingerprint = builder.sourceFingerprint(name)
            let fingerprintPath = self.fingerprintPath(name)
            let error: String? = await ContainerLauncher.onDedicatedThread {
                do {
                    _ = try builder.build(name, into: store)
                    try? FileManager.default.createDirectory(atPath: (fingerprintPath as NSString).deletingLastPathComponent,
                                                             withIntermediateDirectories: true)
                    try? fingerprint.write(toFile: fingerprintPath, atomically: true, encoding: .utf8)
                    return nil
                } catch {
                    return "\(error)"
                }
            }
            self.finishBuild(name, error: error)
        }
        builds[name] = task
        await task.value
    }

    func finishBuild(_ name: String, error: String?) {
        buildErrors[name] = error
        builds[name] = nil
    }
}
