#!/usr/bin/env python3
"""Atrium on Citus: a coordinator and two workers on loopback, from an installed Citus.

`atrium migrate` prepares the roles, applies the migrations and distributes the tables
(sql/citus/); `atrium serve` runs against the coordinator, and a smoke subset of the HTTP API
(sign-up, sign-in, refresh, tenants, collections, records with unique values and optimistic
locking, lists, API keys, sign-out) runs against it for two tenants, with isolation between
them checked over HTTP and with psql as the service role on the coordinator and on a worker's
shards. Last, GET by id and a record write are timed on the coordinator and on a plain
PostgreSQL cluster on the same machine.

    .ci/citus.py path-to-atrium
"""

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faults import EventReader, Server, WebhookReceiver, request, wait_for  # noqa: E402
from scale import PG_BIN, Cluster, as_postgres, prepare_root  # noqa: E402

import tempfile  # noqa: E402


def citus_installed():
    libdir = subprocess.run([f"{PG_BIN}/pg_config", "--pkglibdir"], capture_output=True, text=True).stdout.strip()
    return os.path.exists(os.path.join(libdir or "/usr/lib/postgresql/15/lib", "citus.so"))


class CitusNode(Cluster):
    def start_citus(self):
        return self.start("shared_preload_libraries=citus", "citus.enable_statistics_collection=off",
                          "wal_level=logical", "max_connections=300")


def psql(port, statement, user="postgres", database="atrium"):
    """Runs the statements one by one in one session, as a DBA in psql would type them."""
    result = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", database, "-XAtq", "-v", "ON_ERROR_STOP=1"],
                            input=statement, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"psql as {user} on {port} failed: {result.stderr.strip()}\n{statement}")
    return result.stdout.strip()


def migrate(atrium, coordinator):
    env = dict(os.environ)
    env.update({"DATABASE_URL": f"postgresql://atrium_app@127.0.0.1:{coordinator.port}/atrium",
                "ATRIUM_MIGRATION_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{coordinator.port}/atrium"})
    result = subprocess.run([atrium, "migrate"], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError("atrium migrate failed:\n" + result.stdout[-3000:] + result.stderr[-3000:])
    return result.stdout + result.stderr


def server_on(data_dir, name, port, database="atrium"):
    directory = os.path.join(data_dir, name)
    os.makedirs(directory)
    return Server(directory, extra_env={
        "DATABASE_URL": f"postgresql://atrium_app@127.0.0.1:{port}/{database}",
        "ATRIUM_MIGRATION_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/{database}",
        "ATRIUM_TOKEN_KEYS": "citus:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU",
        "ATRIUM_WEBHOOKS_ALLOW_PRIVATE": "1",
    })


class Check:
    """Each step of the smoke subset, reported as it passes; the first failure stops the run."""

    def __init__(self, port):
        self.port = port
        self.steps = 0

    def call(self, method, path, body=None, token=None, expect=200, headers=None):
        status, response_headers, payload = request(self.port, method, path, body, token, headers)
        if status != expect:
            raise AssertionError(f"{method} {path}: expected {expect}, got {status}: {payload[:400]!r}")
        self.steps += 1
        return (json.loads(payload) if payload else None), response_headers


def smoke(port):
    """The HTTP smoke subset for two tenants; returns what the rest of the check needs."""
    c = Check(port)
    tenants = {}
    for name in ("alpha", "beta"):
        email = f"{name}@example.com"
        signed, _ = c.call("POST", "/v1/auth/signup", {"email": email, "password": "correct horse battery", "tenant": {"name": name.title()}}, expect=201)
        signed_in, _ = c.call("POST", "/v1/auth/login", {"email": email, "password": "correct horse battery"})
        assert signed_in["tenant"]["id"] == signed["tenant"]["id"], signed_in
        refreshed, _ = c.call("POST", "/v1/auth/refresh", {"refreshToken": signed_in["tokens"]["refreshToken"]})
        token = refreshed["accessToken"]
        me, _ = c.call("GET", "/v1/me", token=token)
        assert me["user"]["email"] == email, me
        tenants[name] = {"id": signed["tenant"]["id"], "token": token, "email": email}
        print(f"citus: {name}: signed up, signed in, refreshed (tenant {signed['tenant']['id']})", flush=True)

    alpha, beta = tenants["alpha"], tenants["beta"]
    for t in (alpha, beta):
        c.call("POST", "/v1/collections", {"name": "tickets", "fields": {
            "title": {"type": "string", "required": True}, "code": {"type": "string", "unique": True},
            "status": {"type": "enum", "values": ["open", "closed"], "default": "open", "indexed": True},
            "priority": {"type": "integer", "indexed": True},
        }}, t["token"], expect=201)
    # A webhook endpoint of alpha's, signatures checked with standardwebhooks.
    receiver = WebhookReceiver(lambda payload, attempt: (200, 0))
    hook, _ = c.call("POST", "/v1/webhooks", {"url": receiver.url, "events": ["record.created"]}, alpha["token"], expect=201)
    receiver.secrets.append(hook["secret"])
    # The live change feed of each tenant, followed from before the writes.
    readers = {name: EventReader(port, t["token"]) for name, t in tenants.items()}
    for reader in readers.values():
        reader.start()
    assert wait_for(lambda: all(r.connections for r in readers.values()), 10), "the event streams did not open"
    ids = []
    for n in range(5):
        record, _ = c.call("POST", "/v1/collections/tickets/records",
                           {"title": f"ticket {n}", "code": f"T-{n}", "status": "open", "priority": n}, alpha["token"], expect=201)
        ids.append(record["id"])
    c.call("POST", "/v1/collections/tickets/records", {"title": "clash", "code": "T-1"}, alpha["token"], expect=422)
    # The same unique value in another tenant is no clash.
    beta_record, _ = c.call("POST", "/v1/collections/tickets/records", {"title": "beta's", "code": "T-1"}, beta["token"], expect=201)
    record, headers = c.call("GET", f"/v1/collections/tickets/records/{ids[0]}", token=alpha["token"])
    etag = headers.get("ETag") or headers.get("etag")
    c.call("PATCH", f"/v1/collections/tickets/records/{ids[0]}", {"status": "closed"}, alpha["token"], headers={"If-Match": etag})
    c.call("PATCH", f"/v1/collections/tickets/records/{ids[0]}", {"status": "open"}, alpha["token"], expect=412, headers={"If-Match": etag})
    page, _ = c.call("GET", "/v1/collections/tickets/records?filter[status]=open&sort=-priority", token=alpha["token"])
    assert [r["data"]["priority"] for r in page["data"]] == [4, 3, 2, 1], page
    c.call("DELETE", f"/v1/collections/tickets/records/{ids[4]}", token=alpha["token"], expect=204)
    print("citus: alpha: collection, 5 records, unique clash 422, PATCH with If-Match, stale 412, filtered list, DELETE", flush=True)

    # Isolation over HTTP: beta sees none of alpha's records, by id or in a list.
    c.call("GET", f"/v1/collections/tickets/records/{ids[1]}", token=beta["token"], expect=404)
    page, _ = c.call("GET", "/v1/collections/tickets/records", token=beta["token"])
    assert [r["id"] for r in page["data"]] == [beta_record["id"]], page
    c.call("PATCH", f"/v1/collections/tickets/records/{ids[1]}", {"status": "x"}, beta["token"], expect=404)
    assert wait_for(lambda: len(readers["alpha"].created) >= 5 and len(readers["beta"].created) >= 1, 10), \
        {name: r.created for name, r in readers.items()}
    for reader in readers.values():
        reader.stop()
    assert wait_for(lambda: len(receiver.requests) >= 5, 15), f"{len(receiver.requests)} webhook deliveries"
    delivered = [r["payload"]["data"]["record"]["id"] for r in receiver.requests]
    assert sorted(delivered) == sorted(ids) and all(r["verified"] == [0] for r in receiver.requests), receiver.requests
    receiver.server.shutdown()
    assert readers["alpha"].created == ids, readers["alpha"].created
    assert readers["beta"].created == [beta_record["id"]], readers["beta"].created

    invitation, _ = c.call("POST", "/v1/invitations", {"email": "carol@example.com", "role": "member"}, alpha["token"], expect=201)
    carol, _ = c.call("POST", "/v1/invitations/accept", {"token": invitation["token"], "password": "correct horse battery"})
    carol_id, carol_token = carol["user"]["id"], carol["tokens"]["accessToken"]
    c.call("GET", "/v1/collections/tickets/records", token=carol_token)
    members, _ = c.call("GET", "/v1/members", token=alpha["token"])
    assert len(members["data"]) == 2, members
    c.call("PATCH", f"/v1/members/{carol_id}", {"role": "viewer"}, alpha["token"])
    # A role change ends the member's sessions: the token carries the old role. On Citus the
    # servers read revocations every second (no NOTIFY from the workers).
    started = time.time()
    assert wait_for(lambda: request(port, "GET", "/v1/me", token=carol_token)[0] == 401, 5, 0.05), "the demoted member's token still works"
    revoked_after = time.time() - started
    me, _ = c.call("GET", "/v1/me", token=alpha["token"])
    c.call("PATCH", f"/v1/members/{me['user']['id']}", {"role": "admin"}, alpha["token"], expect=409)
    c.call("DELETE", f"/v1/members/{carol_id}", token=alpha["token"], expect=204)
    print(f"citus: alpha: invitation accepted by a new user, role change ended her session (refused {revoked_after:.2f} s later), "
          "last owner kept, member removed", flush=True)

    key, _ = c.call("POST", "/v1/api-keys", {"name": "ci", "role": "member"}, alpha["token"], expect=201)
    page, _ = c.call("GET", "/v1/collections/tickets/records?limit=2", token=key["secret"])
    assert len(page["data"]) == 2, page
    c.call("POST", "/v1/auth/logout", token=alpha["token"], expect=204)
    c.call("GET", "/v1/me", token=alpha["token"], expect=401)

    # Deleting a tenant deletes everything in it (no foreign key cascades here: see distribute.sql).
    c.call("DELETE", "/v1/tenant", token=beta["token"], expect=204)
    assert wait_for(lambda: request(port, "GET", "/v1/me", token=beta["token"])[0] == 401, 5, 0.05), "a deleted tenant's token still works"
    print("citus: beta: tenant deleted, its token refused", flush=True)
    print("citus: isolation over HTTP held, live events included (each tenant got its own creations, in order); "
          "alpha's webhook got its 5 creations, signatures verified by standardwebhooks; API key read; sign-out refused the token", flush=True)
    return {"steps": c.steps, "alpha": alpha, "beta": beta, "alpha_records": ids[:4], "beta_record": beta_record["id"]}


def isolation_in_psql(coordinator, workers, found):
    """As atrium_app: each tenant sees its own rows and no tenant none, through the coordinator,
    through a worker's metadata and on the shard tables themselves."""
    alpha, beta = found["alpha"]["id"], found["beta"]["id"]
    # The deleted tenant left nothing behind in any tenant table (as the superuser, past every policy);
    # its auth events and revoked sessions stay, as on PostgreSQL.
    tables = psql(coordinator.port, "SELECT string_agg(logicalrelid::text, ' ') FROM pg_dist_partition WHERE partmethod = 'h' AND logicalrelid::text NOT IN ('atrium.auth_events', 'atrium.revoked_sessions')").split()
    left = {t: psql(coordinator.port, f"SELECT count(*) FROM {t} WHERE tenant_id = '{beta}'") for t in tables}
    assert all(n == "0" for n in left.values()), {t: n for t, n in left.items() if n != "0"}
    assert psql(coordinator.port, f"SELECT count(*) FROM atrium.tenants WHERE tenant_id = '{beta}'") == "0"
    scoped = "BEGIN; SET LOCAL atrium.tenant_id = '{}'; SELECT count(*) FROM atrium.records; COMMIT;"
    for node, label in ((coordinator, "coordinator"), (workers[0], "worker")):
        assert psql(node.port, scoped.format(alpha), user="atrium_app").splitlines()[-1] == "4", label
        assert psql(node.port, scoped.format(beta), user="atrium_app").splitlines()[-1] == "0", label
        assert psql(node.port, "SELECT count(*) FROM atrium.records", user="atrium_app") == "0", label
    # set_config does not reach the shards: the form Atrium uses on plain PostgreSQL sees nothing here.
    via_set_config = psql(coordinator.port, f"BEGIN; SELECT set_config('atrium.tenant_id', '{alpha}', true); SELECT count(*) FROM atrium.records; COMMIT;", user="atrium_app")
    assert via_set_config.splitlines()[-1] == "0", via_set_config
    own = {alpha: 0, beta: 0}
    foreign = 0
    shard_count = 0
    for worker in workers:
        # Citus hides shards from the catalog unless told not to.
        shards = psql(worker.port, "SET citus.override_table_visibility TO off; SELECT c.relname FROM pg_class c WHERE c.relname ~ '^records_[0-9]+$' AND c.relnamespace = 'atrium'::regnamespace").split()
        shard_count += len(shards)
        for shard in shards:
            assert psql(worker.port, f"SELECT count(*) FROM atrium.{shard}", user="atrium_app") == "0", shard
            for tenant in (alpha, beta):
                counts = psql(worker.port, f"BEGIN; SET LOCAL atrium.tenant_id = '{tenant}'; SELECT count(*) FILTER (WHERE tenant_id = '{tenant}'), count(*) FILTER (WHERE tenant_id <> '{tenant}') FROM atrium.{shard}; COMMIT;", user="atrium_app").splitlines()[-1]
                mine, theirs = map(int, counts.split("|"))
                own[tenant] += mine
                foreign += theirs
    assert own == {alpha: 4, beta: 0}, own
    assert foreign == 0, "a shard showed another tenant's rows"
    print(f"citus: isolation in psql held on the coordinator, through a worker, and on all {shard_count} records shards "
          "(each tenant's rows found on its shard, none of another's, none without a tenant)", flush=True)


def administration_in_psql(coordinator, port):
    """A database administrator (a role granted atrium_admin) on the coordinator: every view of
    atrium_admin answers, a tenant is made with its owner invitation, and a disabled user's
    session ends."""
    psql(coordinator.port, "CREATE ROLE dba LOGIN; GRANT atrium_admin TO dba;")
    views = psql(coordinator.port, "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_class c WHERE c.relnamespace = 'atrium_admin'::regnamespace AND c.relkind = 'v'").split()
    assert len(views) >= 6, views
    for view in views:
        psql(coordinator.port, f"SELECT count(*) FROM atrium_admin.{view}", user="dba")
    overview = psql(coordinator.port, "SELECT slug, members, owners FROM atrium_admin.tenant_overview WHERE slug = 'alpha'", user="dba")
    assert overview == "alpha|1|1", overview
    invitation = psql(coordinator.port, "SELECT invitation_token FROM atrium_admin.create_tenant('Gamma', 'gamma', 'gus@example.com')", user="dba")
    status, _, body = request(port, "POST", "/v1/invitations/accept", {"token": invitation, "password": "correct horse battery"})
    assert status == 200, body
    token = json.loads(body)["tokens"]["accessToken"]
    ended = psql(coordinator.port, "SELECT atrium_admin.disable_user('gus@example.com')", user="dba")
    assert ended == "1", ended
    assert wait_for(lambda: request(port, "GET", "/v1/me", token=token)[0] == 401, 5, 0.05), "a disabled user's token still works"
    print(f"citus: administration in psql: {len(views)} atrium_admin views, create_tenant (its invitation accepted over HTTP), "
          "disable_user ended the session", flush=True)


def timed(port, token, record_id, seconds=3.0, threads=4):
    """GET by id and POST record, `threads` clients each for `seconds`: req/s and p50 in ms."""
    figures = {}
    for label, method, path, body, expect in (
        ("GET by id", "GET", f"/v1/collections/tickets/records/{record_id}", None, 200),
        ("POST record", "POST", "/v1/collections/tickets/records", {"title": "timed"}, 201),
    ):
        latencies = []
        failures = []
        deadline = time.time() + seconds

        def client():
            while time.time() < deadline:
                started = time.perf_counter()
                status, _, payload = request(port, method, path, body, token)
                latencies.append(time.perf_counter() - started)
                if status != expect:
                    failures.append((status, payload[:200]))
        workers = [threading.Thread(target=client) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert not failures, failures[:3]
        figures[label] = (len(latencies) / seconds, statistics.median(latencies) * 1000)
    return figures


def prepare_timing(port):
    status, _, body = request(port, "POST", "/v1/auth/signup", {"email": f"timing-{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse battery", "tenant": {"name": "Timing"}})
    assert status == 201, body
    token = json.loads(body)["tokens"]["accessToken"]
    status, _, body = request(port, "POST", "/v1/collections", {"name": "tickets", "fields": {"title": {"type": "string"}}}, token)
    assert status == 201, body
    status, _, body = request(port, "POST", "/v1/collections/tickets/records", {"title": "first"}, token)
    assert status == 201, body
    return token, json.loads(body)["id"]


def main():
    atrium = sys.argv[1]
    if not citus_installed():
        print("citus: SKIPPED: Citus is not installed here (no citus.so under pg_config --pkglibdir); "
              "build it from source to run this check (see the README, Sharding with Citus)")
        return 0
    data_dir = tempfile.mkdtemp(prefix="atrium-citus-")
    os.chmod(data_dir, 0o755)
    root = prepare_root(data_dir)
    nodes = [CitusNode(root, name) for name in ("coordinator", "worker1", "worker2")]
    plain = Cluster(root, "plain")
    servers = []
    try:
        for node in nodes:
            node.init().start_citus()
            node.sql("CREATE DATABASE atrium")
            node.sql("CREATE EXTENSION citus", database="atrium")
        coordinator = nodes[0]
        coordinator.sql(f"SELECT citus_set_coordinator_host('127.0.0.1', {coordinator.port})", database="atrium")
        for node in nodes[1:]:
            coordinator.sql(f"SELECT citus_add_node('127.0.0.1', {node.port})", database="atrium")
        versions = coordinator.sql("SELECT current_setting('server_version') || ', ' || split_part(citus_version(), ' on ', 1)", database="atrium")
        print(f"citus: PostgreSQL {versions}: a coordinator and two workers on loopback", flush=True)

        output = migrate(atrium, coordinator)
        assert "sql/citus/distribute.sql" in output, output[-2000:]
        placement = psql(coordinator.port, "SELECT string_agg(partmethod::text || ':' || n, ' ' ORDER BY partmethod) FROM (SELECT partmethod, count(*) n FROM pg_dist_partition WHERE logicalrelid::text LIKE 'atrium.%' GROUP BY 1) p")
        local = psql(coordinator.port, "SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'atrium'::regnamespace AND c.relkind = 'r' AND NOT EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)")
        assert local == "0", f"{local} atrium tables left undistributed"
        again = migrate(atrium, coordinator)
        assert "migrations.applied=0" in again, again[-2000:]
        print(f"citus: atrium migrate: roles, migrations, distribution ({placement.replace('h:', 'distributed by tenant_id: ').replace('n:', 'reference: ')}); a second run changed nothing", flush=True)

        server = server_on(data_dir, "atrium-citus", coordinator.port)
        servers.append(server)
        server.start()
        assert "tenant scoping: set_local" in server.log(), server.log()
        found = smoke(server.port)
        print(f"citus: HTTP smoke subset: {found['steps']} requests as expected", flush=True)
        isolation_in_psql(coordinator, nodes[1:], found)
        administration_in_psql(coordinator, server.port)

        plain.init().start()
        plain.sql("CREATE DATABASE atrium")
        plain_server = server_on(data_dir, "atrium-plain", plain.port)
        servers.append(plain_server)
        plain_server.start()
        assert "tenant scoping: set_config" in plain_server.log(), plain_server.log()
        results = {}
        for label, s in (("PostgreSQL", plain_server), ("Citus", server)):
            token, record = prepare_timing(s.port)
            timed(s.port, token, record, seconds=1.0)  # warm-up
            results[label] = timed(s.port, token, record)
        for route in ("GET by id", "POST record"):
            (plain_rate, plain_p50), (citus_rate, citus_p50) = results["PostgreSQL"][route], results["Citus"][route]
            print(f"citus: {route}: PostgreSQL {plain_rate:,.0f} req/s (p50 {plain_p50:.1f} ms), "
                  f"Citus coordinator + 2 workers {citus_rate:,.0f} req/s (p50 {citus_p50:.1f} ms), {citus_rate / plain_rate:.0%}", flush=True)
        print("citus: ok")
        return 0
    except Exception as error:  # noqa: BLE001 - reported with the server's log
        print(f"citus: FAILED: {error}", flush=True)
        for s in servers:
            print(s.log()[-3000:])
        if os.path.exists(nodes[0].log):
            with open(nodes[0].log) as f:
                errors = [line for line in f.read().splitlines() if "ERROR" in line or "CONTEXT" in line]
            print("coordinator log:\n" + "\n".join(errors[-20:]))
        return 1
    finally:
        for s in servers:
            s.stop()
        for node in [*nodes, plain]:
            node.stop()
        subprocess.run(["rm", "-rf", data_dir])


if __name__ == "__main__":
    sys.exit(main())
