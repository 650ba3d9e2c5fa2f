-- Keys at rest (issue 16): one signing key per purpose, and no secret readable from the
-- database alone. Private keys and server secrets are sealed (XChaCha20-Poly1305) under a
-- key-encryption key kept in a file outside the database (src/secrets/).

-- What each key signs. Keys made before this migration signed QR codes (and everything
-- else): they stay QR keys; the first start after it makes one key for each other purpose.
alter table signing_key add column purpose text not null default 'qr',
    add constraint signing_key_purpose_known
        check (purpose in ('qr', 'proof', 'checkpoint', 'gateway'));
-- The Ed25519 seed sealed under the key-encryption key: a 24-byte nonce, the 32-byte
-- ciphertext and the 16-byte tag. Null only until the first start seals a migrated seed.
alter table signing_key add column sealed_seed bytea,
    add constraint signing_key_sealed_seed_length check (octet_length(sealed_seed) = 72);

-- Server secrets that are not signing keys, sealed like the seeds.
create table server_secret (
    -- plate_key: the keyed hash by which the audit chain commits to plates;
    -- pseudonym_key: the keyed hash by which operators see drivers under a pseudonym.
    name text primary key,
    sealed bytea not null,
    constraint server_secret_name_known check (name in ('plate_key', 'pseudonym_key')),
    constraint server_secret_sealed_length check (octet_length(sealed) = 72)
);

-- Plaintext secrets of earlier versions, kept only until the first start that holds the
-- key-encryption key seals them, deletes these rows and rewrites the tables that held
-- them (vacuum full), so that no live page keeps the plaintext.
create table unsealed_secret (
    name text primary key,
    secret bytea not null,
    constraint unsealed_secret_name_form
        check (name = 'plate_key' or name ~ '^signing_key:k[1-9][0-9]*$'),
    constraint unsealed_secret_length check (octet_length(secret) = 32)
);

insert into unsealed_secret (name, secret)
    select 'signing_key:' || kid, private_seed from signing_key;
insert into unsealed_secret (name, secret)
    select 'plate_key', secret from plate_key;

alter table signing_key drop column private_seed;
drop table plate_key;
