-- Signed QR codes: the keys that sign them, and each space's current code.

create table signing_key (
    -- Short ids (k1, k2, ...) keep every token, and so every printed code, small.
    kid text primary key check (kid glob 'k[1-9]*' and substr(kid, 2) not glob '*[^0-9]*'),
    algorithm text not null default 'EdDSA' check (algorithm = 'EdDSA'),
    -- The Ed25519 seed. Every process on this database signs with the same keys; protect
    -- the database file (and its backups) as you would a key file.
    private_seed blob not null check (length(private_seed) = 32),
    public_key blob not null unique check (length(public_key) = 32),
    created_at text not null,
    -- A retired key leaves the JWKS: codes it signed stop verifying.
    retired_at text
) strict;

-- Rotation increments the version; a token naming an older version is revoked.
alter table space add column qr_version integer not null default 1 check (qr_version >= 1);
create unique index space_id_qr_version_key on space (space_id, qr_version);

create table space_qr (
    space_id blob primary key,
    qr_version integer not null,
    kid text not null references signing_key (kid),
    token text not null unique,
    -- The built QR matrix, filled on first use: choosing the mask is the costly part of
    -- drawing a code, so it is done once per code version.
    matrix blob,
    -- The URL the matrix encodes: a change of public URL makes the cached matrix stale.
    matrix_url text,
    created_at text not null,
    -- The stored code is always the space's current one.
    foreign key (space_id, qr_version) references space (space_id, qr_version)
) strict;
