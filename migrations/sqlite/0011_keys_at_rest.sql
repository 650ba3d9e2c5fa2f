-- Keys at rest (issue 16): one signing key per purpose, and no secret readable from the
-- database alone. Private keys and server secrets are sealed (XChaCha20-Poly1305) under a
-- key-encryption key kept in a file outside the database (src/secrets/).

-- What each key signs. Keys made before this migration signed QR codes (and everything
-- else): they stay QR keys; the first start after it makes one key for each other purpose.
alter table signing_key add column purpose text not null default 'qr'
    check (purpose in ('qr', 'proof', 'checkpoint', 'gateway'));
-- The Ed25519 seed sealed under the key-encryption key: a 24-byte nonce, the 32-byte
-- ciphertext and the 16-byte tag. Null only until the first start seals a migrated seed.
alter table signing_key add column sealed_seed blob check (length(sealed_seed) = 72);

-- Server secrets that are not signing keys, sealed like the seeds.
create table server_secret (
    -- plate_key: the keyed hash by which the audit chain commits to plates;
    -- pseudonym_key: the keyed hash by which operators see drivers under a pseudonym.
    name text primary key check (name in ('plate_key', 'pseudonym_key')),
    sealed blob not null check (length(sealed) = 72)
) strict;

-- Plaintext secrets of earlier versions, kept only until the first start that holds the
-- key-encryption key seals them and deletes these rows (with secure_delete on, so the
-- freed pages are zeroed).
create table unsealed_secret (
    name text primary key check (name = 'plate_key' or name glob 'signing_key:k[1-9]*'),
    secret blob not null check (length(secret) = 32)
) strict;

insert into unsealed_secret (name, secret)
    select 'signing_key:' || kid, private_seed from signing_key;
insert into unsealed_secret (name, secret)
    select 'plate_key', secret from plate_key;

alter table signing_key drop column private_seed;
drop table plate_key;
