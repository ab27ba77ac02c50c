//! HIPAA mode's refusal to start unsafely (45 CFR 164.312(a)(2)(iv), (e)(1), 164.316(b)(2)).
//!
//! With the `hipaa` module enabled Concord starts only if every connection is protected by
//! TLS (Concord serves plain HTTP, so a reverse proxy must terminate TLS in front of it and be
//! named in `http.tls_proxy`), the key-encryption key is a production one (production mode
//! never generates a key, so the key was provided), and the audit log is kept at least six
//! years. Each refusal is one line naming the setting to change.

use super::load::{Modules, PolicyError, HIPAA_AUDIT_DAYS};
use crate::config::{Config, Mode};

/// Refuses a HIPAA-mode start that would be unsafe; outside HIPAA mode, allows everything.
pub fn refuse_unsafe_start(config: &Config, modules: &Modules) -> Result<(), PolicyError> {
    if !modules.hipaa() {
        return Ok(());
    }
    if config.http.tls_proxy.is_none() {
        return Err(PolicyError::new(
            "http.tls_proxy",
            "HIPAA mode needs TLS: Concord serves plain HTTP, so put it behind a reverse proxy \
             that terminates TLS and set http.tls_proxy to that proxy's address",
        ));
    }
    if config.mode != Mode::Production {
        return Err(PolicyError::new(
            "mode",
            "HIPAA mode needs a production key-encryption key: start with --production \
             (mode = \"production\") and provide keys.kek or keys.kek_file; development mode \
             generates unprotected keys",
        ));
    }
    let audit = modules.base().policy.retention.audit_days;
    if !audit.at_least(HIPAA_AUDIT_DAYS) {
        // Resolving the modules already refuses this; kept so the rule stands on its own.
        return Err(PolicyError::new(
            "retention.audit_days",
            format!(
                "HIPAA mode needs the audit log kept at least six years ({HIPAA_AUDIT_DAYS} days), not {audit}"
            ),
        ));
    }
    Ok(())
}
