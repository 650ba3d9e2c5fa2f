-- Each settlement carries its session's place in the audit chain, so that an export walks
-- the range's sessions and their settlements side by side in chain order (a merge join of
-- two index scans) instead of looking every settlement up by its session's id: the lookup
-- was more than half of the server's work per exported record.
--
-- PostgreSQL only: SQLite does not merge-join, and its export reads settlements through
-- `settlement_session_export_idx` as before.

alter table settlement add column session_audit_seq bigint;

update settlement st set session_audit_seq = s.audit_seq
    from session s where s.session_id = st.session_id;

-- A settlement is written in the transaction that stops its session, after the session has
-- taken its place in the chain; the database copies that place, so no writer can get it
-- wrong.
create function settlement_chain_place() returns trigger language plpgsql as $$
begin
    select s.audit_seq into new.session_audit_seq from session s
        where s.session_id = new.session_id;
    return new;
end
$$;

create trigger settlement_chain_place before insert on settlement
    for each row execute function settlement_chain_place();

-- Never missing, and always the place of the settlement's own session: the pair must be a
-- session's (id, place), which also stops a session's place from changing under it.
alter table settlement alter column session_audit_seq set not null;
create unique index session_chain_place_key on session (session_id, audit_seq);
alter table settlement add constraint settlement_session_chain_place_fkey
    foreign key (session_id, session_audit_seq) references session (session_id, audit_seq);

-- What the export reads of a settlement, in chain order, without the table.
drop index settlement_session_export_idx;
create index settlement_export_idx on settlement (session_audit_seq) include (status, reference);
