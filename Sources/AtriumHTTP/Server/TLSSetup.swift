import AtriumCrypto
import Dispatch
import Foundation
public import Logging
import NIOCore
public import NIOSSL
public import ServiceLifecycle
import Synchronization

/// The server's TLS: Mozilla's "intermediate" profile (TLS 1.2 and 1.3; for 1.2 only ECDHE key
/// exchange with AEAD ciphers), h2 and http/1.1 by ALPN, and a certificate that can be replaced
/// while serving: every handshake takes the current one from `CertificateStore`, so `SIGHUP`
/// re-reads the files and new connections get the new certificate without dropping old ones.
public final class TLSSetup: Sendable {
    public let store: CertificateStore
    public let configuration: TLSConfiguration
    /// SHA-256 of the leaf certificate, as `AB:CD:…`.
    public var fingerprint: String { self.store.fingerprint }

    /// TLS 1.2 suites of the intermediate profile; TLS 1.3 suites are all AEAD already.
    static let tls12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    public init(_ settings: TLSSettings) throws {
        let store: CertificateStore
        switch settings.source {
        case .files(let certificate, let key):
            store = try CertificateStore(certificatePath: certificate, keyPath: key)
        case .selfSigned:
            store = try CertificateStore(selfSigned: ())
        }
        let (chain, key) = store.current
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv13
        configuration.cipherSuites = Self.tls12Ciphers
        configuration.sslContextCallback = { _, promise in
            let (chain, key) = store.current
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = chain
            override.privateKey = key
            promise.succeed(override)
        }
        self.store = store
        self.configuration = configuration
    }
}

public enum TLSSetupError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot use \(path): \(reason)"
        }
    }
}

/// The certificate chain and key handed to each new TLS handshake.
public final class CertificateStore: Sendable {
    typealias Material = (chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource)
    private let state: Mutex<(chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource, fingerprint: String)>
    let certificatePath: String?
    let keyPath: String?

    init(certificatePath: String, keyPath: String) throws {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        let loaded = try Self.load(certificatePath: certificatePath, keyPath: keyPath)
        self.state = Mutex(loaded)
    }

    init(selfSigned: Void) throws {
        let made = try SelfSignedCertificate.make()
        let certificates = try NIOSSLCertificate.fromPEMBytes(Array(made.certificatePEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(made.keyPEM.utf8), format: .pem)
        self.certificatePath = nil
        self.keyPath = nil
        self.state = Mutex((certificates.map { .certificate($0) }, .privateKey(key), made.fingerprint))
    }

    var current: Material {
        self.state.withLock { ($0.chain, $0.key) }
    }

    public var fingerprint: String {
        self.state.withLock { $0.fingerprint }
    }

    /// Re-reads the files; on any problem the certificate in use stays and the error is thrown.
    public func reload() throws {
        guard let certificatePath, let keyPath else { return }
        let loaded = try Self.load(certificatePath: certificatePath, keyPath: keyPath)
        self.state.withLock { $0 = loaded }
    }

    private static func load(certificatePath: String, keyPath: String) throws -> (chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource, fingerprint: String) {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw TLSSetupError.unreadable(path: certificatePath, reason: "not a PEM certificate chain (\(error))")
        }
        guard let leaf = certificates.first else {
            throw TLSSetupError.unreadable(path: certificatePath, reason: "no certificate in the file")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw TLSSetupError.unreadable(path: keyPath, reason: "not a PEM private key (\(error))")
        }
        do {
            // Building a context checks that the key belongs to the certificate.
            _ = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: certificates.map { .certificate($0) }, privateKey: .privateKey(key)))
        } catch {
            throw TLSSetupError.unreadable(path: keyPath, reason: "the key does not belong to the certificate in \(certificatePath) (\(error))")
        }
        let der = try leaf.toDERBytes()
        return (certificates.map { .certificate($0) }, .privateKey(key), SelfSignedCertificate.fingerprint(SHA256.hash(der)))
    }
}

/// Re-reads the certificate files on SIGHUP until shutdown.
public struct CertificateReloader: Service {
    let store: CertificateStore
    let logger: Logger

    public init(store: CertificateStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    public func run() async throws {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        let store = self.store
        let logger = self.logger
        source.setEventHandler {
            do {
                try store.reload()
                logger.notice("TLS certificate reloaded", metadata: ["fingerprint": "\(store.fingerprint)"])
            } catch {
                logger.error("TLS certificate reload failed; keeping the current one", metadata: ["error": "\(error)"])
            }
        }
        source.resume()
        try? await gracefulShutdown()
        source.cancel()
    }
}
