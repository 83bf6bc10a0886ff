@testable import atrium
import AtriumCrypto
import AtriumMail
import Testing

/// `atrium serve`'s settings: defaults, flags over variables, and a clear error for every bad
/// value, naming the variable and the form it takes.
@Suite struct SettingsTests {
    static func resolve(_ environment: [String: String], arguments: [String] = []) throws -> Settings {
        try Settings.resolve(database: try DatabaseOptions.parse(arguments), environment: environment)
    }

    @Test func defaults() throws {
        let settings = try Self.resolve([:])
        #expect(settings.databaseURL == nil)
        #expect(settings.dataDirectory == ".atrium")
        #expect(settings.maxConnections == 8)
        #expect(settings.server.port == 8080)
        #expect(settings.server.host == "127.0.0.1")
        #expect(settings.server.accessLog)
        #expect(settings.migrateOnStart)
        #expect(settings.passwordParameters == .recommended)
        #expect(settings.logLevel == .info)
        #expect(!settings.jsonLogs)
        #expect(settings.server.limits.requestTimeout == .seconds(30))
    }

    @Test func flagsWinOverVariablesAndEmptyVariablesAreUnset() throws {
        let settings = try Self.resolve(
            ["ATRIUM_DB_MAX_CONNECTIONS": "3", "ATRIUM_DATA_DIR": "", "ATRIUM_LOG_LEVEL": "DEBUG", "ATRIUM_LOG_FORMAT": "json"],
            arguments: ["--db-max-connections", "5"]
        )
        #expect(settings.maxConnections == 5)
        #expect(settings.dataDirectory == ".atrium")
        #expect(settings.logLevel == .debug)
        #expect(settings.jsonLogs)
    }

    @Test(arguments: [("1", true), ("true", true), ("YES", true), ("on", true), ("0", false), ("false", false), ("No", false), ("off", false)])
    func oneBooleanGrammar(text: String, value: Bool) throws {
        let settings = try Self.resolve(["ATRIUM_ACCESS_LOG": text, "ATRIUM_NO_MIGRATE": text, "ATRIUM_CORS_CREDENTIALS": text])
        #expect(settings.server.accessLog == value)
        #expect(settings.migrateOnStart == !value)
        #expect(settings.server.cors.allowCredentials == value)
    }

    @Test func scryptParameters() throws {
        #expect(try Self.resolve(["ATRIUM_PASSWORD_SCRYPT": "p=2,ln=12,r=4"]).passwordParameters == Scrypt.Parameters(logN: 12, r: 4, p: 2))
        #expect(Scrypt.Parameters(phc: "ln=17,r=8,p=1") == .recommended)
        for bad in ["ln=17,r=8", "ln=17,r=8,p=1,x=2", "ln=17,ln=16,r=8", "ln=25,r=8,p=1", "ln=17,r=8,p=x", "ln=17;r=8;p=1", ""] {
            #expect(Scrypt.Parameters(phc: bad) == nil, "\(bad)")
        }
    }

    @Test(arguments: [
        ("ATRIUM_ACCESS_LOG", "maybe", "1, true, yes or on, or 0, false, no or off"),
        ("ATRIUM_PORT", "80a", "a whole number from 0 to 65535"),
        ("ATRIUM_PORT", "70000", "a whole number from 0 to 65535"),
        ("ATRIUM_REQUEST_TIMEOUT", "0", "a number of seconds"),
        ("ATRIUM_REQUEST_TIMEOUT", "soon", "a number of seconds"),
        ("ATRIUM_RATE_LIMIT_TENANT", "-1", "a number from 0 to 1000000"),
        ("ATRIUM_LOG_LEVEL", "loud", "one of trace, debug, info, notice, warning, error, critical"),
        ("ATRIUM_LOG_FORMAT", "xml", "one of text, json"),
        ("ATRIUM_METRICS", "maybe", "on, off or a port number"),
        ("ATRIUM_METRICS", "0", "on, off or a port number"),
        ("ATRIUM_PASSWORD_SCRYPT", "ln=99,r=8,p=1", "ln=17,r=8,p=1"),
        ("ATRIUM_CORS_ORIGINS", "app.example.com", "origins like https://app.example.com"),
        ("ATRIUM_APP_URL", "app.example.com", "the app's address"),
        ("ATRIUM_APP_RESET_PASSWORD_PATH", "reset#x", "a path starting with /"),
        ("ATRIUM_MAIL_RETRY_SCHEDULE", "soon", "comma-separated seconds"),
        ("ATRIUM_MAIL_FROM", "nobody", "an address, or a name and an address"),
    ])
    func badValuesNameTheVariableAndTheForm(variable: String, value: String, form: String) {
        do {
            _ = try Self.resolve([variable: value])
            Issue.record("\(variable)=\(value) was accepted")
        } catch {
            let message = String(describing: error)
            #expect(message.contains(variable), "\(message)")
            #expect(message.contains(form), "\(message)")
            #expect(message.contains(value), "\(message)")
        }
    }

    @Test func metricsExposure() throws {
        #expect(try Self.resolve(["ATRIUM_METRICS": "off"]).server.metrics == .off)
        #expect(try Self.resolve(["ATRIUM_METRICS": "9100"]).server.metrics == .port(9100))
        #expect(try Self.resolve(["ATRIUM_METRICS": "ON"]).server.metrics == .sameServer)
    }

    @Test func mailGoesToFilesUnlessAnSMTPServerIsNamed() throws {
        let defaults = try Self.resolve([:])
        guard case .directory(let path) = defaults.mail.transport else { Issue.record("no SMTP server, yet not files"); return }
        #expect(path == ".atrium/mail")
        #expect(defaults.mail.from.address == "no-reply@localhost")
        #expect(defaults.accountMail.appURL == "http://localhost:3000")

        let smtp = try Self.resolve([
            "ATRIUM_SMTP_URL": "smtps://u:p@mail.example.com", "ATRIUM_MAIL_FROM": "Example <no-reply@example.com>",
            "ATRIUM_APP_URL": "https://app.example.com", "ATRIUM_APP_CONFIRM_EMAIL_PATH": "/account/confirm",
        ])
        guard case .smtp(let configuration) = smtp.mail.transport else { Issue.record("the SMTP server was ignored"); return }
        #expect(configuration.host == "mail.example.com" && configuration.port == 465 && configuration.security == .implicitTLS)
        #expect(smtp.mail.from == MailAddress(parsing: "Example <no-reply@example.com>"))
        #expect(smtp.accountMail.changeEmailPath == "/account/confirm")
    }

    @Test(arguments: [
        (["ATRIUM_SMTP_URL": "smtp://mail.example.com"], "ATRIUM_MAIL_FROM"),
        (["ATRIUM_SMTP_URL": "ftp://mail.example.com", "ATRIUM_MAIL_FROM": "a@example.com"], "ATRIUM_SMTP_URL"),
        (["ATRIUM_SMTP_URL": "smtp://u:p@mail.example.com?tls=none", "ATRIUM_MAIL_FROM": "a@example.com"], "in the clear"),
    ])
    func badMailSettingsSayWhatIsWrong(environment: [String: String], expected: String) {
        do {
            _ = try Self.resolve(environment)
            Issue.record("\(environment) was accepted")
        } catch {
            #expect(String(describing: error).contains(expected), "\(error)")
        }
    }
}

/// A transaction pooler in front of PostgreSQL (`ATRIUM_DATABASE_POOLER=transaction`).
@Suite struct PoolerSettingsTests {
    @Test func transactionPoolingNeedsADirectURLForListenAndMigrations() throws {
        let pooled = ["DATABASE_URL": "postgresql://atrium_app@bouncer:6432/atrium", "ATRIUM_DATABASE_POOLER": "transaction"]
        #expect(throws: SettingsError.self) { try SettingsTests.resolve(pooled) }
        var direct = pooled
        direct["ATRIUM_LISTEN_DATABASE_URL"] = "postgresql://atrium_app@db:5432/atrium"
        let settings = try SettingsTests.resolve(direct)
        #expect(settings.transactionPooling)
        #expect(settings.listenDatabaseURL == "postgresql://atrium_app@db:5432/atrium")
        // Migrations hold a session-level lock, so they go straight to PostgreSQL too.
        #expect(settings.migrationDatabaseURL == "postgresql://atrium_app@db:5432/atrium")
        direct["ATRIUM_MIGRATION_DATABASE_URL"] = "postgresql://atrium_owner@db:5432/atrium"
        #expect(try SettingsTests.resolve(direct).migrationDatabaseURL == "postgresql://atrium_owner@db:5432/atrium")
        #expect(throws: SettingsError.self) { try SettingsTests.resolve(["ATRIUM_DATABASE_POOLER": "session"]) }
        #expect(try !SettingsTests.resolve([:]).transactionPooling)
    }
}

/// Read replicas (`ATRIUM_READ_DATABASE_URL`).
@Suite struct ReadReplicaSettingsTests {
    @Test func replicasAreURLsSeparatedBySpacesBesideYourOwnPrimary() throws {
        let primary = "postgresql://atrium_app@db/atrium"
        let settings = try SettingsTests.resolve([
            "DATABASE_URL": primary, "ATRIUM_READ_DATABASE_URL": " postgresql://atrium_app@r1/atrium  postgres://atrium_app@r2/atrium ", "ATRIUM_READ_MAX_LAG": "2.5",
        ])
        #expect(settings.readDatabaseURLs == ["postgresql://atrium_app@r1/atrium", "postgres://atrium_app@r2/atrium"])
        #expect(settings.maxReplicaLag == .milliseconds(2500))
        #expect(try SettingsTests.resolve(["DATABASE_URL": primary]).readDatabaseURLs.isEmpty)
        #expect(try SettingsTests.resolve(["DATABASE_URL": primary]).maxReplicaLag == .seconds(5))
        // Key=value strings have spaces of their own; replicas of the embedded cluster do not exist.
        #expect(throws: SettingsError.self) { try SettingsTests.resolve(["DATABASE_URL": primary, "ATRIUM_READ_DATABASE_URL": "host=r1 dbname=atrium"]) }
        #expect(throws: SettingsError.self) { try SettingsTests.resolve(["ATRIUM_READ_DATABASE_URL": "postgresql://r1/atrium"]) }
        #expect(throws: SettingsError.self) { try SettingsTests.resolve(["DATABASE_URL": primary, "ATRIUM_READ_MAX_LAG": "0"]) }
    }
}

/// How transactions name their tenant (`ATRIUM_TENANT_SCOPING`): chosen at start by default.
@Suite struct TenantScopingSettingsTests {
    @Test func automaticUnlessFixedAndNothingElse() throws {
        #expect(try SettingsTests.resolve([:]).tenantScoping == .automatic)
        #expect(try SettingsTests.resolve(["ATRIUM_TENANT_SCOPING": "set_local"]).tenantScoping == .fixed(.setLocal))
        #expect(try SettingsTests.resolve(["ATRIUM_TENANT_SCOPING": "set_config"]).tenantScoping == .fixed(.setConfig))
        #expect(try SettingsTests.resolve(["ATRIUM_TENANT_SCOPING": "auto"]).tenantScoping == .automatic)
        do {
            _ = try SettingsTests.resolve(["ATRIUM_TENANT_SCOPING": "citus"])
            Issue.record("an unknown scoping was accepted")
        } catch {
            #expect(String(describing: error).contains("ATRIUM_TENANT_SCOPING must be auto, set_config or set_local"), "\(error)")
        }
    }
}
