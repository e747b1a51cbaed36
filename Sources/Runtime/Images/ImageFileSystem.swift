import Foundation

/// Small file-system helpers with errors that name the path and the errno text.
/// POSIX calls are used where Foundation hides errno or follows symlinks we must not follow.
enum ImageFileSystem {
    /// The parent directory of a path ("/" for "/x", and for a bare name).
    static func parent(of path: String) -> String {
        let parent = (path as NSString).deletingLastPathComponent
        return parent.isEmpty ? "/" : parent
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// `mkdir -p` with `mode` for the directories it creates.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        if isDirectory(path) { return }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0, errno != EEXIST {
            throw ImageError.io("cannot create directory", path, errno: errno)
        }
    }

    static func read(_ path: String) throws -> Data {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ImageError.io("cannot open", path, errno: errno)
        }
        defer { try? handle.close() }
        do {
            return try handle.readToEnd() ?? Data()
        } catch {
            throw ImageError(.io, "cannot read \(path): \(error)")
        }
    }

    /// Writes through a temporary file in the same directory and renames it into place, so a
    /// reader (another labnode process) sees the old or the new file, never half of one.
    static func writeAtomically(_ data: Data, to path: String, mode: mode_t = 0o644) throws {
        let temporary = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ImageError.io("cannot create", temporary, errno: errno) }
        var failure: ImageError?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count, let base = raw.baseAddress {
                let written = write(fd, base + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = ImageError.io("cannot write", temporary, errno: errno)
                    return
                }
                offset += written
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = ImageError.io("cannot sync", temporary, errno: errno) }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = ImageError.io("cannot rename into", path, errno: errno) }
        if let failure {
            unlink(temporary)
            throw failure
        }
    }

    /// `rm -rf`, also through directories without write permission (layers may ship them).
    static func removeTree(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw ImageError.io("cannot inspect", path, errno: errno)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            if (info.st_mode & S_IRWXU) != S_IRWXU { chmod(path, 0o700) }
            for name in try entries(of: path) {
                try removeTree(path + "/" + name)
            }
            if rmdir(path) != 0, errno != ENOENT { throw ImageError.io("cannot remove", path, errno: errno) }
        } else if unlink(path) != 0, errno != ENOENT {
            throw ImageError.io("cannot remove", path, errno: errno)
        }
    }

    /// Names in a directory (without `.` and `..`), sorted bytewise for deterministic walks.
    static func entries(of directory: String) throws -> [String] {
        guard let stream = opendir(directory) else { throw ImageError.io("cannot list", directory, errno: errno) }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != ".", name != ".." { names.append(name) }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// The canonical absolute path, so libarchive's symlink guard sees no symlinks in the
    /// destination prefix (it would otherwise refuse to extract under, say, /var/run).
    static func realPath(_ path: String) throws -> String {
        guard let resolved = realpath(path, nil) else { throw ImageError.io("cannot resolve", path, errno: errno) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The target of a symlink.
    static func readLink(_ path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { throw ImageError.io("cannot read link", path, errno: errno) }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Holds an exclusive `flock` on `path` while `body` runs. flock works between processes
    /// (the CLI and the daemon) and between threads that open the file separately.
    static func withExclusiveLock<T>(_ path: String, _ body: () throws -> T) throws -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ImageError.io("cannot open lock file", path, errno: errno) }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR { throw ImageError.io("cannot lock", path, errno: errno) }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// A fresh directory under `parent` whose name starts with `prefix`.
    static func makeTemporaryDirectory(in parent: String, prefix: String) throws -> String {
        try makeDirectories(parent)
        var template = Array("\(parent)/\(prefix)XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            return mkdtemp(base) != nil
        }
        guard created else { throw ImageError.io("cannot create a temporary directory in", parent, errno: errno) }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
