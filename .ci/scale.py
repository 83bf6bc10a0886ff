#!/usr/bin/env python3
"""Scale-out drills against the real `atrium serve` binary on PostgreSQL clusters of their own,
with Debian's PostgreSQL 15 (`pg_basebackup`, `pg_ctl promote`) and `pgbouncer`.

- through_pgbouncer: two servers reach PostgreSQL through PgBouncer in transaction mode
  (ATRIUM_DATABASE_POOLER=transaction) and LISTEN directly; writes, reads and a revocation
  that reaches the other server.
- behind_haproxy: two servers behind HAProxy (round robin) on one PostgreSQL: a revocation
  refuses the token on both within a second, sign-in throttling and the tenant's rate limit
  hold for the pair, not for each server.
- read_replica: a streaming replica made by pg_basebackup -R serves reads; with its replay
  paused, a read carrying a write's Atrium-Consistency token goes to the primary while one
  without reads the replica's older state; resumed, reads with the token return to the replica;
  a server with a tight lag bound skips the paused replica altogether.
- failover: a primary with a synchronous streaming replica; two servers on a multi-host
  DATABASE_URL (target_session_attrs=read-write). The primary is killed under writes, the
  replica promoted; writes retried with their Idempotency-Key land exactly once, no
  acknowledged write is lost, and a revocation still reaches the other server (its LISTEN
  followed the primary).

    .ci/scale [path-to-atrium] [scenario ...]
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faults import Server, Writers, create_items, free_port, request, run_scenarios, sign_up, wait_for  # noqa: E402

ONLY = sys.argv[2:]
PG_BIN = "/usr/lib/postgresql/15/bin"


def as_postgres(command, **kwargs):
    """Runs a PostgreSQL program as the postgres user when we are root (it refuses root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + command, check=True, capture_output=True, text=True, **kwargs)


class Cluster:
    """A PostgreSQL cluster on loopback, made by initdb or by pg_basebackup from another."""

    def __init__(self, root, name):
        self.directory = os.path.join(root, name)
        self.port = free_port()
        self.log = os.path.join(root, name + ".log")

    def init(self):
        as_postgres([f"{PG_BIN}/initdb", "-D", self.directory, "-A", "trust", "-U", "postgres", "--no-sync"])
        return self

    def replica_of(self, primary):
        as_postgres([f"{PG_BIN}/pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                     "-D", self.directory, "-R", "-X", "stream", "--no-sync"])
        return self

    def start(self, *settings):
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off " + " ".join(f"-c {s}" for s in settings)
        as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.directory, "-o", options, "-l", self.log, "-w", "start"])
        return self

    def sql(self, statement, database="postgres"):
        result = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-XAtqc", statement],
                                check=True, capture_output=True, text=True)
        return result.stdout.strip()

    def pids(self):
        """The postmaster and every process it started."""
        with open(os.path.join(self.directory, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        pids = [postmaster]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        stat = f.read()
                except OSError:
                    continue
                if int(stat[stat.rindex(")") + 2:].split()[1]) == postmaster:
                    pids.append(int(entry))
        return pids

    def kill(self):
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self):
        try:
            as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.directory, "-m", "immediate", "stop"])
        except subprocess.CalledProcessError:
            pass


def prepare_root(data_dir):
    """A directory both we and the postgres user can write (the clusters live under it)."""
    root = os.path.join(data_dir, "clusters")
    os.makedirs(root)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    return root


def create_atrium_database(cluster):
    cluster.sql("CREATE ROLE atrium_owner LOGIN CREATEROLE")
    cluster.sql("CREATE ROLE atrium_app LOGIN")
    cluster.sql("CREATE DATABASE atrium OWNER atrium_owner")


def server_on(data_dir, name, database_url, migration_url, extra=None):
    directory = os.path.join(data_dir, name)
    os.makedirs(directory)
    env = {"DATABASE_URL": database_url, "ATRIUM_MIGRATION_DATABASE_URL": migration_url,
           "ATRIUM_TOKEN_KEYS": "drill:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU", "ATRIUM_DB_ACQUIRE_TIMEOUT": "2"}
    env.update(extra or {})
    return Server(directory, extra_env=env)


def revocation_reaches(origin, other, token):
    """Logs the session out on `origin`; returns how long `other` took to refuse its token."""
    status, _, body = request(other.port, "GET", "/v1/me", token=token)
    assert status == 200, body
    status, _, body = request(origin.port, "POST", "/v1/auth/logout", token=token)
    assert status in (200, 204), body
    started = time.time()
    assert wait_for(lambda: request(other.port, "GET", "/v1/me", token=token)[0] == 401, 5, 0.02), "the other server still accepts a revoked token"
    return time.time() - started


def sign_in(port, email, password):
    status, _, body = request(port, "POST", "/v1/auth/login", {"email": email, "password": password})
    assert status == 200, body
    return json.loads(body)["tokens"]["accessToken"]


# Scenarios -----------------------------------------------------------------------------------

def through_pgbouncer(data_dir):
    root = prepare_root(data_dir)
    cluster = Cluster(root, "db").init().start()
    bouncer_port = free_port()
    bouncer_dir = os.path.join(root, "pgbouncer")
    os.makedirs(bouncer_dir)
    with open(os.path.join(bouncer_dir, "pgbouncer.ini"), "w") as f:
        f.write(f"""[databases]
atrium = host=127.0.0.1 port={cluster.port} dbname=atrium
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {bouncer_port}
unix_socket_dir =
auth_type = trust
auth_file = {bouncer_dir}/users.txt
pool_mode = transaction
default_pool_size = 10
logfile = {bouncer_dir}/pgbouncer.log
""")
    with open(os.path.join(bouncer_dir, "users.txt"), "w") as f:
        f.write('"atrium_app" ""\n')
    if os.geteuid() == 0:
        for path in (bouncer_dir, *(os.path.join(bouncer_dir, n) for n in os.listdir(bouncer_dir))):
            shutil.chown(path, "postgres", "postgres")
    # setpriv execs, so killing the child kills PgBouncer itself.
    prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] if os.geteuid() == 0 else []
    bouncer = subprocess.Popen(prefix + ["pgbouncer", os.path.join(bouncer_dir, "pgbouncer.ini")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers = []
    try:
        create_atrium_database(cluster)
        cluster.sql("ALTER ROLE atrium_app SET statement_timeout = '30s'")
        cluster.sql("ALTER ROLE atrium_app SET max_parallel_workers_per_gather = 0")
        direct = f"postgresql://atrium_app@127.0.0.1:{cluster.port}/atrium"
        pooled = f"postgresql://atrium_app@127.0.0.1:{bouncer_port}/atrium"
        owner = f"postgresql://atrium_owner@127.0.0.1:{cluster.port}/atrium"
        extra = {"ATRIUM_DATABASE_POOLER": "transaction", "ATRIUM_LISTEN_DATABASE_URL": direct}
        servers = [server_on(data_dir, name, pooled, owner, extra) for name in ("a", "b")]
        for server in servers:
            server.start()
        a, b = servers
        token = sign_up(a.port, "bouncer")
        create_items(a.port, token)
        writers = Writers(a, token, threads=4)
        writers.start()
        time.sleep(3)
        writers.finish()
        stored = writers.verify(b.port)
        # The pools' connections went through PgBouncer (it logs each client's login), the
        # listeners straight to PostgreSQL.
        with open(os.path.join(bouncer_dir, "pgbouncer.log")) as f:
            logins = f.read().count("login attempt: db=atrium user=atrium_app")
        assert logins >= 2, f"{logins} logins through pgbouncer"
        listeners = cluster.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'atrium-listener'", "atrium")
        assert listeners == "2", f"{listeners} listeners on PostgreSQL"
        reached = revocation_reaches(a, b, token)
        warning = "statement_timeout is unbounded" in a.log()
        assert not warning, "the role's statement_timeout was not seen through the pooler"
        assert "parallel query is on through the pooler" not in a.log(), "the role's max_parallel_workers_per_gather was not seen through the pooler"
        return f"{stored} records written by 4 threads through pgbouncer, every one read back on the other server; revocation reached it in {reached * 1000:.0f} ms"
    finally:
        for server in servers:
            server.stop()
        bouncer.kill()
        bouncer.wait()
        cluster.stop()


def behind_haproxy(data_dir):
    root = prepare_root(data_dir)
    cluster = Cluster(root, "db").init().start()
    balancer = None
    servers = []
    try:
        create_atrium_database(cluster)
        url = f"postgresql://atrium_app@127.0.0.1:{cluster.port}/atrium"
        owner = f"postgresql://atrium_owner@127.0.0.1:{cluster.port}/atrium"
        # A tenant may burst 20 requests, then one every 10 s: 40 requests at once must get 20.
        limits = {"ATRIUM_RATE_LIMIT_TENANT": "0.1", "ATRIUM_RATE_LIMIT_TENANT_BURST": "20", "ATRIUM_PROXY_HOPS": "1"}
        servers = [server_on(data_dir, name, url, owner, limits) for name in ("a", "b")]
        for server in servers:
            server.start()
        a, b = servers
        port = free_port()
        config = os.path.join(root, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(f"""global
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option forwardfor
frontend atrium
    bind 127.0.0.1:{port}
    default_backend servers
backend servers
    balance roundrobin
    option httpchk GET /readyz
    server a 127.0.0.1:{a.port} check inter 1s
    server b 127.0.0.1:{b.port} check inter 1s
""")
        balancer = subprocess.Popen(["haproxy", "-f", config, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def balanced():
            try:
                return request(port, "GET", "/readyz", timeout=2)[0] == 200
            except OSError:
                return False
        assert wait_for(balanced, 20), "haproxy never answered"
        # Both servers have counted each other (a heartbeat every 5 s).
        assert wait_for(lambda: "servers=2" in a.log() and "servers=2" in b.log(), 15), "the servers never counted each other"

        email = "balanced@example.com"
        status, _, body = request(port, "POST", "/v1/auth/signup", {"email": email, "password": "correct horse battery", "tenant": {"name": "balanced"}})
        assert status == 201, body
        token = json.loads(body)["tokens"]["accessToken"]

        # Revocation: logged out through the balancer, refused by each server within a second.
        session = sign_in(port, email, "correct horse battery")
        for server in servers:
            assert request(server.port, "GET", "/v1/me", token=session)[0] == 200
        status, _, _ = request(port, "POST", "/v1/auth/logout", token=session)
        assert status == 204, status
        started = time.time()
        for server in servers:
            assert wait_for(lambda: request(server.port, "GET", "/v1/me", token=session)[0] == 401, 1, 0.02), "a server accepted a revoked token after 1 s"
        revoked = time.time() - started

        # Sign-in throttling: wrong passwords alternate between the servers, the count is one.
        statuses = [request(port, "POST", "/v1/auth/login", {"email": email, "password": f"wrong {i}"}, headers={"X-Forwarded-For": "198.51.100.7"})[0]
                    for i in range(8)]
        assert statuses[:3] == [401, 401, 401] and set(statuses[3:]) == {429}, statuses

        # The tenant's rate limit: 40 requests at once through the balancer (20 to each server).
        answers = []
        lock = threading.Lock()

        def call():
            status = request(port, "GET", "/v1/tenant", token=token)[0]
            with lock:
                answers.append(status)
        threads = [threading.Thread(target=call) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        allowed, refused = answers.count(200), answers.count(429)
        # Burst 20 for the pair, less the sign-up's own requests; each server alone would allow 20.
        assert allowed + refused == 40 and 16 <= allowed <= 22, f"{allowed} allowed, {refused} refused"
        return (f"revocation refused on both servers within {revoked * 1000:.0f} ms; 8 wrong passwords over both: {statuses}; "
                f"40 requests at once for a tenant with burst 20: {allowed} allowed, {refused} refused (429)")
    finally:
        if balancer:
            balancer.kill()
            balancer.wait()
        for server in servers:
            server.stop()
        cluster.stop()


def replica_reads(port):
    """Reads served by the primary and by the replica, from /metrics."""
    _, _, body = request(port, "GET", "/metrics")
    counts = {}
    for line in body.decode().splitlines():
        if line.startswith("atrium_db_reads{"):
            target = line.split('target="')[1].split('"')[0]
            counts[target] = float(line.split()[-1])
    return counts.get("primary", 0), counts.get("replica1", 0)


def read_replica(data_dir):
    root = prepare_root(data_dir)
    primary = Cluster(root, "primary").init().start()
    replica = Cluster(root, "replica").replica_of(primary).start()
    servers = []
    try:
        create_atrium_database(primary)
        url = f"postgresql://atrium_app@127.0.0.1:{primary.port}/atrium"
        owner = f"postgresql://atrium_owner@127.0.0.1:{primary.port}/atrium"
        read = f"postgresql://atrium_app@127.0.0.1:{replica.port}/atrium"
        # a: a generous lag bound, to see the token at work; b: a tight one, to see a lagging replica skipped.
        a = server_on(data_dir, "a", url, owner, {"ATRIUM_READ_DATABASE_URL": read, "ATRIUM_READ_MAX_LAG": "3600"})
        servers.append(a)
        a.start()
        b = server_on(data_dir, "b", url, owner, {"ATRIUM_READ_DATABASE_URL": read, "ATRIUM_READ_MAX_LAG": "1", "ATRIUM_NO_MIGRATE": "1"})
        servers.append(b)
        b.start()
        token = sign_up(a.port, "replicated")
        create_items(a.port, token)

        def create(n):
            status, headers, body = request(a.port, "POST", "/v1/collections/items/records", {"n": n}, token)
            assert status == 201, body
            assert "Atrium-Consistency" in headers, headers
            return json.loads(body)["id"], headers["Atrium-Consistency"]

        def get(port, record, consistency=None):
            headers = {"Atrium-Consistency": consistency} if consistency else {}
            return request(port, "GET", f"/v1/collections/items/records/{record}", token=token, headers=headers)[0]

        def replayed(position):
            return replica.sql(f"SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn") == "t"

        first, first_token = create(1)
        assert wait_for(lambda: replayed(first_token), 10), "the replica never replayed the first write"
        assert wait_for(lambda: get(a.port, first) == 200 and replica_reads(a.port)[1] > 0, 10), "reads never went to the replica"

        replica.sql("SELECT pg_wal_replay_pause()")
        second, second_token = create(2)
        primary_before, replica_before = replica_reads(a.port)
        # Without the token: the paused replica, which has not seen the write.
        assert get(a.port, second) == 404, "a read without the token did not come from the paused replica"
        # With it: the primary.
        assert get(a.port, second, second_token) == 200, "a read with the token missed the write"
        status, _, body = request(a.port, "GET", "/v1/collections/items/records?fields=n", token=token, headers={"Atrium-Consistency": second_token})
        assert status == 200 and sorted(r["data"]["n"] for r in json.loads(body)["data"]) == [1, 2], body
        primary_after, replica_after = replica_reads(a.port)
        assert primary_after >= primary_before + 2 and replica_after == replica_before + 1, (primary_before, replica_before, primary_after, replica_after)
        # Server b's bound is 1 s: the paused replica falls out of use, its reads go to the primary.
        assert wait_for(lambda: get(b.port, second) == 200, 10), "a replica past the lag bound was still read"
        status, _, body = request(b.port, "GET", "/metrics")
        assert 'atrium_db_replica_usable{replica="replica1"} 0' in body.decode(), "the lagging replica is not reported unusable"

        replica.sql("SELECT pg_wal_replay_resume()")
        assert wait_for(lambda: replayed(second_token), 10), "the replica never caught up"
        # Caught up: reads with the token return to the replica.
        assert wait_for(lambda: get(a.port, second, second_token) == 200 and replica_reads(a.port)[1] > replica_after, 5), "token reads never returned to the replica"
        before = replica_reads(a.port)[1]
        assert get(a.port, second, second_token) == 200 and replica_reads(a.port)[1] == before + 1, "a read with a replayed token did not go to the replica"
        assert wait_for(lambda: 'atrium_db_replica_usable{replica="replica1"} 1' in request(b.port, "GET", "/metrics")[2].decode(), 10), "the caught-up replica did not come back"
        # The audit log and an export (a snapshot exported and imported on the replica) read there too.
        before = replica_reads(a.port)[1]
        status, _, body = request(a.port, "GET", "/v1/audit", token=token, headers={"Atrium-Consistency": second_token})
        assert status == 200 and len(json.loads(body)["data"]) == 2, body
        status, _, body = request(a.port, "GET", "/v1/tenant/export", token=token, headers={"Atrium-Consistency": second_token})
        assert status == 200 and body.count(b'{"type":"record"') == 2, body[:500]
        assert replica_reads(a.port)[1] == before + 2, "the audit log or the export was not read from the replica"
        primary_reads, replica_reads_total = replica_reads(a.port)
        figures = ""
        figures_after = ""
        if shutil.which("wrk"):
            # The same GET from the replica (no token) and from the primary (a token no replica
            # has reached sends it there): what a read costs on each, on this one machine.
            rates = []
            for token_header in ([], ["-H", "Atrium-Consistency: FFFFFFFF/FFFFFFFF"]):
                result = subprocess.run(["wrk", "-t2", "-c32", "-d4s", "-H", f"Authorization: Bearer {token}", *token_header,
                                         f"http://127.0.0.1:{a.port}/v1/collections/items/records/{first}"], capture_output=True, text=True, check=True)
                rates.append(float(result.stdout.split("Requests/sec:")[1].split()[0]))
            figures = f"; GET by id with wrk (32 connections, 4 s): {rates[0]:.0f} req/s from the replica, {rates[1]:.0f} req/s from the primary"

        # A frozen replica: its poll goes unanswered, so within about a second reads go to the
        # primary instead of waiting on it.
        frozen = replica.pids()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            started = time.time()
            assert wait_for(lambda: 'atrium_db_replica_usable{replica="replica1"} 0' in request(a.port, "GET", "/metrics")[2].decode(), 5), "a frozen replica stayed in use"
            skipped = time.time() - started
            began = time.time()
            assert get(a.port, first) == 200, "a read failed while the replica was frozen"
            read_took = time.time() - began
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        assert wait_for(lambda: 'atrium_db_replica_usable{replica="replica1"} 1' in request(a.port, "GET", "/metrics")[2].decode(), 10), "the thawed replica did not come back"
        # A killed replica: reads that were sent to it go again to the primary, none fails.
        replica.kill()
        statuses = [get(a.port, first) for _ in range(20)]
        assert statuses == [200] * 20, f"reads while the replica died: {statuses}"
        figures_after = f"; frozen replica skipped after {skipped:.1f} s (a read then took {read_took * 1000:.0f} ms); 20 reads as it was killed: all 200"
        return (f"paused replica: read without token 404 (replica), with token 200 (primary); resumed: token reads on the replica; "
                f"a 1 s lag bound skipped the paused replica and took it back; reads on server a: {primary_reads:.0f} primary, "
                f"{replica_reads_total:.0f} replica{figures}{figures_after}")
    finally:
        for server in servers:
            server.stop()
        primary.stop()
        replica.stop()


def failover(data_dir):
    root = prepare_root(data_dir)
    primary = Cluster(root, "primary").init().start("synchronous_standby_names='*'")
    replica = Cluster(root, "replica").replica_of(primary).start()
    servers = []
    try:
        assert wait_for(lambda: primary.sql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") == "1", 30), "the replica never became synchronous"
        create_atrium_database(primary)
        hosts = f"127.0.0.1:{primary.port},127.0.0.1:{replica.port}"
        url = f"postgresql://atrium_app@{hosts}/atrium?target_session_attrs=read-write&connect_timeout=2"
        owner = f"postgresql://atrium_owner@{hosts}/atrium?target_session_attrs=read-write&connect_timeout=2"
        servers = [server_on(data_dir, name, url, owner) for name in ("a", "b")]
        for server in servers:
            server.start()
        a, b = servers
        email = "failover@example.com"
        status, _, body = request(a.port, "POST", "/v1/auth/signup", {"email": email, "password": "correct horse battery", "tenant": {"name": "failover"}})
        assert status == 201, body
        token = json.loads(body)["tokens"]["accessToken"]
        create_items(a.port, token)
        writers = Writers(a, token, threads=6)
        writers.start()
        time.sleep(2)
        before = len(writers.acknowledged)
        primary.kill()
        killed = time.time()
        time.sleep(1)
        as_postgres([f"{PG_BIN}/pg_ctl", "-D", replica.directory, "-w", "promote"])
        promoted = time.time()
        # Answering again: a write acknowledged after the promotion.
        assert wait_for(lambda: len(writers.acknowledged) > before + 10 and request(b.port, "GET", "/readyz")[0] == 200, 60, 0.05), "the service never answered writes again"
        answered = time.time()
        time.sleep(1)
        writers.finish()
        stored = writers.verify(b.port)
        retried = writers.statuses.get(503, 0) + writers.connection_errors
        assert retried > 0, "no write was in flight during the failover"
        # The listeners followed the primary: a revocation made on one server reaches the other.
        other = sign_in(a.port, email, "correct horse battery")
        reached = revocation_reaches(a, b, other)
        return (f"primary killed under 6 writers; replica promoted 1 s later; writes answered again {answered - promoted:.1f} s after the "
                f"promotion ({answered - killed:.1f} s after the kill); {retried} attempts failed (503 or connection) and were retried with "
                f"their key; {stored} records, none lost or doubled; revocation reached the other server in {reached * 1000:.0f} ms")
    finally:
        for server in servers:
            server.stop()
        primary.stop()
        replica.stop()


SCENARIOS = [behind_haproxy, through_pgbouncer, read_replica, failover]


if __name__ == "__main__":
    run_scenarios(SCENARIOS, "scale", ONLY)
