-- Signed QR codes: the keys that sign them, and each space's current code.

create table signing_key (
    -- Short ids (k1, k2, ...) keep every token, and so every printed code, small.
    kid text primary key,
    algorithm text not null default 'EdDSA',
    -- The Ed25519 seed. Every process on this database signs with the same keys; protect
    -- the database (and its backups) as you would a key file.
    private_seed bytea not null,
    public_key bytea not null,
    created_at timestamptz not null,
    -- A retired key leaves the JWKS: codes it signed stop verifying.
    retired_at timestamptz,
    constraint signing_key_kid_form check (kid ~ '^k[1-9][0-9]*$'),
    constraint signing_key_algorithm_known check (algorithm = 'EdDSA'),
    constraint signing_key_seed_length check (octet_length(private_seed) = 32),
    constraint signing_key_public_length check (octet_length(public_key) = 32),
    constraint signing_key_public_key unique (public_key)
);

-- Rotation increments the version; a token naming an older version is revoked.
alter table space add column qr_version integer not null default 1
    constraint space_qr_version_positive check (qr_version >= 1);
alter table space add constraint space_id_qr_version_key unique (space_id, qr_version);

create table space_qr (
    space_id uuid primary key,
    qr_version integer not null,
    kid text not null references signing_key (kid),
    token text not null,
    -- The built QR matrix, filled on first use: choosing the mask is the costly part of
    -- drawing a code, so it is done once per code version.
    matrix bytea,
    -- The URL the matrix encodes: a change of public URL makes the cached matrix stale.
    matrix_url text,
    created_at timestamptz not null,
    -- The stored code is always the space's current one.
    constraint space_qr_current_fk foreign key (space_id, qr_version)
        references space (space_id, qr_version),
    constraint space_qr_token_key unique (token)
);
