//! Who `from:@` and `in:@` name: a workspace's members, with the keys names are compared by.
//!
//! Only members are found: an email address of an account outside the workspace answers exactly
//! like one no account has, so search cannot tell who has an account elsewhere. Membership is
//! read from the database at each query, so it is always current. Profiles are encrypted, and
//! decrypting every member's at every query would make one `from:@name` cost a decryption per
//! member; [`Directory`] keeps each member's compared keys under the fingerprint of the profile's
//! ciphertext, so a profile is decrypted once per change (a changed or re-encrypted profile has
//! new ciphertext, whoever changed it, so a stale entry is never used).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::crypto::Keyring;
use crate::domain::{Email, UserId, WorkspaceId};
use crate::store::{workspaces as store_workspaces, Conn};

use super::SearchError;

/// Most profiles whose compared keys are kept (about 200 bytes each).
const CAPACITY: usize = 100_000;

/// One member as names are matched against them.
#[derive(Debug)]
pub(crate) struct Person {
    /// The account.
    pub id: UserId,
    /// The email's lookup key.
    email: String,
    /// The display name as compared ([`handle_key`]).
    name: String,
    /// The part of the email before the `@`, as compared.
    local_part: String,
}

/// What a name resolved to among a workspace's members.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Exactly one member.
    One(UserId),
    /// Several members go by that name.
    Ambiguous,
    /// No member.
    Nobody,
}

/// Members' compared keys by the fingerprint of their encrypted profile; shared by every
/// workspace (a profile is the person's, not the workspace's).
pub(crate) struct Directory {
    people: Mutex<People>,
}

/// Each cached person with the fingerprint of the profile ciphertext they were read from.
type People = LruCache<UserId, ([u8; 32], Arc<Person>)>;

impl Directory {
    /// An empty directory.
    pub(crate) fn new() -> Directory {
        Directory {
            people: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// Drops what is kept of `user` (after their erasure: no copy of their name stays).
    pub(crate) fn forget(&self, user: UserId) {
        if let Ok(mut people) = self.people.lock() {
            people.pop(&user);
        }
    }

    /// `workspace`'s current members, decrypting only profiles not seen since they changed.
    pub(crate) async fn members(
        &self,
        keyring: &Keyring,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
    ) -> Result<Vec<Arc<Person>>, SearchError> {
        let members = store_workspaces::members(conn, workspace).await?;
        let mut out = Vec::with_capacity(members.len());
        for m in members {
            let email_enc = m.email_enc.as_deref();
            let name_enc = m.display_name_enc.as_deref();
            let print = fingerprint(email_enc, name_enc);
            let known = self
                .lock()
                .get(&m.user_id)
                .filter(|(seen, _)| *seen == print)
                .map(|(_, person)| person.clone());
            let person = match known {
                Some(person) => person,
                None => {
                    let (email, name) = crate::accounts::decrypt_profile(
                        keyring, conn, m.user_id, email_enc, name_enc,
                    )
                    .await
                    .map_err(|e| SearchError::Index(format!("member profile: {e}")))?;
                    let person = Arc::new(Person {
                        id: m.user_id,
                        local_part: handle_key(email.split('@').next().unwrap_or_default()),
                        email: email.to_lowercase(),
                        name: handle_key(&name),
                    });
                    self.lock().put(m.user_id, (print, person.clone()));
                    person
                }
            };
            out.push(person);
        }
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, People> {
        self.people.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The member `who` names: an email address (compared case-insensitively), else a display
/// name or the part of an email before the `@` (case-insensitive, spaces optional, as people
/// type handles; display names win over email handles). A name two members share is
/// ambiguous rather than guessed.
pub(crate) fn resolve(people: &[Arc<Person>], who: &str) -> Resolved {
    let one = |found: Vec<UserId>| match found.as_slice() {
        [one] => Resolved::One(*one),
        [] => Resolved::Nobody,
        _ => Resolved::Ambiguous,
    };
    if let Ok(email) = Email::parse("q", who) {
        let key = email.lookup_key();
        return one(people
            .iter()
            .filter(|p| p.email == key)
            .map(|p| p.id)
            .collect());
    }
    let wanted = handle_key(who);
    if wanted.is_empty() || who.contains('@') {
        return Resolved::Nobody;
    }
    let by_name: Vec<UserId> = people
        .iter()
        .filter(|p| p.name == wanted)
        .map(|p| p.id)
        .collect();
    if !by_name.is_empty() {
        return one(by_name);
    }
    one(people
        .iter()
        .filter(|p| p.local_part == wanted)
        .map(|p| p.id)
        .collect())
}

/// Identifies a profile's ciphertext (length-prefixed, so the two columns cannot run together).
fn fingerprint(email_enc: Option<&[u8]>, name_enc: Option<&[u8]>) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in [email_enc, name_enc] {
        let bytes = part.unwrap_or_default();
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    }
    hash.finalize().into()
}

/// How a name is compared with what people type after `@`: case-folded, without spaces.
fn handle_key(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(email: &str, name: &str) -> Arc<Person> {
        Arc::new(Person {
            id: UserId::generate(),
            local_part: handle_key(email.split('@').next().unwrap()),
            email: email.to_lowercase(),
            name: handle_key(name),
        })
    }

    #[test]
    fn names_resolve_among_members_only() {
        let ann = person("Ann@example.org", "Ann Lee");
        let bo = person("bo@example.org", "Bo");
        let bo2 = person("bo@other.example", "Bo");
        let people = vec![ann.clone(), bo.clone()];
        assert_eq!(resolve(&people, "ann@EXAMPLE.org"), Resolved::One(ann.id));
        assert_eq!(resolve(&people, "annlee"), Resolved::One(ann.id));
        assert_eq!(resolve(&people, "ANN"), Resolved::One(ann.id));
        assert_eq!(resolve(&people, "outsider@example.org"), Resolved::Nobody);
        assert_eq!(resolve(&people, "nobody"), Resolved::Nobody);
        assert_eq!(resolve(&[bo, bo2], "bo"), Resolved::Ambiguous);
    }
}
