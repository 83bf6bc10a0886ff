import ArgumentParser

/// The `atrium` command: runs the service and its maintenance tasks.
@main
struct Atrium: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atrium",
        abstract: "Atrium: a multi-tenant backend on PostgreSQL.",
        subcommands: [ServeCommand.self, MigrateCommand.self, KeygenCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
