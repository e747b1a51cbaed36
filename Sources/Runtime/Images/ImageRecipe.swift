import Foundation

/// A recipe: how to assemble a single-layer image from files installed on this machine.
/// Stored as `images/<name>/recipe.json`; the format is documented in `images/README.md`.
public struct ImageRecipe: Codable, Sendable, Equatable {
    /// Copy a host file or directory into the image.
    public struct Copy: Codable, Sendable, Equatable {
        /// Host path; may use `${variable}` (the builder supplies `${labnode}`).
        public var from: String
        /// Path in the image; defaults to `from`.
        public var to: String?
        /// Also copy the dynamic loader and every shared library the ELF file(s) need.
        public var libraries: Bool?
        /// Copy an ELF file without its debug sections (`strip --strip-debug`; symbols stay for
        /// backtraces). The labnode binary shrinks from ~136 MB to ~50 MB, and its image builds
        /// three times faster on the first `labnode up`.
        public var stripDebug: Bool?
        /// Octal permission bits ("0755"); defaults to the host file's.
        public var mode: String?
        public var uid: Int?
        public var gid: Int?
    }

    /// Run a host command whose output lines are image paths, and make each a symlink to
    /// `target` (how busybox's applet links are made from `busybox --list-full`).
    public struct LinksFromCommand: Codable, Sendable, Equatable {
        public var command: [String]
        public var target: String
    }

    public struct Directory: Codable, Sendable, Equatable {
        public var path: String
        /// Octal, default "0755"; "1777" for /tmp.
        public var mode: String?
        public var uid: Int?
        public var gid: Int?
    }

    public struct Symlink: Codable, Sendable, Equatable {
        public var path: String
        public var target: String
    }

    /// A file written from the recipe itself: `content` inline, or `source`, a path relative
    /// to the recipe's folder (for longer files such as nginx.conf).
    public struct File: Codable, Sendable, Equatable {
        public var path: String
        public var content: String?
        public var source: String?
        /// Octal, default "0644".
        public var mode: String?
        public var uid: Int?
        public var gid: Int?
    }

    /// The reference to tag the image with; defaults to `<folder name>:latest`.
    public var reference: String?
    /// One line on what the image is for.
    public var description: String?
    public var copy: [Copy]?
    public var linksFromCommand: [LinksFromCommand]?
    public var directories: [Directory]?
    public var symlinks: [Symlink]?
    public var files: [File]?
    /// Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts, Labels, StopSignal, with the
    /// capitalised keys of an image config ("Cmd": ["sh"]).
    public var config: ImageConfig?

    public init(
        reference: String? = nil, description: String? = nil, copy: [Copy]? = nil,
        linksFromCommand: [LinksFromCommand]? = nil, directories: [Directory]? = nil, symlinks: [Symlink]? = nil,
        files: [File]? = nil, config: ImageConfig? = nil
    ) {
        self.reference = reference
        self.description = description
        self.copy = copy
        self.linksFromCommand = linksFromCommand
        self.directories = directories
        self.symlinks = symlinks
        self.files = files
        self.config = config
    }

    /// Parses `recipe.json` text; errors name the file.
    public static func decode(_ data: Data, file: String) throws -> ImageRecipe {
        do {
            return try JSONDecoder().decode(ImageRecipe.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw ImageError(.recipe, "\(file): missing \"\(key.stringValue)\" at \(Self.location(context))")
        } catch let DecodingError.typeMismatch(type, context) {
            throw ImageError(.recipe, "\(file): expected \(type) at \(Self.location(context))")
        } catch {
            throw ImageError(.recipe, "\(file) is not a valid recipe: \(error)")
        }
    }

    private static func location(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return path.isEmpty ? "the top level" : path
    }

    /// Parses an octal mode string ("0755", "1777", "644").
    static func mode(_ text: String?, default fallback: UInt32, field: String) throws -> UInt32 {
        guard let text else { return fallback }
        guard let value = UInt32(text, radix: 8), value <= 0o7777 else {
            throw ImageError(.recipe, "\(field): mode \"\(text)\" is not an octal permission like \"0755\"")
        }
        return value
    }
}
