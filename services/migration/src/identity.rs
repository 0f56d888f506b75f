//! Who is on the other end of a connection: the login name of the peer's uid.
//!
//! The service binds every connection to its peer's uid (`SO_PEERCRED`, read by the
//! runtime's Unix transport) and refuses a message whose `userId` is not that uid's
//! login name (USER_MISMATCH). Root gets no exception: a root process speaking for
//! `alice` is refused like anyone else.

use nix::unistd::{Uid, User};

/// Maps a uid to its login name.
pub trait Directory: Send + Sync + 'static {
    /// The login name of `uid`, or `None` when the system has no such user.
    fn login_name(&self, uid: u32) -> Option<String>;
}

/// The system's user database (`getpwuid_r`, so NSS sources such as LDAP count).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemDirectory;

impl Directory for SystemDirectory {
    fn login_name(&self, uid: u32) -> Option<String> {
        match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(user)) => Some(user.name),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(uid, %error, "cannot look up the peer's user");
                None
            }
        }
    }
}

/// The login name of the current process's user.
#[must_use]
pub fn current_login_name() -> Option<String> {
    SystemDirectory.login_name(Uid::current().as_raw())
}
