import Logging
import Synchronization

/// Bootstraps swift-log exactly once per process, to stderr. Later calls only change the level:
/// `LoggingSystem.bootstrap` traps when called twice.
enum LoggingBootstrap {
    private static let level = Mutex<Logger.Level>(.notice)
    private static let once: Void = LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = LoggingBootstrap.level.withLock { $0 }
        return handler
    }

    static func configure(level newLevel: Logger.Level) {
        level.withLock { $0 = newLevel }
        _ = once
    }
}
