import Foundation
import Git

/// The outcome of a git check, as `repave git-check --report` writes it and as `run` reads it
/// when the data lives where Repave does not run.
public struct GitReport: Sendable, Codable {
    public var apiVersion = "repave/v1"
    public var kind = "GitReport"
    public var createdAt: String
    public var host: String
    public var toolVersion: String
    public var paths: [String]
    public var rules: [String]
    public var ignore: [String]
    /// `namespace/claim` the check was made for, when given.
    public var claim: String?
    /// False when repositories owned by other users were inspected anyway (--allow-other-owners).
    public var ownerValidation: Bool
    public var passed: Bool
    public var repositories: [RepositoryReport]
    public var unreadable: [UnreadablePath]
    public var inventory: Inventory

    public struct RepositoryReport: Sendable, Codable {
        public var path: String
        public var kind: String
        /// The superproject (for submodules) or the repository whose untracked or ignored
        /// directory holds this one.
        public var parent: String?
        /// `main`, `detached at 1a2b3c4d5e6f`, `unborn main`, `bare`.
        public var head: String
        public var passed: Bool
        /// One line per failing rule's finding, or why the repository could not be inspected.
        public var reasons: [String]
        public var facts: RepositoryFacts?
    }

    public struct UnreadablePath: Sendable, Codable {
        public var path: String
        public var reason: String
    }

    /// What is in no repository (or ignored inside one): what recreating the claim loses.
    public struct Inventory: Sendable, Codable {
        public struct Entry: Sendable, Codable {
            public var path: String
            public var bytes: Int64
            public var files: Int
            /// `outside-repositories`, `ignored-in-repository` (by .gitignore), `excluded-by-glob`.
            public var kind: String
            public var complete: Bool
        }

        public var entries: [Entry]
        public var totalBytes: Int64
        /// False when the time budget ran out: sizes are then lower bounds.
        public var complete: Bool
        public var budgetSeconds: Int
    }
}
