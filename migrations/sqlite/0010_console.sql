-- The operator console's sign-ins (docs/console.md): one row per signed-in browser, found
-- by the SHA-256 of its cookie's random token (the token itself is never stored).

-- The pair a console session names: the key and the operator it belongs to.
create unique index operator_key_owner_key on operator_key (operator_key_id, operator_id);

create table console_session (
    console_session_id blob primary key check (length(console_session_id) = 16),
    -- SHA-256 of the cookie's 256 random bits: like API keys, an unsalted hash is enough.
    token_hash blob not null check (length(token_hash) = 32),
    operator_id blob not null references operator (operator_id),
    -- The key it signed in with: revoking the key ends the session.
    operator_key_id blob not null,
    created_at text not null,
    -- Moved by each request; a session idle for 12 hours is over.
    last_seen_at text not null check (last_seen_at >= created_at),
    constraint console_session_token_key unique (token_hash),
    foreign key (operator_key_id, operator_id) references operator_key (operator_key_id, operator_id)
) strict;

create index console_session_key_idx on console_session (operator_key_id);
create index console_session_seen_idx on console_session (last_seen_at);
