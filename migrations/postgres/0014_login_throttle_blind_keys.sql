-- Sign-in throttle counters are now kept under keyed blind indexes of the account and the
-- client address. Counters under the old keys (which named the address in plaintext) can no
-- longer be reached: they are dropped, so no client address stays at rest.

DELETE FROM login_throttle;
