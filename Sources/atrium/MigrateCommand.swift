import ArgumentParser
import AtriumCore
import Logging

/// `atrium migrate`: applies pending migrations and exits.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending database migrations and exit."
    )

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let settings = try Settings.resolve(database: self.database)
        let logger = LogSetup.bootstrap(settings)
        let endpoint = try await DatabaseEndpoint.open(settings, logger: logger)
        do {
            try await endpoint.migrate(logger: logger)
        } catch {
            await endpoint.close()
            throw error
        }
        await endpoint.close()
    }
}
