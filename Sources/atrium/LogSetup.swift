import Logging

/// Process-wide logging, configured once from the settings.
enum LogSetup {
    static func bootstrap(_ settings: Settings) -> Logger {
        let level = settings.logLevel
        if settings.jsonLogs {
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        } else {
            LoggingSystem.bootstrap { label in
                var handler = TextLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
        return Logger(label: "atrium")
    }
}
