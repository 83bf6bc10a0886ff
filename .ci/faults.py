#!/usr/bin/env python3
"""Fault drills against the real `atrium serve` binary on its embedded PostgreSQL.

Webhook deliveries are checked with the `standardwebhooks` package from PyPI.

Each scenario starts from a fresh data directory, drives the server over HTTP from several
threads, does something bad to PostgreSQL or to Atrium, and checks what clients saw and what
the database kept. Every scenario is bounded in time and prints the figures it measured.

    .ci/faults [path-to-atrium] [scenario ...]
"""

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ATRIUM = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/atrium"
ONLY = sys.argv[2:]
REQUEST_TIMEOUT = 3.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `atrium serve` process on an embedded cluster in `data_dir`."""

    def __init__(self, data_dir, port=None, extra_env=None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.log_path = os.path.join(data_dir, "atrium.log")
        env = dict(os.environ)
        env.update({
            "ATRIUM_PORT": str(self.port), "ATRIUM_DATA_DIR": data_dir, "ATRIUM_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
            "ATRIUM_RATE_LIMIT_TENANT": "0", "ATRIUM_RATE_LIMIT_ADDRESS": "0", "ATRIUM_ACCESS_LOG": "off",
            "ATRIUM_PASSWORD_SCRYPT": "ln=10,r=8,p=1", "ATRIUM_STREAM_STALL_TIMEOUT": "5",
        })
        env.update(extra_env or {})
        self.env = env
        self.process = None

    def start(self, timeout=120):
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([ATRIUM, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("atrium exited during start:\n" + self.log())
            try:
                if request(self.port, "GET", "/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("atrium did not become ready:\n" + self.log())

    def log(self):
        with open(self.log_path) as f:
            return f.read()[-6000:]

    def postgres_pids(self):
        """The postmaster and its children (backends put themselves in sessions of their own)."""
        with open(os.path.join(self.data_dir, "postgres", "postmaster.pid")) as f:
            postmaster = int(f.readline())
        children = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == postmaster:
                children.append(int(entry))
        return postmaster, children

    def stop(self, sig=signal.SIGINT, timeout=60):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None


def request(port, method, path, body=None, token=None, headers=None, timeout=30):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=all_headers)
        response = connection.getresponse()
        payload = response.read()
        return response.status, dict(response.getheaders()), payload
    finally:
        connection.close()


def sign_up(port, name):
    status, _, body = request(port, "POST", "/v1/auth/signup", {
        "email": f"{name}-{random.randrange(1 << 30)}@example.com", "password": "correct horse battery", "tenant": {"name": name},
    })
    assert status == 201, body
    return json.loads(body)["tokens"]["accessToken"]


def create_items(port, token):
    status, _, body = request(port, "POST", "/v1/collections", {"name": "items", "fields": {"n": {"type": "integer"}, "pad": {"type": "text"}}}, token)
    assert status == 201, body


def tenant_with_items(server, name):
    """Signs up a tenant with an "items" collection; returns its access token."""
    token = sign_up(server.port, name)
    create_items(server.port, token)
    return token


def all_items(port, token):
    """Every record's n, by paging through the list."""
    values, cursor = [], None
    while True:
        path = "/v1/collections/items/records?limit=100&fields=n" + (f"&cursor={cursor}" if cursor else "")
        status, _, body = request(port, "GET", path, token=token)
        assert status == 200, body
        page = json.loads(body)
        values += [record["data"]["n"] for record in page["data"]]
        cursor = page["nextCursor"]
        if not cursor:
            return values


class Writers:
    """Threads that each create records with an Idempotency-Key, retrying the same key after
    a 503, a timeout or a broken connection until it is acknowledged — as a careful client does."""

    def __init__(self, server, token, threads=6):
        self.server, self.token, self.threads = server, token, threads
        self.lock = threading.Lock()
        self.acknowledged = set()
        self.statuses = {}
        self.unavailable_without_retry_after = 0
        self.connection_errors = 0
        self.stopping = threading.Event()
        self.next = 0
        self.workers = []

    def _key(self):
        with self.lock:
            self.next += 1
            return self.next

    def _run(self):
        while not self.stopping.is_set():
            n = self._key()
            key = f"write-{n}"
            while True:
                try:
                    status, headers, body = request(self.server.port, "POST", "/v1/collections/items/records", {"n": n}, self.token,
                                                    {"Idempotency-Key": key}, timeout=REQUEST_TIMEOUT + 5)
                except OSError:
                    with self.lock:
                        self.connection_errors += 1
                    time.sleep(0.2)
                    continue
                with self.lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 201:
                    with self.lock:
                        self.acknowledged.add(n)
                    break
                if status == 503:
                    retry = headers.get("Retry-After")
                    if retry is None:
                        with self.lock:
                            self.unavailable_without_retry_after += 1
                    time.sleep(min(float(retry or 1), 1.0))
                    continue
                raise AssertionError(f"write {n} got {status}: {body[:300]}")

    def start(self):
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for worker in self.workers:
            worker.start()

    def finish(self, timeout=120):
        self.stopping.set()
        for worker in self.workers:
            worker.join(timeout)
        assert not any(worker.is_alive() for worker in self.workers), "a writer never got its write acknowledged"

    def verify(self, port):
        stored = all_items(port, self.token)
        counts = {}
        for n in stored:
            counts[n] = counts.get(n, 0) + 1
        lost = sorted(n for n in self.acknowledged if counts.get(n, 0) == 0)
        doubled = sorted(n for n, count in counts.items() if count > 1)
        assert not lost, f"acknowledged writes lost: {lost[:20]}"
        assert not doubled, f"writes stored twice: {doubled[:20]}"
        assert self.unavailable_without_retry_after == 0, "a 503 came without Retry-After"
        assert 500 not in self.statuses, f"500s: {self.statuses}"
        return len(stored)


def wait_for(condition, timeout, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def metric(port, name):
    _, _, body = request(port, "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


# Scenarios -----------------------------------------------------------------------------------

def postgres_killed(data_dir):
    """kill -9 of PostgreSQL under concurrent writes with Idempotency-Key retries."""
    server = Server(data_dir)
    server.start()
    try:
        token = tenant_with_items(server, "writers")
        writers = Writers(server, token)
        writers.start()
        time.sleep(2)
        postmaster, _ = server.postgres_pids()
        killed = time.time()
        os.kill(postmaster, signal.SIGKILL)
        ready = wait_for(lambda: request(server.port, "GET", "/readyz", timeout=5)[0] == 200 and server.postgres_pids()[0] != postmaster, 60)
        back = time.time() - killed
        assert ready, "the embedded PostgreSQL did not come back:\n" + server.log()
        time.sleep(2)
        writers.finish()
        stored = writers.verify(server.port)
        restarts = metric(server.port, "atrium_embedded_postgres_restarts")
        assert restarts == 1, f"restarts {restarts}"
        return (f"{len(writers.acknowledged)} writes acknowledged, {stored} stored, none lost or doubled; "
                f"PostgreSQL back and ready {back:.1f} s after kill -9; responses {writers.statuses}, "
                f"{writers.connection_errors} connection errors retried")
    finally:
        server.stop()


def postgres_frozen(data_dir):
    """SIGSTOP of PostgreSQL for longer than the request timeout, then SIGCONT."""
    server = Server(data_dir)
    server.start()
    frozen = []
    try:
        token = tenant_with_items(server, "frozen")
        for n in range(20):
            assert request(server.port, "POST", "/v1/collections/items/records", {"n": n}, token)[0] == 201
        postmaster, children = server.postgres_pids()
        freeze = 8.0
        frozen = [postmaster] + children
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        frozen_at = time.time()
        durations, statuses, health = [], {}, []
        lock = threading.Lock()

        def reader():
            while time.time() - frozen_at < freeze - REQUEST_TIMEOUT - 1:
                started = time.time()
                try:
                    status = request(server.port, "GET", "/v1/collections/items/records?limit=5", token=token, timeout=30)[0]
                except OSError:
                    status = "error"
                with lock:
                    durations.append(time.time() - started)
                    statuses[status] = statuses.get(status, 0) + 1

        readers = [threading.Thread(target=reader) for _ in range(12)]
        for thread in readers:
            thread.start()
        while time.time() - frozen_at < freeze:
            started = time.time()
            assert request(server.port, "GET", "/healthz", timeout=10)[0] == 200
            health.append(time.time() - started)
            time.sleep(0.1)
        for pid in children + [postmaster]:
            os.kill(pid, signal.SIGCONT)
        thawed = time.time()
        for thread in readers:
            thread.join(60)
        recovered = wait_for(lambda: request(server.port, "GET", "/v1/collections/items/records?limit=5", token=token)[0] == 200, 30)
        recovery = time.time() - thawed
        assert recovered, "requests did not succeed again after SIGCONT:\n" + server.log()
        longest = max(durations)
        assert longest < REQUEST_TIMEOUT + 2, f"a request took {longest:.1f} s (request timeout {REQUEST_TIMEOUT} s)"
        assert max(health) < 1.0, f"/healthz took {max(health):.2f} s while PostgreSQL was frozen"
        assert set(statuses) <= {200, 503}, f"statuses {statuses}"
        return (f"frozen {freeze:.0f} s: {len(durations)} requests ended in at most {longest:.2f} s (timeout {REQUEST_TIMEOUT:.0f} s), "
                f"statuses {statuses}; /healthz at most {max(health) * 1000:.0f} ms over {len(health)} probes; "
                f"served again {recovery:.1f} s after SIGCONT")
    finally:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        server.stop()


def atrium_killed(data_dir):
    """kill -9 of Atrium under writes, and a restart on the same data directory."""
    server = Server(data_dir)
    server.start()
    token = tenant_with_items(server, "crash")
    writers = Writers(server, token)
    writers.start()
    time.sleep(2)
    server.process.kill()
    server.process.wait()
    killed = time.time()
    time.sleep(1)
    server.start()
    back = time.time() - killed
    try:
        time.sleep(2)
        writers.finish()
        stored = writers.verify(server.port)
        return (f"Atrium killed with kill -9 and restarted on the same data in {back:.1f} s (its orphaned PostgreSQL "
                f"stopped and started again): {len(writers.acknowledged)} writes acknowledged, {stored} stored, none lost or "
                f"doubled; responses {writers.statuses}, {writers.connection_errors} connection errors retried")
    finally:
        server.stop()


def pool_exhausted(data_dir):
    """Slow and stalled readers (exports included) from one tenant: every request ends, others are served."""
    server = Server(data_dir, extra_env={"ATRIUM_DB_MAX_CONNECTIONS": "4", "ATRIUM_DB_ACQUIRE_TIMEOUT": "2"})
    server.start()
    try:
        greedy = tenant_with_items(server, "greedy")
        quiet = tenant_with_items(server, "quiet")
        pad = "x" * 3000
        for batch in range(20):
            status, _, body = request(server.port, "POST", "/v1/collections/items/records/batch",
                                      {"records": [{"n": batch * 100 + i, "pad": pad} for i in range(100)]}, greedy)
            assert status == 201, body
        # Stalled clients: exports they never read, with a tiny receive window.
        stalled = []
        for _ in range(6):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", server.port))
            s.sendall(f"GET /v1/tenant/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {greedy}\r\n\r\n".encode())
            stalled.append(s)
        export_statuses = [s.recv(12).decode()[9:12] for s in stalled]
        statuses, durations, quiet_results = {}, [], []
        lock = threading.Lock()
        stop = time.time() + 8

        def slow_reader():
            while time.time() < stop:
                started = time.time()
                status = request(server.port, "GET", "/v1/collections/items/records?limit=100&count=exact&sort=n", token=greedy, timeout=30)[0]
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    durations.append(time.time() - started)

        threads = [threading.Thread(target=slow_reader) for _ in range(24)]
        for thread in threads:
            thread.start()
        while time.time() < stop:
            started = time.time()
            status = request(server.port, "GET", "/v1/collections/items/records?limit=5", token=quiet, timeout=30)[0]
            quiet_results.append((status, time.time() - started))
            time.sleep(0.05)
        for thread in threads:
            thread.join(60)
        for s in stalled:
            s.close()
        assert export_statuses.count("200") == 1 and export_statuses.count("429") == 5, export_statuses
        assert set(statuses) <= {200, 503}, f"statuses {statuses}"
        assert max(durations) < REQUEST_TIMEOUT + 2, f"a greedy request took {max(durations):.1f} s"
        failed_quiet = [r for r in quiet_results if r[0] != 200]
        assert not failed_quiet, f"the quiet tenant was refused: {failed_quiet[:5]}"
        quiet_times = sorted(t for _, t in quiet_results)
        greedy_times = sorted(durations)
        return (f"one stalled export admitted, five refused (429); 24 greedy readers: {len(durations)} requests, statuses {statuses}, "
                f"median {greedy_times[len(greedy_times) // 2] * 1000:.0f} ms, slowest {greedy_times[-1]:.2f} s; quiet tenant: "
                f"{len(quiet_times)} reads all 200, median {quiet_times[len(quiet_times) // 2] * 1000:.0f} ms, slowest {quiet_times[-1] * 1000:.0f} ms")
    finally:
        server.stop()


def terminated_under_load(data_dir):
    """SIGTERM while requests are in flight: they complete, PostgreSQL stops cleanly."""
    server = Server(data_dir)
    server.start()
    token = tenant_with_items(server, "drain")
    pad = "y" * 2000
    results, lock = [], threading.Lock()
    sent = threading.Barrier(17)

    def writer(index):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.connect()
        body = json.dumps({"records": [{"n": index * 100 + i, "pad": pad} for i in range(100)]}).encode()
        sent.wait()
        try:
            connection.request("POST", "/v1/collections/items/records/batch", body=body,
                               headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
            response = connection.getresponse()
            status = response.status
            if status != 201:
                status = f"{status} {response.read()[:200]!r}"
        except OSError as error:
            status = f"error {error}"
        with lock:
            results.append(status)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    sent.wait()
    time.sleep(0.05)
    started = time.time()
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(60)
    drained = time.time() - started
    for thread in threads:
        thread.join(30)
    log = server.log()
    assert code == 0, f"exit code {code}:\n{log}"
    assert all(status == 201 for status in results), f"in-flight requests: {results}\n{log}"
    assert "embedded PostgreSQL stopped" in log and "clean=true" in log, "PostgreSQL was not stopped cleanly:\n" + log
    return f"SIGTERM with 16 batch writes in flight: all {len(results)} answered 201, exit 0 after {drained:.1f} s, PostgreSQL stopped cleanly"


class EventReader:
    """Follows GET /v1/events like an EventSource: on a broken stream it reconnects with the
    last id it saw (Last-Event-ID), and notes every record.created it receives."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.created = []
        self.connections = 0
        self.last_id = None
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopped:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                headers = {"Authorization": "Bearer " + self.token}
                if self.last_id:
                    headers["Last-Event-ID"] = self.last_id
                connection.request("GET", "/v1/events", headers=headers)
                response = connection.getresponse()
                if response.status != 200:
                    response.read()
                    time.sleep(0.5)
                    continue
                self.connections += 1
                event = {}
                while not self.stopped:
                    line = response.fp.readline()
                    if not line:
                        break
                    line = line.decode().rstrip("\n")
                    if line == "":
                        if "id" in event:
                            self.last_id = event["id"]
                        if event.get("event") == "record.created":
                            self.created.append(json.loads(event["data"])["id"])
                        event = {}
                    elif not line.startswith(":") and ":" in line:
                        name, _, value = line.partition(":")
                        event[name] = value[1:] if value.startswith(" ") else value
            except OSError:
                time.sleep(0.5)
            finally:
                connection.close()

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopped = True


def events_across_postgres_restart(data_dir):
    """A subscriber follows the change feed while PostgreSQL is killed under writes."""
    server = Server(data_dir)
    server.start()
    try:
        token = tenant_with_items(server, "feed")
        reader = EventReader(server.port, token)
        reader.start()
        assert wait_for(lambda: reader.connections == 1, 10), "the event stream did not open:\n" + server.log()
        acknowledged = []

        def write(n):
            key = f"feed-{n}"
            while True:
                try:
                    status, _, body = request(server.port, "POST", "/v1/collections/items/records", {"n": n}, token,
                                              headers={"Idempotency-Key": key}, timeout=10)
                    if status == 201:
                        return json.loads(body)["id"]
                except OSError:
                    pass
                time.sleep(0.1)

        killed_at = None
        for n in range(200):
            if n == 60:
                postmaster, _ = server.postgres_pids()
                os.kill(postmaster, signal.SIGKILL)
                killed_at = time.time()
            acknowledged.append(write(n))
        assert killed_at is not None
        seen_all = wait_for(lambda: set(reader.created) >= set(acknowledged), 60)
        reader.stop()
        missing = len(set(acknowledged) - set(reader.created))
        repeated = len(reader.created) - len(set(reader.created))
        assert seen_all and missing == 0, f"{missing} acknowledged writes never arrived as events:\n" + server.log()
        assert repeated == 0, f"{repeated} events arrived twice"
        return (f"{len(acknowledged)} writes acknowledged around a kill -9 of PostgreSQL, every one received once "
                f"as an event over {reader.connections} connection(s), none twice")
    finally:
        server.stop()


class WebhookReceiver:
    """A local endpoint that checks every delivery's signature with the `standardwebhooks`
    package (an implementation independent of Atrium's) and answers as `answer` says."""

    def __init__(self, answer):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.answer = answer
        self.lock = threading.Lock()
        self.requests = []
        self.secrets = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                verified = receiver.verify(body, headers)
                payload = json.loads(body)
                with receiver.lock:
                    attempt = sum(1 for r in receiver.requests if r["id"] == headers.get("webhook-id")) + 1
                    entry = {"id": headers.get("webhook-id"), "payload": payload, "verified": verified, "attempt": attempt}
                    receiver.requests.append(entry)
                status, delay = receiver.answer(payload, attempt)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                    entry["status"] = status
                except OSError:
                    pass  # the sender is gone (killed mid-delivery): this attempt did not succeed

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verify(self, body, headers):
        """Which of the known secrets the signature verifies with (by index)."""
        from standardwebhooks.webhooks import Webhook
        passed = []
        for index, secret in enumerate(list(self.secrets)):
            try:
                Webhook(secret).verify(body, headers)
                passed.append(index)
            except Exception:  # noqa: BLE001 - a failed verification raises
                pass
        return passed

    def succeeded(self):
        with self.lock:
            return [r for r in self.requests if r.get("status") == 200]

    def stop(self):
        self.server.shutdown()


def webhook_to(server, token, receiver, **settings):
    """Creates an endpoint of the tenant delivering to `receiver`, which learns its secret."""
    status, _, body = request(server.port, "POST", "/v1/webhooks", {"url": receiver.url, **settings}, token)
    assert status == 201, body
    hook = json.loads(body)
    receiver.secrets.append(hook["secret"])
    return hook


def create_items_numbered(server, token, numbers):
    """Creates an item per number; returns their ids."""
    ids = []
    for n in numbers:
        status, _, body = request(server.port, "POST", "/v1/collections/items/records", {"n": n}, token)
        assert status == 201, body
        ids.append(json.loads(body)["id"])
    return ids


def webhooks_verified_and_surviving_a_kill(data_dir):
    """Webhook deliveries signed (checked by the standardwebhooks package), retried after
    failures, across a secret rotation, and delivered although Atrium is killed mid-delivery."""
    server = Server(data_dir, extra_env={
        "ATRIUM_WEBHOOKS_ALLOW_PRIVATE": "1", "ATRIUM_WEBHOOKS_TIMEOUT": "3", "ATRIUM_WEBHOOKS_RETRY_SCHEDULE": "0.5,0.5,1,1",
    })
    held = threading.Event()

    def answer(payload, attempt):
        n = payload["data"].get("record", {}).get("data", {}).get("n")
        if n is not None and n < 3 and attempt == 1:
            return 500, 0
        if n == 10 and attempt == 1:
            held.set()
            return 200, 8  # Atrium is killed while it waits for this answer.
        return 200, 0

    receiver = WebhookReceiver(answer)
    server.start()
    try:
        token = tenant_with_items(server, "hooks")
        hook = webhook_to(server, token, receiver, collections=["items"])
        ids = create_items_numbered(server, token, range(20))
        assert held.wait(30), "the delivery to hold never arrived:\n" + server.log()
        server.process.kill()
        server.process.wait()
        server.start()
        delivered = lambda: {r["payload"]["data"]["id"] for r in receiver.succeeded()}
        assert wait_for(lambda: delivered() >= set(ids), 60), \
            f"{len(set(ids) - delivered())} changes were never delivered after the kill:\n" + server.log()

        # A rotation: deliveries carry signatures by the old and the new secret during the overlap.
        status, _, body = request(server.port, "POST", f"/v1/webhooks/{hook['id']}/rotate-secret", {"overlapSeconds": 3600}, token)
        assert status == 200, body
        receiver.secrets.append(json.loads(body)["secret"])
        later = create_items_numbered(server, token, range(100, 105))
        assert wait_for(lambda: delivered() >= set(later), 30), "deliveries after the rotation never arrived:\n" + server.log()

        with receiver.lock:
            requests = list(receiver.requests)
        unverified = [r for r in requests if not r["verified"]]
        assert not unverified, f"{len(unverified)} deliveries failed verification by standardwebhooks"
        rotated = [r for r in requests if r["payload"]["data"]["id"] in later]
        assert all(r["verified"] == [0, 1] for r in rotated), "after the rotation, not every delivery verified with both secrets"
        retried = {r["id"] for r in requests if r["attempt"] > 1}
        held_again = [r for r in requests if r["payload"]["data"].get("record", {}).get("data", {}).get("n") == 10]
        assert len(held_again) >= 2 and len({r["id"] for r in held_again}) == 1, "the delivery in flight at the kill was not sent again"
        status, _, body = request(server.port, "GET", f"/v1/webhooks/{hook['id']}/deliveries?limit=200", token=token)
        deliveries = json.loads(body)["data"]
        assert len(deliveries) == 25 and all(d["status"] == "succeeded" for d in deliveries), body[:2000]
        return (f"{len(requests)} requests for 25 changes, every signature verified by standardwebhooks "
                f"({len(rotated)} with both secrets during a rotation); {len(retried)} deliveries retried after 500s or the "
                f"kill -9 of Atrium mid-delivery; all 25 recorded as succeeded, none lost")
    finally:
        server.stop()
        receiver.stop()


def webhooks_across_a_frozen_postgres(data_dir):
    """Webhook deliveries pending while PostgreSQL is frozen (SIGSTOP) past the request
    timeout: requests still end at their deadline, and once it thaws every change is
    delivered, once."""
    server = Server(data_dir, extra_env={"ATRIUM_WEBHOOKS_ALLOW_PRIVATE": "1", "ATRIUM_WEBHOOKS_RETRY_SCHEDULE": "0.5,0.5,1"})
    def answer(payload, attempt):
        # The first thirty take half a second each, so attempts are in flight and deliveries
        # waiting when PostgreSQL stops, and their outcomes are stored only after it resumes.
        n = payload["data"].get("record", {}).get("data", {}).get("n")
        return 200, (0.5 if n is not None and n < 30 and attempt == 1 else 0)

    receiver = WebhookReceiver(answer)
    server.start()
    try:
        token = tenant_with_items(server, "frozenhooks")
        webhook_to(server, token, receiver)
        ids = create_items_numbered(server, token, range(30))
        assert wait_for(lambda: len(receiver.requests) > 0, 10), "no delivery began:\n" + server.log()
        postmaster, children = server.postgres_pids()
        for pid in [postmaster] + children:
            os.kill(pid, signal.SIGSTOP)
        frozen_at = time.time()
        delivered_before = len(receiver.succeeded())
        durations = []
        try:
            while time.time() - frozen_at < 6:
                started = time.time()
                try:
                    request(server.port, "GET", "/v1/collections/items/records?limit=5", token=token, timeout=30)
                except OSError:
                    pass
                durations.append(time.time() - started)
        finally:
            for pid in children + [postmaster]:
                os.kill(pid, signal.SIGCONT)
        assert max(durations) < REQUEST_TIMEOUT + 1, f"a request took {max(durations):.1f} s while PostgreSQL was frozen"
        for n in range(30, 40):
            for _ in range(50):
                status, _, body = request(server.port, "POST", "/v1/collections/items/records", {"n": n}, token,
                                          headers={"Idempotency-Key": f"thawed-{n}"}, timeout=30)
                if status != 503:
                    break
                time.sleep(0.1)
            assert status == 201, body
            ids.append(json.loads(body)["id"])
        delivered = lambda: [r["payload"]["data"]["id"] for r in receiver.succeeded()]
        assert wait_for(lambda: set(delivered()) >= set(ids), 60), \
            f"{len(set(ids) - set(delivered()))} changes never delivered after the thaw:\n" + server.log()
        time.sleep(1)
        repeats = len(delivered()) - len(set(delivered()))
        with receiver.lock:
            unverified = sum(1 for r in receiver.requests if not r["verified"])
        assert unverified == 0, f"{unverified} deliveries failed verification"
        return (f"PostgreSQL frozen 6 s with {30 - delivered_before} of 30 deliveries unfinished: requests ended by "
                f"{max(durations):.1f} s (timeout {REQUEST_TIMEOUT:.0f} s); after the thaw all {len(ids)} changes delivered "
                f"and verified, {repeats} sent again (at least once: an outcome not stored in time)")
    finally:
        server.stop()
        receiver.stop()


SCENARIOS = [postgres_killed, postgres_frozen, atrium_killed, pool_exhausted, terminated_under_load, events_across_postgres_restart,
             webhooks_verified_and_surviving_a_kill, webhooks_across_a_frozen_postgres]


def run_scenarios(scenarios, label, only):
    """Runs each scenario (all, or those named in `only`) in a fresh data directory; exits 1 if
    any failed, after reporting every one."""
    failed = 0
    for scenario in scenarios:
        if only and scenario.__name__ not in only:
            continue
        data_dir = tempfile.mkdtemp(prefix=f"atrium-{label}-")
        os.chmod(data_dir, 0o755)
        started = time.time()
        try:
            figures = scenario(data_dir)
            print(f"{label}: {scenario.__name__}: ok in {time.time() - started:.0f} s: {figures}", flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is reported, then the next scenario runs
            failed += 1
            print(f"{label}: {scenario.__name__}: FAILED after {time.time() - started:.0f} s: {error}", flush=True)
        finally:
            subprocess.run(["rm", "-rf", data_dir])
    sys.exit(1 if failed else 0)


def main():
    run_scenarios(SCENARIOS, "faults", ONLY)


if __name__ == "__main__":
    main()
