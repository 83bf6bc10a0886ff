-- The mail outbox: every mail Atrium sends (the account flows of migration 014) goes through it.
--
-- A mail is a row of atrium.mail_outbox written in the same transaction as what caused it (a
-- sign-up, a reset request), so a mail goes out only for a committed transaction and a crash
-- between commit and sending loses nothing: a server claims due mails with FOR UPDATE SKIP
-- LOCKED under a lease (any number of servers share the work), sends them and records the
-- outcome; a server that dies mid-send leaves the lease to run out and the mail is sent again
-- (at least once). Once a mail is sent or given up its bodies, which carry live tokens, are
-- erased. The table is global and reached by the service only through the SECURITY DEFINER
-- functions below.

-- Outbox ----------------------------------------------------------------------------------------

CREATE TABLE atrium.mail_outbox (
    mail_id         uuid        NOT NULL,
    for_tenant      uuid,
    kind            text        NOT NULL,
    recipient       text        NOT NULL,
    subject         text        NOT NULL,
    text_body       text,
    html_body       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    lease           uuid,
    lease_until     timestamptz,
    sent_at         timestamptz,
    failed_at       timestamptz,
    last_error      text,
    CONSTRAINT mail_outbox_pkey PRIMARY KEY (mail_id),
    CONSTRAINT mail_outbox_kind_check CHECK (kind IN ('verify_email', 'password_reset', 'email_change', 'email_change_notice')),
    CONSTRAINT mail_outbox_recipient_check CHECK (char_length(recipient) <= 254),
    CONSTRAINT mail_outbox_subject_check CHECK (char_length(subject) <= 300),
    CONSTRAINT mail_outbox_body_check CHECK (char_length(text_body) <= 100000 AND char_length(html_body) <= 200000),
    CONSTRAINT mail_outbox_outcome_check CHECK (sent_at IS NULL OR failed_at IS NULL)
) WITH (fillfactor = 80);
-- Due mail is claimed resets and email changes first, then verifications, each oldest first:
-- anyone can sign up with any address, so a flood of sign-ups must not delay a password reset.
CREATE INDEX mail_outbox_due_idx ON atrium.mail_outbox ((kind = 'verify_email'), next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_done_idx ON atrium.mail_outbox (created_at) WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL;
COMMENT ON TABLE atrium.mail_outbox IS 'Mails to send, written in the transaction that caused them; sent by any server (FOR UPDATE SKIP LOCKED under a lease), retried with backoff. Bodies are erased once sent or given up. Reached only through atrium.mail_* functions.';
COMMENT ON COLUMN atrium.mail_outbox.mail_id IS 'Mail id (random UUID); also the local part of its Message-ID.';
COMMENT ON COLUMN atrium.mail_outbox.for_tenant IS 'The tenant the mail speaks for, if any (for the operators'' view).';
COMMENT ON COLUMN atrium.mail_outbox.kind IS 'verify_email, password_reset, email_change (confirmation to the new address) or email_change_notice (to the old one).';
COMMENT ON COLUMN atrium.mail_outbox.recipient IS 'The one recipient address.';
COMMENT ON COLUMN atrium.mail_outbox.subject IS 'Subject line (UTF-8; encoded when sent).';
COMMENT ON COLUMN atrium.mail_outbox.text_body IS 'Plain-text body; NULL once sent or given up (it may carry a live token).';
COMMENT ON COLUMN atrium.mail_outbox.html_body IS 'HTML body; NULL once sent or given up.';
COMMENT ON COLUMN atrium.mail_outbox.created_at IS 'When the causing transaction wrote it.';
COMMENT ON COLUMN atrium.mail_outbox.next_attempt_at IS 'When it is due (again).';
COMMENT ON COLUMN atrium.mail_outbox.attempts IS 'Attempts made so far.';
COMMENT ON COLUMN atrium.mail_outbox.lease IS 'The claim of the server sending it now; its outcome is recorded only with this lease.';
COMMENT ON COLUMN atrium.mail_outbox.lease_until IS 'When that claim runs out and another server may send it.';
COMMENT ON COLUMN atrium.mail_outbox.sent_at IS 'When the mail server accepted it.';
COMMENT ON COLUMN atrium.mail_outbox.failed_at IS 'When it was given up (refused for good, or out of attempts).';
COMMENT ON COLUMN atrium.mail_outbox.last_error IS 'What went wrong last time (the mail server''s answer or the connection error).';
ALTER TABLE atrium.mail_outbox SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE atrium.mail_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.mail_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.mail_outbox TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY definer_access ON atrium.mail_outbox IS 'Only atrium_definer (the mail_* and flow functions) reads or writes the outbox.';
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.mail_outbox TO atrium_definer;

-- Mail: enqueue, claim, complete, prune ---------------------------------------------------------

CREATE FUNCTION atrium.mail_enqueue(p_mail uuid, p_tenant uuid, p_kind text, p_recipient text, p_subject text, p_text text, p_html text)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO atrium.mail_outbox (mail_id, for_tenant, kind, recipient, subject, text_body, html_body)
    VALUES (p_mail, p_tenant, p_kind, p_recipient, p_subject, p_text, p_html);
    SELECT pg_notify('atrium_mail', '');
$$;
COMMENT ON FUNCTION atrium.mail_enqueue(uuid, uuid, text, text, text, text, text) IS 'Writes a mail to the outbox inside the caller''s transaction (it is sent only if that commits) and wakes the senders (NOTIFY atrium_mail).';

CREATE FUNCTION atrium.mail_claim(p_lease interval, p_limit integer)
    RETURNS TABLE (mail_id uuid, lease uuid, kind text, recipient text, subject text, text_body text, html_body text,
                   attempts integer, created_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claim constant uuid := gen_random_uuid();
BEGIN
    RETURN QUERY
    WITH due AS (
        SELECT m.mail_id FROM atrium.mail_outbox m
        WHERE m.sent_at IS NULL AND m.failed_at IS NULL AND m.next_attempt_at <= now()
          AND (m.lease_until IS NULL OR m.lease_until < now())
        ORDER BY (m.kind = 'verify_email'), m.next_attempt_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE atrium.mail_outbox m SET lease = claim, lease_until = now() + p_lease
    FROM due WHERE m.mail_id = due.mail_id
    RETURNING m.mail_id, m.lease, m.kind, m.recipient, m.subject, m.text_body, m.html_body, m.attempts, m.created_at;
END
$$;
COMMENT ON FUNCTION atrium.mail_claim(interval, integer) IS 'Leases up to p_limit due mails for p_lease (skipping those another server holds), resets and email changes before verifications, oldest first; returns them with the lease id.';

CREATE FUNCTION atrium.mail_complete(p_outcomes jsonb) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done integer;
BEGIN
    -- Each outcome: {"mail_id", "lease", "sent": bool, "retry_in": seconds or null (give up), "error"}.
    WITH outcome AS (
        SELECT o.mail_id, o.lease, o.sent, o.retry_in, o.error
        FROM jsonb_to_recordset(p_outcomes) AS o(mail_id uuid, lease uuid, sent boolean, retry_in double precision, error text)
    )
    UPDATE atrium.mail_outbox m SET
        attempts = m.attempts + 1,
        lease = NULL, lease_until = NULL,
        sent_at = CASE WHEN o.sent THEN now() END,
        failed_at = CASE WHEN NOT o.sent AND o.retry_in IS NULL THEN now() END,
        next_attempt_at = CASE WHEN NOT o.sent AND o.retry_in IS NOT NULL THEN now() + make_interval(secs => o.retry_in) ELSE m.next_attempt_at END,
        last_error = coalesce(left(o.error, 1000), m.last_error),
        text_body = CASE WHEN o.sent OR o.retry_in IS NULL THEN NULL ELSE m.text_body END,
        html_body = CASE WHEN o.sent OR o.retry_in IS NULL THEN NULL ELSE m.html_body END
    FROM outcome o
    WHERE m.mail_id = o.mail_id AND m.lease = o.lease;
    GET DIAGNOSTICS done = ROW_COUNT;
    RETURN done;
END
$$;
COMMENT ON FUNCTION atrium.mail_complete(jsonb) IS 'Records attempts: sent, retry in n seconds, or given up; only under the lease that claimed the mail. Sent and given-up mails lose their bodies.';

CREATE FUNCTION atrium.mail_prune(p_age interval, p_batch integer) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed integer;
BEGIN
    DELETE FROM atrium.mail_outbox m WHERE m.mail_id IN (
        SELECT o.mail_id FROM atrium.mail_outbox o
        WHERE (o.sent_at IS NOT NULL OR o.failed_at IS NOT NULL) AND o.created_at < now() - p_age
        ORDER BY o.created_at LIMIT p_batch
    );
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$$;
COMMENT ON FUNCTION atrium.mail_prune(interval, integer) IS 'Deletes up to p_batch sent or given-up mails older than p_age; returns how many.';

CREATE VIEW atrium_admin.mail_queue AS
    SELECT m.mail_id, t.slug AS tenant, m.kind, m.recipient, m.subject, m.created_at, m.attempts, m.next_attempt_at,
           CASE WHEN m.sent_at IS NOT NULL THEN 'sent' WHEN m.failed_at IS NOT NULL THEN 'failed'
                WHEN m.lease_until > now() THEN 'sending' ELSE 'waiting' END AS status,
           coalesce(m.sent_at, m.failed_at) AS finished_at, m.last_error
    FROM atrium.mail_outbox m
    LEFT JOIN atrium.tenants t ON t.tenant_id = m.for_tenant;
COMMENT ON VIEW atrium_admin.mail_queue IS 'Every mail in the outbox with its state (no bodies: they carry tokens); e.g. WHERE status <> ''sent'' ORDER BY created_at.';
COMMENT ON COLUMN atrium_admin.mail_queue.mail_id IS 'The mail.';
COMMENT ON COLUMN atrium_admin.mail_queue.tenant IS 'Slug of the tenant it speaks for, if any.';
COMMENT ON COLUMN atrium_admin.mail_queue.kind IS 'verify_email, password_reset, email_change or email_change_notice.';
COMMENT ON COLUMN atrium_admin.mail_queue.recipient IS 'Recipient address.';
COMMENT ON COLUMN atrium_admin.mail_queue.subject IS 'Subject line.';
COMMENT ON COLUMN atrium_admin.mail_queue.created_at IS 'When it was written.';
COMMENT ON COLUMN atrium_admin.mail_queue.attempts IS 'Attempts so far.';
COMMENT ON COLUMN atrium_admin.mail_queue.next_attempt_at IS 'When it is due (again).';
COMMENT ON COLUMN atrium_admin.mail_queue.status IS 'waiting, sending, sent or failed.';
COMMENT ON COLUMN atrium_admin.mail_queue.finished_at IS 'When it was sent or given up.';
COMMENT ON COLUMN atrium_admin.mail_queue.last_error IS 'The last failure.';
ALTER VIEW atrium_admin.mail_queue OWNER TO atrium_definer;
GRANT SELECT ON atrium_admin.mail_queue TO atrium_admin;

DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY[
        'atrium.mail_enqueue(uuid, uuid, text, text, text, text, text)', 'atrium.mail_claim(interval, integer)',
        'atrium.mail_complete(jsonb)', 'atrium.mail_prune(interval, integer)'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO atrium_definer', signature);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', signature);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO atrium_app', signature);
    END LOOP;
END
$$;
