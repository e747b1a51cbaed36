import Foundation
import GRDB
import Logging

/// The embedded default `KVStore`: one SQLite file (WAL mode) holding every key, its value and
/// revisions, plus the store revision.
///
/// All keys are loaded into memory at open and reads are served from there; SQLite only ever
/// sees writes, grouped so that concurrent writers share one commit (see `StoreEngine`).
/// A write returns once its transaction is committed with the chosen `Synchronous` level.
///
/// The file is opened with SQLite's exclusive locking mode, so a second process (a second
/// labnode on the same data dir) fails at open instead of silently diverging from this one.
/// The `sqlite3` shell cannot read the file while the store is open, for the same reason.
///
/// Watch history is in memory only: after a reopen, watches can start at the reopened
/// revision or later (`oldestWatchableRevision` equals `revision` right after open).
public final class SQLiteStore: KVStore, EngineBackedStore, ImmediateReading {
    /// How hard a commit pushes data to the disk (SQLite's `PRAGMA synchronous`).
    public enum Synchronous: String, Sendable {
        /// Every commit fsyncs the write-ahead log: a returned write survives the process
        /// being killed and the machine losing power.
        case full = "FULL"
        /// Commits only reach the OS page cache; the log is fsynced at checkpoints. A returned
        /// write survives `kill -9` of the process but may be lost if the machine loses power.
        case normal = "NORMAL"
    }

    /// Where the database file is.
    public let path: String
    let engine: StoreEngine
    /// Internal so that tests can check how the file was configured.
    let backend: SQLiteBackend

    /// Opens the database at `path`, creating it (and its directory) when missing, with
    /// `synchronous = FULL` and default options.
    public convenience init(path: String) throws(StoreError) {
        try self.init(path: path, options: StoreOptions(), synchronous: .full)
    }

    /// Opens the database at `path`, creating it (and its directory) when missing.
    public init(path: String, options: StoreOptions, synchronous: Synchronous = .full) throws(StoreError) {
        let logger = Logger(label: "labnode.store")
        let backend = try SQLiteBackend(path: path, synchronous: synchronous)
        let contents: SQLiteBackend.Contents
        do {
            contents = try backend.load()
        } catch {
            try? backend.close()
            throw error
        }
        self.path = path
        self.backend = backend
        self.engine = StoreEngine(
            contents: contents.values, revision: contents.revision, backend: backend,
            options: options, logger: logger)
        logger.info("store opened", metadata: [
            "path": "\(path)", "keys": "\(contents.values.count)", "revision": "\(contents.revision)",
            "synchronous": "\(synchronous.rawValue)",
        ])
    }
}

/// The SQLite side of `SQLiteStore`: the schema, the load at open and the batch commit.
final class SQLiteBackend: StoreBackend {
    struct Contents {
        var values: [KeyValue]
        var revision: Int64
    }

    /// Bumped when the tables change shape; a file from a newer labnode is refused.
    static let schemaVersion = 1

    private let database: DatabaseQueue
    private let path: String

    init(path: String, synchronous: SQLiteStore.Synchronous) throws(StoreError) {
        self.path = path
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .backend(operation: "create directory \(directory)", reason: "\(error)")
        }
        // WAL is set up by hand in `configure`: GRDB's `journalMode = .wal` would also force
        // `synchronous = NORMAL`, silently weakening the durability chosen here.
        var configuration = Configuration()
        configuration.label = "labnode.store"
        do {
            database = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw .backend(operation: "open \(path)", reason: Self.explain(error))
        }
        do {
            try configure(synchronous: synchronous)
        } catch {
            try? database.close()
            throw error
        }
    }

    private func configure(synchronous: SQLiteStore.Synchronous) throws(StoreError) {
        let version: Int
        do {
            version = try database.inDatabase { db in
                // Exclusive first, so WAL never sets up the shared-memory index other processes
                // would use, and the exclusive transaction below keeps the file locked.
                try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE")
                let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                guard mode?.lowercased() == "wal" else {
                    throw SQLiteSetupError(reason: "journal_mode is \(mode ?? "unknown"), WAL was refused")
                }
                try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue)")
                try db.execute(sql: "BEGIN EXCLUSIVE")
                try db.execute(sql: "COMMIT")
                return try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
            }
        } catch {
            throw .backend(operation: "open \(path)", reason: Self.explain(error))
        }
        switch version {
        case 0:
            do {
                try database.inTransaction { db in
                    try db.execute(sql: """
                        CREATE TABLE kv (
                            key TEXT PRIMARY KEY NOT NULL,
                            value BLOB NOT NULL,
                            create_rev INTEGER NOT NULL,
                            mod_rev INTEGER NOT NULL
                        );
                        CREATE TABLE meta (
                            name TEXT PRIMARY KEY NOT NULL,
                            value INTEGER NOT NULL
                        ) WITHOUT ROWID;
                        INSERT INTO meta (name, value) VALUES ('revision', 0);
                        PRAGMA user_version = \(Self.schemaVersion);
                        """)
                    return .commit
                }
            } catch {
                throw .backend(operation: "create the schema in \(path)", reason: "\(error)")
            }
        case Self.schemaVersion:
            break
        default:
            throw .backend(
                operation: "open \(path)",
                reason: "schema version \(version) is newer than this labnode understands (\(Self.schemaVersion))")
        }
    }

    /// The value of `PRAGMA name`, for tests.
    func pragma(_ name: String) throws -> String? {
        try database.inDatabase { db in
            try String.fetchOne(db, sql: "PRAGMA \(name)")
        }
    }

    /// The error's text, leading with the likely cause when SQLite says the file is locked:
    /// the exclusive lock of another open store.
    private static func explain(_ error: any Error) -> String {
        if let error = error as? DatabaseError, error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            return "the database is in use by another process, probably another labnode (\(error))"
        }
        return "\(error)"
    }

    func load() throws(StoreError) -> Contents {
        do {
            return try database.inDatabase { db in
                var values: [KeyValue] = []
                var newest: Int64 = 0
                let rows = try Row.fetchCursor(db, sql: "SELECT key, value, create_rev, mod_rev FROM kv ORDER BY key")
                while let row = try rows.next() {
                    let kv = KeyValue(
                        key: try row.decode(String.self, atIndex: 0),
                        // A zero-length blob reads back as no data at all.
                        value: try row.withUnsafeData(atIndex: 1) { data in data.map { [UInt8]($0) } ?? [] },
                        createRevision: try row.decode(Int64.self, atIndex: 2),
                        modRevision: try row.decode(Int64.self, atIndex: 3))
                    newest = max(newest, kv.modRevision)
                    values.append(kv)
                }
                let stored = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'revision'") ?? 0
                // Deletes leave no row behind, so the meta row is the authority; a key newer
                // than it would mean a damaged file, and going backwards would reuse revisions.
                return Contents(values: values, revision: max(stored, newest))
            }
        } catch {
            throw .backend(operation: "load \(path)", reason: "\(error)")
        }
    }

    func commit(_ mutations: [Mutation], revision: Int64) throws(StoreError) {
        do {
            try database.inTransaction(.immediate) { db in
                // coalesce: GRDB binds an empty Data as NULL, which NOT NULL would refuse.
                let put = try db.cachedStatement(sql: """
                    INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?, coalesce(?, x''), ?, ?)
                    ON CONFLICT (key) DO UPDATE
                    SET value = excluded.value, create_rev = excluded.create_rev, mod_rev = excluded.mod_rev
                    """)
                let delete = try db.cachedStatement(sql: "DELETE FROM kv WHERE key = ?")
                for mutation in mutations {
                    switch mutation {
                    case .put(let kv):
                        try put.execute(arguments: [kv.key, Data(kv.value), kv.createRevision, kv.modRevision])
                    case .delete(let key):
                        try delete.execute(arguments: [key])
                    }
                }
                try db.execute(sql: "UPDATE meta SET value = ? WHERE name = 'revision'", arguments: [revision])
                return .commit
            }
        } catch {
            throw .backend(operation: "commit \(mutations.count) writes up to revision \(revision) to \(path)", reason: "\(error)")
        }
    }

    func close() throws(StoreError) {
        do {
            try database.close()
        } catch {
            throw .backend(operation: "close \(path)", reason: "\(error)")
        }
    }
}

private struct SQLiteSetupError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
