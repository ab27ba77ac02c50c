-- Why the supervisory authority was not told of a breach (GDPR Art. 33(1): unlikely to result
-- in a risk to people's rights and freedoms), encrypted under the compliance-record key
-- (system:audit) and bound to the row like the title. A breach is closed only once the
-- authority was told or this reason is given.
ALTER TABLE breaches ADD COLUMN no_notification_reason BYTEA;
