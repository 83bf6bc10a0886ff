import Foundation
import PackagePlugin

/// Compiles the SQL files in the package's top-level `sql/` directory into the target, so the
/// installed `atrium` binary carries its migrations and needs no source tree to find them; and
/// those of `sql/citus/`, which `atrium migrate` runs only on a Citus coordinator.
@main
struct EmbedMigrations: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let directory = context.package.directoryURL.appending(path: "sql")
        let files = try Self.sqlFiles(in: directory)
        let citus = try Self.sqlFiles(in: directory.appending(path: "citus"))
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedMigrations.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(files.count) SQL migrations and \(citus.count) Citus scripts",
                executable: try context.tool(named: "embed-migrations").url,
                arguments: [output.path] + files.map(\.path) + ["--citus"] + citus.map(\.path),
                inputFiles: files + citus,
                outputFiles: [output]
            ),
        ]
    }

    static func sqlFiles(in directory: URL) throws -> [URL] {
        try FileManager.default
            .contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }
}
