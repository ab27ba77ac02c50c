-- A person's out-of-office period (first and last day, an optional message up to 500
-- characters), set by themself: one JSON object encrypted under the person's key, bound to
-- (users, id, out_of_office). NULL when none is set.
ALTER TABLE users ADD COLUMN out_of_office_enc BYTEA;
