public import AtriumCore
public import Logging
public import ServiceLifecycle
public import Synchronization

/// This server's share of the outbox: it leases due mails and sends them, as any number of
/// other servers do at the same time (migration 013).
///
/// Woken when a mail is written (NOTIFY `atrium_mail`) and every `pollInterval` (retries that
/// fall due); at most `connections` SMTP connections at once, each sending a batch of up to
/// `batch` mails. A mail written in a transaction that rolled back was never in the outbox; one
/// whose sender died mid-send is sent again when its lease runs out (at least once, with the
/// same Message-ID).
public final class MailDispatcher: Service, Sendable {
    let outbox: MailOutbox
    let sender: MailSender
    let logger: Logger
    let wakeups: AsyncStream<Void>
    let wakeup: AsyncStream<Void>.Continuation
    let connections: Int
    let batch: Int
    let pollInterval: Duration
    let busy = Atomic<Int>(0)
    public let sent = Atomic<Int>(0)
    public let failed = Atomic<Int>(0)

    public init(
        outbox: MailOutbox, transport: MailTransport, from: MailAddress, connections: Int = 2, batch: Int = 20,
        pollInterval: Duration = .seconds(5), logger: Logger
    ) throws {
        self.outbox = outbox
        self.sender = try MailSender(transport: transport, from: from, deadline: outbox.lease * 2 / 3, logger: logger)
        self.logger = logger
        self.connections = connections
        self.batch = batch
        self.pollInterval = pollInterval
        (self.wakeups, self.wakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// A mail may have been written: look now.
    public func wake() {
        self.wakeup.yield()
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled {
                    self.wake()
                    try? await Task.sleep(for: self.pollInterval)
                }
            }
            await withGracefulShutdownHandler {
                var lastPrune = ContinuousClock.now - .seconds(3600)
                for await _ in self.wakeups {
                    if ContinuousClock.now - lastPrune > .seconds(3600) {
                        lastPrune = .now
                        _ = try? await self.outbox.prune()
                    }
                    await self.claimAndSend(in: &group)
                }
            } onGracefulShutdown: {
                self.wakeup.finish()
            }
            // Sends in flight are abandoned: their leases run out and the mails go again.
            group.cancelAll()
        }
    }

    private func claimAndSend(in group: inout DiscardingTaskGroup) async {
        guard self.busy.load(ordering: .relaxed) < self.connections else { return }
        let claimed: [ClaimedMail]
        do {
            claimed = try await self.outbox.claim(limit: self.batch)
        } catch {
            self.logger.warning("could not claim mail from the outbox", metadata: ["error": "\(error)"])
            return
        }
        guard !claimed.isEmpty else { return }
        self.busy.add(1, ordering: .relaxed)
        group.addTask {
            defer {
                self.busy.subtract(1, ordering: .relaxed)
                // A full batch means more may be waiting.
                if claimed.count == self.batch { self.wake() }
            }
            let outcomes = await self.sender.send(claimed)
            guard !Task.isCancelled else { return }
            for outcome in outcomes {
                switch outcome.kind {
                case .sent: self.sent.add(1, ordering: .relaxed)
                case .transient, .permanent: self.failed.add(1, ordering: .relaxed)
                }
            }
            do {
                try await self.outbox.complete(zip(outcomes, claimed).map { ($0, $1.attempts) })
            } catch {
                self.logger.warning("could not record mail outcomes; they will be sent again", metadata: ["error": "\(error)"])
            }
        }
        if claimed.count == self.batch { self.wake() }
    }
}
